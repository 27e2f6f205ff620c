//! The state machine of one interface, pure: `handle(input, now) -> Vec<Output>`. No sockets,
//! no tokio, no clock of its own; the driver ([`crate::driver`]) feeds it frames, owned-set
//! changes and timer ticks, and carries out what it returns (send a frame, join or leave a
//! multicast group, report a conflict, count a drop).
//!
//! Rules that live here:
//! - the per-frame verdict ([`Responder::handle`]);
//! - flood resistance ([`crate::limit`]): replies pass a token bucket per source MAC and wait
//!   in a bounded queue, sent at [`Input::Flush`] (the end of a batch of received frames)
//!   quiet sources first; a flooding source loses its own replies (`rate_limited`,
//!   `queue_full`), other hosts keep theirs; a source whose bucket ran empty is dropped by
//!   the kernel filter for `Limits::block_for` ([`Output::BlockSources`]);
//! - conflicts are reported (logged and sent as an event) once per (IP, other MAC) per
//!   `conflict_interval`; every conflicting frame is still counted;
//! - announcements on gaining an IP and on link up ([`AnnounceSchedule`]);
//! - solicited-node multicast memberships, refcounted per group MAC.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::announce::AnnounceSchedule;
use crate::limit::{
    Admit, ConflictLog, Limits, MAX_BLOCKED_SOURCES, Queued, ReplyQueue, SourceLimiter,
};
use crate::packet::{Frame, MacAddr, NdpMessage, Payload, solicited_node_mac};
use crate::responder::{DropReason, ReplyKind, Responder, Verdict, announcements};

/// Settings of one interface's machine.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// Announcements per gained IP (the first at once).
    pub announce_count: u32,
    pub announce_interval: Duration,
    /// At most one conflict report per (IP, other MAC) per interval.
    pub conflict_interval: Duration,
    pub limits: Limits,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            announce_count: 4,
            announce_interval: Duration::from_millis(300),
            conflict_interval: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

/// What the driver tells the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// One received Ethernet frame.
    Frame(&'a [u8]),
    /// The end of a batch of received frames (the socket would block, or the batch is
    /// full): send the queued replies.
    Flush,
    /// The new set of IPs owned on this interface.
    SetOwned(BTreeSet<IpAddr>),
    /// The link came back up: announce every owned IP again.
    Reannounce,
    /// The announcement timer ([`Machine::next_timer`]) fired.
    Timer,
}

/// What a sent frame was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Reply(ReplyKind),
    Announcement(IpAddr),
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `frame` out of this interface.
    Send { frame: BytesMut, kind: SendKind },
    /// A frame was not answered, for `reason`.
    Drop(DropReason),
    /// A frame claims an IP we own from another MAC. `report` is `Some(n)` when this one is to
    /// be logged and reported (`n` conflicting frames were seen and not reported since the
    /// last report of this (IP, MAC)), `None` when it is only counted.
    Conflict {
        ip: IpAddr,
        other_mac: MacAddr,
        report: Option<u64>,
    },
    /// Join (`true`) or leave the multicast group with this MAC.
    Membership { group: MacAddr, join: bool },
    /// From now on the kernel filter drops frames from exactly these source MACs (sources
    /// whose bucket ran empty, for `Limits::block_for`). Sent whenever the set changes.
    BlockSources(Vec<MacAddr>),
    /// The owned set changed (for the log).
    OwnedChanged {
        gained: Vec<IpAddr>,
        lost: Vec<IpAddr>,
    },
}

/// A reply decided but not sent yet.
#[derive(Debug)]
struct Pending {
    frame: BytesMut,
    kind: ReplyKind,
}

/// The state of one interface.
#[derive(Debug)]
pub struct Machine {
    responder: Responder,
    owned: BTreeSet<IpAddr>,
    groups: BTreeMap<MacAddr, usize>,
    schedule: AnnounceSchedule,
    limiter: SourceLimiter,
    queue: ReplyQueue<Pending>,
    conflicts: ConflictLog<(IpAddr, MacAddr)>,
    /// Sources blocked in the kernel filter, until when.
    blocked: BTreeMap<MacAddr, Instant>,
    block_for: Duration,
}

impl Machine {
    pub fn new(mac: MacAddr, config: &MachineConfig) -> Machine {
        Machine {
            responder: Responder::new(mac),
            owned: BTreeSet::new(),
            groups: BTreeMap::new(),
            schedule: AnnounceSchedule::new(config.announce_count, config.announce_interval),
            limiter: SourceLimiter::new(config.limits),
            queue: ReplyQueue::new(config.limits.queue_capacity),
            conflicts: ConflictLog::new(config.conflict_interval),
            blocked: BTreeMap::new(),
            block_for: config.limits.block_for,
        }
    }

    pub fn mac(&self) -> MacAddr {
        self.responder.mac()
    }

    pub fn owned(&self) -> &BTreeSet<IpAddr> {
        &self.owned
    }

