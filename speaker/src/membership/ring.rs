//! The ring monitor: fast crash detection next to SWIM.
//!
//! SWIM probes a random member per period, so the time until *someone* probes a crashed
//! member is roughly exponential: with N-1 probers each picking it with probability
//! 1/(N-1) per period, P(not probed within k periods) ≈ e^-k, i.e. 4.6 periods at p99
//! before the suspicion timeout even starts. Here every member is instead watched by a
//! fixed set of monitors: the `monitors` members after it on a ring ordered by a hash of
//! the node names. It sends each of them a heartbeat every `heartbeat_period`; a monitor
//! that hears nothing for `heartbeat_timeout` probes it directly and through `relays`
//! other members (so one lossy link is not enough), and if no heartbeat or ack arrives
//! within `confirm_timeout` it declares that identity dead. The core then applies the
//! death to SWIM and sends it straight to every member. A crash is therefore seen by
//! everyone within `heartbeat_timeout + confirm_timeout` plus one network delay, whatever
//! the cluster size, and the cost per member is `monitors / heartbeat_period` heartbeats
//! out and as many in, also independent of the cluster size.
//!
//! Views of the ring may differ for a moment (a join not yet known everywhere): a monitor
//! then misses heartbeats from a member that does not count it as a monitor, and the
//! confirmation probe (which that member answers) keeps it from a false verdict.
//!
//! Pure: inputs carry `now` (any monotonic origin), outputs are sends, timers and
//! verdicts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::wire::{Kind, Peer, Probe, ProbeAck};

/// Ring monitor timers (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchTuning {
    pub heartbeat_period: Duration,
    pub heartbeat_timeout: Duration,
    pub confirm_timeout: Duration,
    pub monitors: usize,
    pub relays: usize,
}

/// A timer the monitor asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchTimer {
    /// Send heartbeats to our monitors.
    Heartbeat,
    /// Check whether the watched member at this address has gone silent.
    Silence(SocketAddr),
    /// The confirmation probe `nonce` of the member at this address ran out.
    Confirm(SocketAddr, u32),
}

/// What the monitor wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchOut {
    Send {
        to: SocketAddr,
        kind: Kind,
        payload: Vec<u8>,
    },
    Schedule {
        after: Duration,
        timer: WatchTimer,
    },
    /// This identity stayed silent and did not answer the confirmation probe.
    Dead(Peer),
}

struct Watched {
    bump: u64,
    last_heard: Duration,
    silence_armed: bool,
    /// When the armed silence timer is due.
    silence_due: Duration,
    confirm: Option<u32>,
    /// When the running confirmation is due.
    confirm_due: Duration,
}

/// One member's monitor state.
pub struct Watch {
    t: WatchTuning,
    me: Peer,
    /// The ring (ring key, peer), self included, sorted.
    ring: Vec<(u64, Peer)>,
    /// Members we send heartbeats to.
    monitors: Vec<SocketAddr>,
    watched: BTreeMap<SocketAddr, Watched>,
    next_nonce: u32,
    out: Vec<WatchOut>,
}

