//! The only unsafe code of the speaker: one allocator setting at start-up.
#![allow(unsafe_code)]

/// Limits glibc's allocator to one arena. By default glibc gives every thread that
/// allocates under contention an arena of its own (up to 8 per core), and memory freed in
/// one arena is never reused by another: with 10,000 Services the speaker's records, route
/// maps and UPDATEs are built on whichever runtime thread runs the task, and the extra
/// arenas cost ~1.5 MiB of RSS (BENCHMARKS.md, "Speaker memory", issue #12). The speaker
/// allocates little per second, so one lock is no bottleneck. Must run before any thread is
/// started. Returns whether the setting was applied (always false on non-glibc targets,
/// where it does not apply).
pub fn one_malloc_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; it is called from `main`
        // before the runtime or any other thread exists, so no allocation runs concurrently.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
