//! The responder's counters: atomics shared by every interface task, read as a plain
//! snapshot ([`Counters`]) by the caller (the speaker turns them into metrics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::responder::{DropReason, ReplyKind};

/// A snapshot of the counters, as plain numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that passed the kernel filter and reached the responder.
    pub frames_received: u64,
    pub replies: BTreeMap<ReplyKind, u64>,
    pub drops: BTreeMap<DropReason, u64>,
    /// Every frame that claimed one of our IPs from another MAC.
    pub conflicts: u64,
    /// Conflicting frames not logged or reported as an event because the same (IP, MAC)
    /// was reported less than `Config::conflict_interval` ago.
    pub conflicts_suppressed: u64,
    /// Announcement frames sent (each gratuitous ARP form and each unsolicited NA count 1).
    pub announcements_sent: u64,
    pub send_errors: u64,
    /// Frames the kernel dropped because a socket's receive buffer was full.
    pub kernel_drops: u64,
    pub events_dropped: u64,
}

impl Counters {
    pub fn replies_total(&self) -> u64 {
        self.replies.values().sum()
    }
}

#[derive(Default)]
pub(crate) struct AtomicCounters {
    pub(crate) frames_received: AtomicU64,
    replies: [AtomicU64; ReplyKind::ALL.len()],
    drops: [AtomicU64; DropReason::ALL.len()],
    pub(crate) conflicts: AtomicU64,
    pub(crate) conflicts_suppressed: AtomicU64,
    pub(crate) announcements_sent: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) kernel_drops: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl AtomicCounters {
    pub(crate) fn reply(&self, k: ReplyKind) {
        let i = ReplyKind::ALL.iter().position(|x| *x == k).unwrap_or(0);
        bump(&self.replies[i]);
    }

    pub(crate) fn drop_reason(&self, r: DropReason) {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        bump(&self.drops[i]);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            frames_received: ld(&self.frames_received),
            replies: ReplyKind::ALL
                .iter()
                .zip(&self.replies)
                .map(|(k, c)| (*k, ld(c)))
                .collect(),
            drops: DropReason::ALL
                .iter()
                .zip(&self.drops)
                .map(|(k, c)| (*k, ld(c)))
                .collect(),
            conflicts: ld(&self.conflicts),
            conflicts_suppressed: ld(&self.conflicts_suppressed),
            announcements_sent: ld(&self.announcements_sent),
            send_errors: ld(&self.send_errors),
            kernel_drops: ld(&self.kernel_drops),
            events_dropped: ld(&self.events_dropped),
        }
    }
}
