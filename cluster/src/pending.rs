//! When notified changes apply (pure: the watcher feeds notifications and asks for the next
//! scan time).
//!
//! A file that is still being written must not be read half way, so a change normally waits
//! until the directory has been quiet for `debounce` (at most `max_delay` after the first
//! notification). But most changes arrive whole: a file renamed into place, closed after
//! writing, or removed. When every file written since the last scan has been closed (or
//! renamed, or removed) and at most one other scan ran within `debounce` before this change,
//! the scan runs [`SETTLE`] after the last notification instead: the rest of the same
//! operation (the other events of one `mv`) has arrived by then, and waiting longer only adds
//! latency — every change crossed two such loaders in a row (the controller's manifests, the
//! speakers' status file) plus the BGP send delay. Two, not one: a speaker sees a new Service
//! file, and a few ms later the controller's status file with its address; the second is the
//! one that matters. A burst (a third change within `debounce`) keeps the quiet-period rule,
//! so bulk edits still apply in few scans.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

/// How long after a completing notification the scan runs when nothing is being written.
pub const SETTLE: Duration = Duration::from_millis(2);

/// What a notification says about its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A file was created or its data changed: a writer may still be at work.
    Writing(PathBuf),
    /// A file is complete: closed after writing, renamed into or out of place, removed, its
    /// metadata changed.
    Done(Vec<PathBuf>),
    /// Something whose files are unknown (an inotify overflow, a watch error): scan.
    Rescan,
}

/// Notifications not applied yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// (first, last) notification since the last scan.
    dirty: Option<(Instant, Instant)>,
    /// Files written since the last scan and not closed since.
    writing: BTreeSet<PathBuf>,
    /// Start of the last scan and of the one before it.
    scans: [Option<Instant>; 2],
}

impl Pending {
    /// Records a notification received at `now`.
    pub fn note(&mut self, note: Note, now: Instant) {
        self.dirty = Some(self.dirty.map_or((now, now), |(first, _)| (first, now)));
        match note {
            Note::Writing(p) => {
                self.writing.insert(p);
            }
            Note::Done(paths) => {
                for p in paths {
                    self.writing.remove(&p);
                }
            }
            Note::Rescan => {}
        }
    }

    /// Marks a change that needs a scan without a notification (a file changed while it was
    /// read): it waits for the quiet period.
    pub fn again(&mut self, now: Instant) {
        self.dirty = Some((now, now));
    }

    /// When the next scan is due (`None`: nothing pending).
    pub fn due(&self, debounce: Duration, max_delay: Duration) -> Option<Instant> {
        let (first, last) = self.dirty?;
        let quiet = (last + debounce).min(first + max_delay);
        // The scan before the last one: at most two fast scans within `debounce`.
        let after_quiet = self.scans[0].is_none_or(|s| first >= s + debounce);
        if self.writing.is_empty() && after_quiet {
            Some((last + SETTLE).min(quiet))
        } else {
            Some(quiet)
        }
    }

    /// A scan started at `now`: everything noted so far is in it.
    pub fn scanned(&mut self, now: Instant) {
        self.dirty = None;
        self.writing.clear();
        self.scans = [self.scans[1], Some(now)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_millis(200);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn nothing_noted_nothing_due() {
        assert_eq!(Pending::default().due(DEBOUNCE, MAX), None);
    }

    #[test]
    fn a_file_renamed_into_a_quiet_directory_applies_after_the_settle_time() {
        let t0 = Instant::now();
        let mut s = Pending::default();
        s.scanned(t0);
        s.note(Note::Done(vec![p("d/a.yaml")]), t0 + ms(500));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(500) + SETTLE));
        // Written and closed (the write-then-rename of an atomic writer): complete as well.
        let mut s = Pending::default();
        s.note(Note::Writing(p("d/.a.tmp")), t0);
        s.note(Note::Done(vec![p("d/.a.tmp")]), t0 + ms(1));
        s.note(Note::Done(vec![p("d/.a.tmp"), p("d/a.yaml")]), t0 + ms(1));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(1) + SETTLE));
    }

    #[test]
    fn a_file_still_open_for_writing_waits_for_the_quiet_period() {
        let t0 = Instant::now();
        let mut s = Pending::default();
        s.note(Note::Writing(p("d/a.yaml")), t0);
        s.note(Note::Writing(p("d/a.yaml")), t0 + ms(5));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(25)));
        // Another file completing does not make the open one complete.
        s.note(Note::Done(vec![p("d/b.yaml")]), t0 + ms(6));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(26)));
        // Closed: settle.
        s.note(Note::Done(vec![p("d/a.yaml")]), t0 + ms(7));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(7) + SETTLE));
    }

    #[test]
    fn the_quiet_period_stays_bounded_by_max_delay() {
        let t0 = Instant::now();
        let mut s = Pending::default();
        for i in 0..100 {
            s.note(Note::Writing(p("d/a.yaml")), t0 + ms(10 * i));
        }
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + MAX));
    }

    #[test]
    fn a_second_change_right_after_a_scan_settles_too() {
        // A Service file (the speaker scans it), then the controller's status file 5 ms later.
        let t0 = Instant::now();
        let mut s = Pending::default();
        s.note(Note::Done(vec![p("d/svc.yaml")]), t0);
        s.scanned(t0 + SETTLE);
        s.note(Note::Done(vec![p("d/.ferrolb/status.yaml")]), t0 + ms(5));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(5) + SETTLE));
    }

    #[test]
    fn a_burst_keeps_the_quiet_period_after_two_fast_scans() {
        let t0 = Instant::now();
        let mut s = Pending::default();
        s.note(Note::Done(vec![p("d/1.yaml")]), t0);
        s.scanned(t0 + ms(2));
        s.note(Note::Done(vec![p("d/2.yaml")]), t0 + ms(3));
        s.scanned(t0 + ms(5));
        // The third file of a bulk `mv` loop: two scans within 20 ms already, quiet rule.
        s.note(Note::Done(vec![p("d/3.yaml")]), t0 + ms(6));
        s.note(Note::Done(vec![p("d/4.yaml")]), t0 + ms(7));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(27)));
        // A file changed while it was read: quiet period too.
        let mut s = Pending::default();
        s.scanned(t0);
        s.scanned(t0 + ms(1));
        s.again(t0 + ms(2));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(22)));
    }

    #[test]
    fn a_scan_forgets_what_it_covered() {
        let t0 = Instant::now();
        let mut s = Pending::default();
        s.note(Note::Writing(p("d/a.yaml")), t0);
        s.scanned(t0 + ms(20));
        assert_eq!(s.due(DEBOUNCE, MAX), None);
        // Closed later, after a quiet period: settle (the writer left nothing open).
        s.note(Note::Done(vec![p("d/a.yaml")]), t0 + ms(100));
        assert_eq!(s.due(DEBOUNCE, MAX), Some(t0 + ms(100) + SETTLE));
    }
}
