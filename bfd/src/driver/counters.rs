//! The driver's counters: atomics shared between the task and the handle, and their plain
//! snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::packet::DropReason;

/// Manager-wide counters, as plain numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BfdCounters {
    /// Datagrams read from the receive sockets (before any check).
    pub packets_in: u64,
    /// Control packets sent.
    pub packets_out: u64,
    /// Sends the kernel refused (no route, link down, buffer full).
    pub send_errors: u64,
    /// Session state changes.
    pub state_changes: u64,
    /// Discarded packets by reason (every reason present, zero or not).
    pub drops: BTreeMap<DropReason, u64>,
    /// Our echo packets sent.
    pub echo_out: u64,
    /// Our echo packets that came back and were accepted.
    pub echo_in: u64,
    /// Echo-port datagrams claiming to be ours that were discarded (wrong discriminator,
    /// TTL, stale sequence number).
    pub echo_drops: u64,
    /// Echo sends that failed (no neighbour entry for the peer, kernel refused).
    pub echo_send_errors: u64,
    /// Probes of our echo function that got nothing back (the peer does not loop them).
    pub echo_not_returned: u64,
}

impl BfdCounters {
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(super) struct SharedCounters {
    pub(super) packets_in: AtomicU64,
    pub(super) packets_out: AtomicU64,
    pub(super) send_errors: AtomicU64,
    pub(super) state_changes: AtomicU64,
    pub(super) echo_out: AtomicU64,
    pub(super) echo_in: AtomicU64,
    pub(super) echo_drops: AtomicU64,
    pub(super) echo_send_errors: AtomicU64,
    pub(super) echo_not_returned: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl SharedCounters {
    pub(super) fn count_drop(&self, r: DropReason) {
        self.drops[r.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> BfdCounters {
        BfdCounters {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            state_changes: self.state_changes.load(Ordering::Relaxed),
            drops: DropReason::ALL
                .iter()
                .map(|r| (*r, self.drops[r.index()].load(Ordering::Relaxed)))
                .collect(),
            echo_out: self.echo_out.load(Ordering::Relaxed),
            echo_in: self.echo_in.load(Ordering::Relaxed),
            echo_drops: self.echo_drops.load(Ordering::Relaxed),
            echo_send_errors: self.echo_send_errors.load(Ordering::Relaxed),
            echo_not_returned: self.echo_not_returned.load(Ordering::Relaxed),
        }
    }
}
