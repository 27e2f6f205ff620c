//! The only unsafe code of the crate: the kernel's clock tick rate, which `/proc/self/stat`
//! counts CPU and start times in.
#![allow(unsafe_code)]

/// `sysconf(_SC_CLK_TCK)`: clock ticks per second (100 on every Linux we know; the call is
/// cheap and exact).
pub(crate) fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf takes a plain integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|n| *n > 0)
}
