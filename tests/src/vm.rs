//! Tests that need a kernel feature this host may lack (VRF): run here when the kernel has
//! it, else re-run the same test binary and test inside a small qemu VM (TCG) with Debian's
//! kernel, built and cached by `tests/vm/prepare.sh`. The VM sees the host's `/` read-only
//! (so this binary and the target directory are at the same paths), runs the one test as
//! root and powers off; its output and exit status come back through a private directory.
//!
//! Neither possible (no qemu, no kernel package): the test skips saying why, unless
//! `FERROLB_REQUIRE_NETNS=1` (CI as root), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::netns::{Netns, Proc, run};

/// Set inside the VM: the test body runs there, whatever the probe says.
const IN_VM: &str = "FERROLB_IN_VM";
/// Host directories the VM's /init covers with tmpfs (tests/vm/init.sh).
const HIDDEN_IN_VM: [&str; 6] = [
    "/tmp",
    "/run",
    "/var/tmp",
    "/var/log",
    "/var/lib/frr",
    "/var/run",
];
/// Passed on into the VM (with every `FERROLB_*` variable).
const PASS_ENV: [&str; 3] = ["RUST_LOG", "RUST_BACKTRACE", "RUST_TEST_TIME_UNIT"];

/// How one run in the VM ended.
#[derive(Debug)]
pub struct VmRun {
    /// The test's exit status inside the VM (`None`: the VM never reported one).
    pub status: Option<i32>,
    /// The test's output (stdout and stderr), then the VM console if the test gave no status.
    pub log: String,
    pub elapsed: Duration,
}

/// Runs `body` where the kernel has VRF devices: at once when this kernel has them (or this
/// is the VM), else in the VM (`test` is this test's name for `--exact`), failing this test
/// when it failed there. Without a VM either: skipped, or a failure under
/// `FERROLB_REQUIRE_NETNS=1`.
pub fn with_vrf_kernel(test: &str, limit: Duration, body: impl FnOnce()) {
    if std::env::var_os(IN_VM).is_some() || host_has_vrf() {
        body();
        return;
    }
    let image = match prepare() {
        Ok(dir) => dir,
        Err(why) => return skip_or_fail(test, &why),
    };
    let run = match run_in_vm(&image, test, limit) {
        Ok(r) => r,
        Err(why) => return skip_or_fail(test, &why),
    };
    eprintln!(
        "{test}: ran in the VM ({}) in {:.1} s, exit status {:?}:\n{}",
        image.display(),
        run.elapsed.as_secs_f64(),
        run.status,
        run.log
    );
    assert_eq!(
        run.status,
        Some(0),
        "{test} failed inside the VM (log above)"
    );
}

fn skip_or_fail(test: &str, why: &str) {
    if std::env::var_os("FERROLB_REQUIRE_NETNS").is_some_and(|v| v == "1") {
        panic!("{test}: this kernel has no VRF and the test VM cannot run: {why}");
    }
    eprintln!("skipping {test}: this kernel has no VRF and the test VM cannot run: {why}");
}

/// Whether `ip link add ... type vrf` works here (tried in a namespace of its own).
pub fn host_has_vrf() -> bool {
    let ns = Netns::new("vrfprobe");
    ns.ip(&["link", "add", "probe", "type", "vrf", "table", "10"])
        .is_ok()
}

/// Builds or finds the cached VM image (`tests/vm/prepare.sh`): the directory with
/// `vmlinuz` and `initrd.gz`.
pub fn prepare() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/prepare.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(PathBuf::from(dir))
}

/// A private directory shared read-write with the VM, removed on drop.
struct OutDir(PathBuf);

