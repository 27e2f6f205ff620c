//! Child processes of the harness. Servers are spawned from one long-lived thread with
//! `PR_SET_PDEATHSIG` (SIGKILL), so they die with the test process even when it panics or is
//! SIGKILLed; a watchdog process removes the temporary directory in that case.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

type Build = Box<dyn FnOnce() -> io::Result<Command> + Send>;
type Job = (Build, mpsc::Sender<io::Result<Child>>);

/// Spawns the command `build` makes from a thread that lives as long as the process: the
/// parent-death signal fires when the spawning *thread* exits, and cargo's test threads do.
fn spawn_tied(build: Build) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kube-env-spawner".into())
            .spawn(move || {
                for (build, reply) in rx {
                    let child = build().and_then(|mut cmd| {
                        crate::sys::kill_child_with_parent(&mut cmd);
                        cmd.spawn()
                    });
                    let _ = reply.send(child);
                }
            })
            .expect("start the kube-env spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send((build, reply_tx))
        .map_err(|_| io::Error::other("kube-env spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("kube-env spawner thread is gone"))?
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; a clash with a parallel test is
/// possible, so callers retry on "address already in use").
pub(crate) fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A server process (etcd, kube-apiserver): output appended to `log`, SIGKILLed on drop.
/// Remembers its command line so it can be restarted with the same flags.
pub(crate) struct Server {
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    pub(crate) fn start(
        name: &'static str,
        program: &Path,
        args: Vec<OsString>,
        log: &Path,
    ) -> io::Result<Self> {
        let mut server = Server {
            name,
            program: program.to_path_buf(),
            args,
            log: log.to_path_buf(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let (program, args, log) = (self.program.clone(), self.args.clone(), self.log.clone());
        let child = spawn_tied(Box::new(move || {
            let out = OpenOptions::new().create(true).append(true).open(&log)?;
            let err = out.try_clone()?;
            let mut cmd = Command::new(program);
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Own process group: a Ctrl-C meant for cargo reaches us, not the servers
                // directly; they die through the parent-death signal.
                .process_group(0);
            Ok(cmd)
        }))?;
        self.child = Some(child);
        Ok(())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(description)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            None => Some(format!("{} is not running", self.name)),
            Some(Ok(Some(status))) => Some(format!("{} exited: {status}", self.name)),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(format!("{}: wait failed: {e}", self.name)),
        }
    }

    /// SIGKILL and reap (no graceful drain: a SIGTERMed kube-apiserver drains for ~10 s).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command line again (after [`Server::kill`]).
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory removed on drop, and also when the test process dies without
/// dropping it (SIGKILL, or a `static` never dropped): a small `sh` in its own process group
/// waits for EOF on a pipe only we hold, then removes the directory.
pub(crate) struct TempDir {
    path: PathBuf,
    watchdog: Option<(Child, ChildStdin)>,
}

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("flb-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the kube-env temp dir");
        let watchdog = Command::new("sh")
            .args([
                "-c",
                // Ignore terminal signals; wait for our pipe to close; give the servers'
                // parent-death SIGKILL a moment; remove the directory.
                "trap '' INT TERM HUP; cat >/dev/null; sleep 1; rm -rf -- \"$0\"",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(|mut c| {
                let stdin = c.stdin.take().expect("piped stdin");
                (c, stdin)
            })
            .map_err(|e| eprintln!("kube-env: no cleanup watchdog for {path:?}: {e}"))
            .ok();
        TempDir { path, watchdog }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            // The watchdog sleeps 1 s before its (now no-op) rm; don't wait for it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True when etcd on `port` answers its `/health` endpoint with `"health":"true"`.
pub(crate) fn etcd_healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}
