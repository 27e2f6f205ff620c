//! The only unsafe code of the test helpers: entering a network namespace.
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
