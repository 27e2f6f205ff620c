//! Network namespaces and processes for tests, cleaned up on drop (also on panic).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when the caller may create namespaces. Without root the test should return early:
/// this prints why. With `FERROLB_REQUIRE_NETNS=1` a missing privilege panics instead, so CI
/// (which runs as root) can never pass by skipping.
pub fn require_root(test: &str) -> bool {
    // SAFETY-free check: effective uid from /proc avoids unsafe libc calls.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root {
        return true;
    }
    if std::env::var_os("FERROLB_REQUIRE_NETNS").is_some_and(|v| v == "1") {
        panic!("{test}: needs root for network namespaces and FERROLB_REQUIRE_NETNS=1 is set");
    }
    eprintln!(
        "skipping {test}: needs root to create network namespaces (run scripts/test.sh as root)"
    );
    false
}

/// Runs a command and returns its stdout, or an error with the command line and stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd} {}: {e}", args.join(" ")))?;
    check(cmd, args, out)
}

fn check(cmd: &str, args: &[&str], out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{cmd} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// A network namespace named `flb-<tag>-<pid>-<n>`, deleted on drop with every process
/// started through [`Netns::spawn`] killed first.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace with `lo` up. `tag` is a short word naming the role
    /// (`r`, `n1`, `c`); the name is unique per process and call so tests run in parallel.
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Interface-name-like limit is not needed for netns names, but keep them short.
        Self::named(format!("flb-{tag}-{}-{n}", std::process::id()))
    }

    /// Creates a fresh namespace with exactly this name (the caller keeps it unique).
    pub fn named(name: String) -> Self {
        run("ip", &["netns", "add", &name]).expect("ip netns add");
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]).expect("lo up");
        ns
    }

    /// Takes over a namespace made earlier by this code (another process's [`Netns::named`]),
    /// if it still exists; dropping the value removes it as usual.
    pub fn existing(name: &str) -> Option<Self> {
        std::path::Path::new("/run/netns")
            .join(name)
            .exists()
            .then(|| Netns {
                name: name.to_string(),
            })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the namespace (and what runs in it) after this value is gone; returns its name.
    pub fn detach(self) -> String {
        let name = self.name.clone();
        std::mem::forget(self);
        name
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `cmd args...` inside the namespace and waits for it.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), cmd];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Like [`Netns::exec`] but returns the raw output whatever the exit status.
    pub fn exec_output(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn ip netns exec")
    }

    /// Starts a long-running process inside the namespace. `ip netns exec` execs the
    /// program, so the child's PID is the program's own.
    pub fn spawn(&self, cmd: &str, args: &[&str]) -> Proc {
        self.spawn_with(
            Command::new("ip")
                .args(["netns", "exec", &self.name, cmd])
                .args(args),
        )
    }

    /// Starts `command` (already prefixed with `ip netns exec NAME` by the caller).
    pub fn spawn_with(&self, command: &mut Command) -> Proc {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process in netns");
        Proc { child: Some(child) }
    }

    /// Starts `program args` in the namespace with `env`, stdout and stderr appended to
    /// `log` (no pipe to fill, and the process outlives its parent). See [`spawn_logged`].
    pub fn spawn_logged(
        &self,
        log: &Path,
        env: &[(&str, &str)],
        program: &str,
        args: &[&str],
    ) -> Proc {
        spawn_logged(&self.name, log, env, program, args)
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key_value: &str) -> Result<String, String> {
        self.exec("sysctl", &["-qw", key_value])
    }

    /// Runs `f` on a new thread that has entered this namespace; sockets created there
    /// (for example by a tokio runtime built inside `f`) belong to the namespace.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_thread(f).join().expect("netns thread panicked")
    }

    /// Starts a thread inside this namespace and returns its handle.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns file");
            crate::sys::setns_net(&file).expect("setns into test namespace");
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill anything still running in the namespace (daemons that double-forked).
        if let Ok(pids) = run("ip", &["netns", "pids", &self.name]) {
            for pid in pids.split_whitespace() {
                let _ = run("kill", &["-9", pid]);
            }
        }
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Starts `program args` in namespace `ns` with `env`, stdout and stderr appended to `log`.
/// The PID is the program's own (`ip netns exec` and `sh` both exec).
pub fn spawn_logged(
    ns: &str,
    log: &Path,
    env: &[(&str, &str)],
    program: &str,
    args: &[&str],
) -> Proc {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "env"]);
    cmd.args(env.iter().map(|(k, v)| format!("{k}={v}")));
    cmd.args([
        "sh",
        "-c",
        r#"log="$1"; shift; exec "$@" >>"$log" 2>&1"#,
        "sh",
    ]);
    cmd.arg(log).arg(program).args(args);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn process in netns");
    Proc { child: Some(child) }
}

/// Creates a veth pair `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    run(
        "ip",
        &[
            "link",
            "add",
            a_if,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.name(),
        ],
    )
    .expect("create veth pair");
    a.ip(&["link", "set", a_if, "up"]).expect("veth up");
    b.ip(&["link", "set", b_if, "up"]).expect("veth up");
}

/// A child process killed (SIGTERM, then SIGKILL after 2 s) on drop.
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    /// Takes ownership of a child started by the caller (on the host, or in a namespace).
    pub fn from_child(child: Child) -> Proc {
        Proc { child: Some(child) }
    }

    /// Lets the process run on after this value is gone (a lab that outlives its builder);
    /// returns its PID so someone can stop it later.
    pub fn detach(mut self) -> u32 {
        let pid = self.pid();
        // Dropping a `Child` neither kills nor waits for it.
        self.child.take();
        pid
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, sig: &str) {
        let _ = run("kill", &[&format!("-{sig}"), &self.pid().to_string()]);
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the process (TERM, up to 2 s, KILL) and returns its stdout and stderr.
    pub fn stop(&mut self) -> (String, String) {
        self.stop_within(Duration::from_secs(2))
    }

    /// Stops the process (TERM, up to `grace` for it to exit, KILL) and returns its stdout and
    /// stderr. Tests of what a process does on SIGTERM give it a real grace period (a Pod's
    /// is 30 s): on a loaded machine 2 s can cut its shutdown short.
    pub fn stop_within(&mut self, grace: Duration) -> (String, String) {
        let Some(mut child) = self.child.take() else {
            return (String::new(), String::new());
        };
        let _ = run("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        match child.wait_with_output() {
            Ok(o) => (
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(_) => (String::new(), String::new()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` every `interval` until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}
