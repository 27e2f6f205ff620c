//! Plain membership counters, shared between the I/O task and whoever reads them (the
//! speaker maps them to Prometheus).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by the membership core. Read them with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    members: AtomicU64,
    member_up: AtomicU64,
    member_down: AtomicU64,
    leaves_received: AtomicU64,
    rejoins: AtomicU64,
    auth_failures: AtomicU64,
    malformed: AtomicU64,
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    declared_dead: AtomicU64,
    death_notices_received: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Live members, this speaker included (a gauge).
    pub members: u64,
    /// Peers that became live (joined, or came back).
    pub member_up: u64,
    /// Peers removed from the live set (crashed, or left): each is a failover trigger.
    pub member_down: u64,
    /// Authenticated leave notices received.
    pub leaves_received: u64,
    /// Times this speaker found itself declared down and rejoined with a new identity.
    pub rejoins: u64,
    /// Datagrams dropped because the HMAC tag was missing or wrong.
    pub auth_failures: u64,
    /// Authenticated datagrams that could not be decoded (unknown version or kind, bad SWIM
    /// payload).
    pub malformed: u64,
    /// Datagrams received (all, authenticated or not).
    pub messages_in: u64,
    /// Datagrams sent.
    pub messages_out: u64,
    /// UDP payload bytes received (all datagrams) and sent; IP and UDP headers not included.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Members this speaker's ring monitor declared down (silent, and no answer to the
    /// direct and relayed confirmation probes).
    pub declared_dead: u64,
    /// Authenticated death notices received from other members' ring monitors.
    pub death_notices_received: u64,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            members: r(&self.members),
            member_up: r(&self.member_up),
            member_down: r(&self.member_down),
            leaves_received: r(&self.leaves_received),
            rejoins: r(&self.rejoins),
            auth_failures: r(&self.auth_failures),
            malformed: r(&self.malformed),
            messages_in: r(&self.messages_in),
            messages_out: r(&self.messages_out),
            bytes_in: r(&self.bytes_in),
            bytes_out: r(&self.bytes_out),
            declared_dead: r(&self.declared_dead),
            death_notices_received: r(&self.death_notices_received),
        }
    }

    pub(crate) fn set_members(&self, n: usize) {
        self.members.store(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn message_in(&self, len: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
    }

    pub(crate) fn message_out(&self, len: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
    }
}

macro_rules! incr {
    ($($name:ident => $field:ident),* $(,)?) => {
        impl Metrics {
            $(pub(crate) fn $name(&self) { self.$field.fetch_add(1, Ordering::Relaxed); })*
        }
    };
}

incr! {
    member_up => member_up,
    member_down => member_down,
    leave_received => leaves_received,
    rejoin => rejoins,
    auth_failure => auth_failures,
    malformed => malformed,
    declared_dead => declared_dead,
    death_notice_received => death_notices_received,
}