/// FNV-1a of the node name: spreads names like node-1, node-2 around the ring.
pub fn ring_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Watch {
    pub fn new(t: WatchTuning, me: Peer, my_name: &str) -> Self {
        Watch {
            t,
            me,
            ring: vec![(ring_key(my_name), me)],
            monitors: Vec::new(),
            watched: BTreeMap::new(),
            next_nonce: 1,
            out: Vec::new(),
        }
    }

    /// Starts the heartbeat timer.
    pub fn start(&mut self) -> Vec<WatchOut> {
        self.out.push(WatchOut::Schedule {
            after: self.t.heartbeat_period,
            timer: WatchTimer::Heartbeat,
        });
        std::mem::take(&mut self.out)
    }

    /// The active members changed: `members` are (ring key, peer) of every active member,
    /// this one included, in any order.
    pub fn set_members(&mut self, mut members: Vec<(u64, Peer)>, now: Duration) -> Vec<WatchOut> {
        members.sort();
        members.dedup();
        self.ring = members;
        let Some(pos) = self.ring.iter().position(|(_, p)| *p == self.me) else {
            self.monitors.clear();
            self.watched.clear();
            return Vec::new();
        };
        let n = self.ring.len();
        let k = self.t.monitors.min(n - 1);
        self.monitors = (1..=k).map(|i| self.ring[(pos + i) % n].1.addr).collect();
        let watched: Vec<Peer> = (1..=k).map(|i| self.ring[(pos + n - i) % n].1).collect();
        self.watched
            .retain(|addr, w| watched.iter().any(|p| p.addr == *addr && p.bump == w.bump));
        for p in watched {
            if let std::collections::btree_map::Entry::Vacant(e) = self.watched.entry(p.addr) {
                e.insert(Watched {
                    bump: p.bump,
                    last_heard: now,
                    silence_armed: true,
                    silence_due: now + self.t.heartbeat_timeout,
                    confirm: None,
                    confirm_due: Duration::ZERO,
                });
                self.out.push(WatchOut::Schedule {
                    after: self.t.heartbeat_timeout,
                    timer: WatchTimer::Silence(p.addr),
                });
            }
        }
        std::mem::take(&mut self.out)
    }

    pub fn on_timer(&mut self, timer: WatchTimer, now: Duration) -> Vec<WatchOut> {
        match timer {
            WatchTimer::Heartbeat => {
                let mut payload = Vec::with_capacity(27);
                self.me.encode(&mut payload);
                for to in &self.monitors {
                    self.out.push(WatchOut::Send {
                        to: *to,
                        kind: Kind::Heartbeat,
                        payload: payload.clone(),
                    });
                }
                self.out.push(WatchOut::Schedule {
                    after: self.t.heartbeat_period,
                    timer: WatchTimer::Heartbeat,
                });
            }
            WatchTimer::Silence(addr) => self.on_silence(addr, now),
            WatchTimer::Confirm(addr, nonce) => {
                if let Some(w) = self.watched.get(&addr)
                    && w.confirm == Some(nonce)
                {
                    // Local health (as Lifeguard): a timer this late means this process
                    // was not running, and the answer may be waiting unread in its socket.
                    // Probe again rather than judge on what we could not hear.
                    if now > w.confirm_due + self.t.confirm_timeout / 2 {
                        self.probe(addr, now);
                    } else {
                        let peer = Peer { addr, bump: w.bump };
                        self.watched.remove(&addr);
                        self.out.push(WatchOut::Dead(peer));
                    }
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    fn on_silence(&mut self, addr: SocketAddr, now: Duration) {
        let timeout = self.t.heartbeat_timeout;
        let Some(w) = self.watched.get_mut(&addr) else {
            return;
        };
        w.silence_armed = false;
        if w.confirm.is_some() {
            return;
        }
        // Local health: a silence timer this late means this process (or the whole host)
        // was not running, so the member's heartbeats may be waiting unread and the member
        // itself may just be resuming. Not evidence: watch it afresh from now.
        if now > w.silence_due + self.t.heartbeat_period / 2 {
            w.last_heard = now;
        }
        let silent = now.saturating_sub(w.last_heard);
        if silent < timeout {
            w.silence_armed = true;
            w.silence_due = now + (timeout - silent);
            self.out.push(WatchOut::Schedule {
                after: timeout - silent,
                timer: WatchTimer::Silence(addr),
            });
            return;
        }
        self.probe(addr, now);
    }

    /// Starts (or restarts) the confirmation of `addr`: probes direct and relayed.
    fn probe(&mut self, addr: SocketAddr, now: Duration) {
        let Some(w) = self.watched.get_mut(&addr) else {
            return;
        };
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1).max(1);
        w.confirm = Some(nonce);
        w.confirm_due = now + self.t.confirm_timeout;
        let target = Peer { addr, bump: w.bump };
        let probe = Probe {
            nonce,
            target,
            reply_to: self.me.addr,
        }
        .encode();
        // Direct, then through the members that follow the target on the ring (its other
        // monitors first: they have the freshest view of it).
        let mut to = vec![addr];
        if let Some(pos) = self.ring.iter().position(|(_, p)| p.addr == addr) {
            let n = self.ring.len();
            to.extend(
                (1..n)
                    .map(|i| self.ring[(pos + i) % n].1.addr)
                    .filter(|a| *a != self.me.addr)
                    .take(self.t.relays),
            );
        }
        for to in to {
            self.out.push(WatchOut::Send {
                to,
                kind: Kind::Probe,
                payload: probe.clone(),
            });
        }
        self.out.push(WatchOut::Schedule {
            after: self.t.confirm_timeout,
            timer: WatchTimer::Confirm(addr, nonce),
        });
    }

    /// `peer` is alive (a heartbeat or a probe ack from it).
    fn heard(&mut self, peer: Peer, now: Duration) {
        let timeout = self.t.heartbeat_timeout;
        if let Some(w) = self.watched.get_mut(&peer.addr)
            && w.bump == peer.bump
        {
            w.last_heard = now;
            w.confirm = None;
            if !w.silence_armed {
                w.silence_armed = true;
                w.silence_due = now + timeout;
                self.out.push(WatchOut::Schedule {
                    after: timeout,
                    timer: WatchTimer::Silence(peer.addr),
                });
            }
        }
    }

    pub fn on_heartbeat(&mut self, peer: Peer, now: Duration) -> Vec<WatchOut> {
        self.heard(peer, now);
        std::mem::take(&mut self.out)
    }

    pub fn on_ack(&mut self, ack: ProbeAck, now: Duration) -> Vec<WatchOut> {
        self.heard(ack.from, now);
        std::mem::take(&mut self.out)
    }

    /// A probe: answer it if it is for this identity, relay it if it is for someone else,
    /// drop it if it is for an earlier life of this address.
    pub fn on_probe(&mut self, probe: Probe) -> Vec<WatchOut> {
        if probe.target.addr == self.me.addr {
            if probe.target.bump == self.me.bump {
                self.out.push(WatchOut::Send {
                    to: probe.reply_to,
                    kind: Kind::ProbeAck,
                    payload: ProbeAck {
                        nonce: probe.nonce,
                        from: self.me,
                    }
                    .encode(),
                });
            }
        } else if probe.reply_to != self.me.addr {
            self.out.push(WatchOut::Send {
                to: probe.target.addr,
                kind: Kind::Probe,
                payload: probe.encode(),
            });
        }
        std::mem::take(&mut self.out)
    }

    /// This member's own identity changed (it rejoined under a new bump).
    pub fn set_me(&mut self, me: Peer) {
        if me != self.me {
            self.me = me;
            self.watched.clear();
        }
    }

    /// Members this one sends heartbeats to.
    #[cfg(test)]
    pub fn monitors(&self) -> &[SocketAddr] {
        &self.monitors
    }

    /// Addresses this one watches.
    #[cfg(test)]
    pub fn watched(&self) -> impl Iterator<Item = &SocketAddr> {
        self.watched.keys()
    }
}

#[cfg(test)]
mod tests;