    /// When [`Input::Timer`] is next due (an announcement, or a blocked source to let
    /// through again), if anything is scheduled.
    pub fn next_timer(&self) -> Option<Instant> {
        let unblock = self.blocked.values().min().copied();
        match (self.schedule.next_due(), unblock) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Replies waiting for [`Input::Flush`].
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Frame(frame) => self.on_frame(frame, now, &mut out),
            Input::Flush => self.on_flush(&mut out),
            Input::SetOwned(ips) => self.on_set_owned(ips, now, &mut out),
            Input::Reannounce => {
                for ip in self.owned.clone() {
                    self.schedule.start(ip, now);
                }
            }
            Input::Timer => self.on_timer(now, &mut out),
        }
        out
    }

    fn on_frame(&mut self, frame: &[u8], now: Instant, out: &mut Vec<Output>) {
        match self.responder.handle(frame) {
            Verdict::Reply { frame: reply, kind } => {
                // The Ethernet source of the request (the verdict proves there is one).
                let mut src = [0u8; 6];
                src.copy_from_slice(&frame[6..12]);
                let admit = self.limiter.admit(MacAddr(src), now);
                match self.queue.push(Pending { frame: reply, kind }, admit) {
                    Queued::Yes => {}
                    Queued::Evicted => out.push(Output::Drop(DropReason::QueueFull)),
                    Queued::Full if admit == Admit::Limited => {
                        out.push(Output::Drop(DropReason::RateLimited));
                        self.block(MacAddr(src), now, out);
                    }
                    Queued::Full => out.push(Output::Drop(DropReason::QueueFull)),
                }
            }
            Verdict::Conflict { ip, other_mac } => {
                let report = self.conflicts.note((ip, other_mac), now);
                out.push(Output::Conflict {
                    ip,
                    other_mac,
                    report,
                });
            }
            Verdict::Drop(reason) => out.push(Output::Drop(reason)),
        }
    }

    /// Has the kernel drop `source`'s frames for `block_for` (a flood then costs no wake-up).
    fn block(&mut self, source: MacAddr, now: Instant, out: &mut Vec<Output>) {
        if self.block_for.is_zero()
            || self.blocked.contains_key(&source)
            || self.blocked.len() >= MAX_BLOCKED_SOURCES
        {
            return;
        }
        self.blocked.insert(source, now + self.block_for);
        out.push(Output::BlockSources(self.blocked.keys().copied().collect()));
    }

    fn on_flush(&mut self, out: &mut Vec<Output>) {
        out.extend(self.queue.drain().map(|p| Output::Send {
            frame: p.frame,
            kind: SendKind::Reply(p.kind),
        }));
    }

    /// The responder first (stop answering at once, queued replies for lost IPs dropped),
    /// then multicast groups, then the announcement schedule.
    fn on_set_owned(&mut self, new: BTreeSet<IpAddr>, now: Instant, out: &mut Vec<Output>) {
        self.responder.set_owned(&new);
        let gained: Vec<IpAddr> = new.difference(&self.owned).copied().collect();
        let lost: Vec<IpAddr> = self.owned.difference(&new).copied().collect();
        if !lost.is_empty() {
            let removed = self
                .queue
                .retain(|p| reply_ip(&p.frame).is_some_and(|ip| new.contains(&ip)));
            out.extend((0..removed).map(|_| Output::Drop(DropReason::NotOwned)));
        }
        for ip in &lost {
            if let IpAddr::V6(a) = ip {
                let group = solicited_node_mac(a);
                if let Some(n) = self.groups.get_mut(&group) {
                    *n -= 1;
                    if *n == 0 {
                        self.groups.remove(&group);
                        out.push(Output::Membership { group, join: false });
                    }
                }
            }
        }
        for ip in &gained {
            if let IpAddr::V6(a) = ip {
                let group = solicited_node_mac(a);
                let n = self.groups.entry(group).or_insert(0);
                if *n == 0 {
                    out.push(Output::Membership { group, join: true });
                }
                *n += 1;
            }
        }
        self.schedule.retain_owned(&new);
        self.owned = new;
        for ip in &gained {
            self.schedule.start(*ip, now);
        }
        if !gained.is_empty() || !lost.is_empty() {
            out.push(Output::OwnedChanged { gained, lost });
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        let before = self.blocked.len();
        self.blocked.retain(|_, until| *until > now);
        if self.blocked.len() != before {
            out.push(Output::BlockSources(self.blocked.keys().copied().collect()));
        }
        let mac = self.responder.mac();
        for ip in self.schedule.take_due(now) {
            out.extend(
                announcements(mac, ip)
                    .into_iter()
                    .map(|frame| Output::Send {
                        frame,
                        kind: SendKind::Announcement(ip),
                    }),
            );
        }
    }
}

/// The IP a reply we built answers for (ARP sender IP / NA target).
fn reply_ip(frame: &[u8]) -> Option<IpAddr> {
    match Frame::decode(frame).ok()?.payload {
        Payload::Arp(a) => Some(IpAddr::V4(a.spa)),
        Payload::Ndp { msg, .. } => match msg {
            NdpMessage::NeighborAdvert { target, .. } => Some(IpAddr::V6(target)),
            NdpMessage::NeighborSolicit { .. } => None,
        },
    }
}
