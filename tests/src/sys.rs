//! The only unsafe code of the test helpers: entering a network namespace, and tying a
//! child process's life to ours.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// Moves the calling thread into the network namespace behind `file` (`/run/netns/NAME`).
pub(crate) fn setns_net(file: &std::fs::File) -> io::Result<()> {
    // SAFETY: `file` is an open descriptor for a netns file that outlives this call;
    // setns only changes the calling thread's namespace and reads no memory of ours.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the child that `cmd` starts receive SIGKILL when the *thread* that spawns it exits
/// (`PR_SET_PDEATHSIG`), so servers started by a test die with the test process even when it
/// panics or is SIGKILLed. Spawn from a thread that lives as long as the process.
pub(crate) fn kill_child_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only prctl and
    // getppid, both async-signal-safe; it touches no memory shared with the parent and does
    // not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited before PR_SET_PDEATHSIG"));
            }
            Ok(())
        });
    }
}