impl OutDir {
    fn new() -> OutDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flb-vm-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create VM out dir");
        OutDir(dir)
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Single-quoted for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell command the VM's /init runs: this binary, only `test`, as in this process
/// (working directory, `FERROLB_*` and logging variables).
fn vm_command(test: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // The VM has fresh tmpfs over these: a binary there would not be found.
    if let Some(d) = HIDDEN_IN_VM.iter().find(|d| exe.starts_with(d)) {
        return Err(format!(
            "the test binary {} is under {d}, which the VM replaces with an empty tmpfs; use a target directory elsewhere",
            exe.display()
        ));
    }
    let cwd = std::env::current_dir().map_err(|e| format!("current_dir: {e}"))?;
    let mut cmd =
        String::from("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    cmd += &format!("export {IN_VM}=1 FERROLB_REQUIRE_NETNS=1\n");
    // Non-UTF-8 variables are not passed (`vars()` would panic on them).
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    for (k, v) in vars {
        if (k.starts_with("FERROLB_") && k != IN_VM && k != "FERROLB_REQUIRE_NETNS")
            || PASS_ENV.contains(&k.as_str())
        {
            cmd += &format!("export {k}={}\n", quote(&v));
        }
    }
    cmd += &format!("cd {}\n", quote(&cwd.to_string_lossy()));
    cmd += &format!(
        "exec {} --exact {} --nocapture --test-threads=1\n",
        quote(&exe.to_string_lossy()),
        quote(test)
    );
    Ok(cmd)
}

/// Boots the VM (TCG: KVM is not needed, nor always usable), runs `test` in it and waits,
/// at most `limit` (then qemu is stopped by its PID).
pub fn run_in_vm(image: &Path, test: &str, limit: Duration) -> Result<VmRun, String> {
    run_script_in_vm(image, &vm_command(test)?, limit)
}

/// Boots the VM, runs the shell `script` in it (chrooted into the host's read-only `/`, as
/// root, with fresh tmpfs over [`HIDDEN_IN_VM`]) and waits, at most `limit` (then qemu is
/// stopped by its PID). Used by the tests above and by benchmarks that need the VM's kernel
/// (`tests/examples/vm_run.rs`).
pub fn run_script_in_vm(image: &Path, script: &str, limit: Duration) -> Result<VmRun, String> {
    run("qemu-system-x86_64", &["--version"]).map_err(|e| format!("no qemu: {e}"))?;
    let out = OutDir::new();
    std::fs::write(out.0.join("cmd"), script).map_err(|e| e.to_string())?;
    let console = std::fs::File::create(out.0.join("console.log")).map_err(|e| e.to_string())?;
    let share = |path: &Path, tag: &str, ro: &str| {
        format!(
            "local,path={},mount_tag={tag},security_model=none{ro},multidevs=remap",
            path.display()
        )
    };
    let smp = std::env::var("FERROLB_VM_SMP").unwrap_or_else(|_| "1".into());
    let started = Instant::now();
    let child = Command::new("timeout")
        .args(["-k", "5", &format!("{}", limit.as_secs() + 5)])
        .arg("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "1024", "-smp", &smp])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.gz"))
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .args([
            "-virtfs",
            &share(Path::new("/"), "hostroot", ",readonly=on"),
        ])
        .args(["-virtfs", &share(&out.0, "out", "")])
        .stdin(Stdio::null())
        .stdout(console.try_clone().map_err(|e| e.to_string())?)
        .stderr(console)
        .spawn()
        .map_err(|e| format!("starting qemu: {e}"))?;
    let mut qemu = Proc::from_child(child);
    while qemu.is_running() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(200));
    }
    let timed_out = qemu.is_running();
    qemu.stop();
    let read = |name: &str| std::fs::read_to_string(out.0.join(name)).unwrap_or_default();
    let status = read("rc").trim().parse::<i32>().ok();
    let mut log = read("log");
    if status.is_none() {
        let why = if timed_out { "timed out" } else { "no status" };
        log += &format!(
            "\n--- VM {why} after {limit:?}; console:\n{}",
            read("console.log")
        );
    }
    Ok(VmRun {
        status,
        log,
        elapsed: started.elapsed(),
    })
}
