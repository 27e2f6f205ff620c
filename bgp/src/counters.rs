//! Plain counters for metrics (the speaker crate turns them into Prometheus series).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::machine::State;

/// Indexes: message type 1..=5 (0 unused); NOTIFICATION code 1..=7 (0 = other).
#[derive(Debug, Default)]
pub struct Counters {
    msgs_in: [AtomicU64; 6],
    msgs_out: [AtomicU64; 6],
    notif_in: [AtomicU64; 8],
    notif_out: [AtomicU64; 8],
    transitions: [AtomicU64; 6],
    decode_errors: AtomicU64,
    updates_bytes_out: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Messages received, by type code (index 1 = OPEN ... 5 = ROUTE-REFRESH).
    pub messages_in: [u64; 6],
    pub messages_out: [u64; 6],
    /// NOTIFICATIONs by error code (index 0 = codes above 7).
    pub notifications_in: [u64; 8],
    pub notifications_out: [u64; 8],
    /// Transitions into each state, indexed by [`state_index`].
    pub transitions: [u64; 6],
    /// Frames that failed to decode (each answered by a NOTIFICATION).
    pub decode_errors: u64,
    /// Bytes of UPDATE messages sent.
    pub update_bytes_out: u64,
}

pub fn state_index(s: State) -> usize {
    match s {
        State::Idle => 0,
        State::Connect => 1,
        State::Active => 2,
        State::OpenSent => 3,
        State::OpenConfirm => 4,
        State::Established => 5,
    }
}

fn idx(kind: u8) -> usize {
    if (1..=5).contains(&kind) {
        kind as usize
    } else {
        0
    }
}

fn code_idx(code: u8) -> usize {
    if (1..=7).contains(&code) {
        code as usize
    } else {
        0
    }
}

impl Counters {
    pub(crate) fn msg_in(&self, kind: u8) {
        self.msgs_in[idx(kind)].fetch_add(1, Relaxed);
    }
    pub(crate) fn msg_out(&self, kind: u8, bytes: usize) {
        self.msgs_out[idx(kind)].fetch_add(1, Relaxed);
        if kind == crate::packet::msg_type::UPDATE {
            self.updates_bytes_out.fetch_add(bytes as u64, Relaxed);
        }
    }
    pub(crate) fn notif_in(&self, code: u8) {
        self.notif_in[code_idx(code)].fetch_add(1, Relaxed);
    }
    pub(crate) fn notif_out(&self, code: u8) {
        self.notif_out[code_idx(code)].fetch_add(1, Relaxed);
    }
    pub(crate) fn transition(&self, to: State) {
        self.transitions[state_index(to)].fetch_add(1, Relaxed);
    }
    pub(crate) fn decode_error(&self) {
        self.decode_errors.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let load = |a: &[AtomicU64]| -> Vec<u64> { a.iter().map(|x| x.load(Relaxed)).collect() };
        CountersSnapshot {
            messages_in: load(&self.msgs_in).try_into().expect("6"),
            messages_out: load(&self.msgs_out).try_into().expect("6"),
            notifications_in: load(&self.notif_in).try_into().expect("8"),
            notifications_out: load(&self.notif_out).try_into().expect("8"),
            transitions: load(&self.transitions).try_into().expect("6"),
            decode_errors: self.decode_errors.load(Relaxed),
            update_bytes_out: self.updates_bytes_out.load(Relaxed),
        }
    }
}
