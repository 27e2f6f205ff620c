//! The sans-IO membership core: SWIM (the `foca` crate) plus datagram authentication, seed
//! announces, the direct leave broadcast and the ring monitor ([`super::ring`]) for fast
//! crash detection. Inputs are datagrams, timer expiries and commands, each with `now`
//! (a monotonic time from any origin); outputs are datagrams to send, timers to arm and
//! live-set changes. No sockets, no clock: the driver (or a test) owns both.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use foca::{Codec, Foca, Member, Notification, OwnedNotification, PostcardCodec, Runtime, State};
use rand_foca::SeedableRng;
use rand_foca::rngs::SmallRng;
use tracing::{debug, info, warn};

use super::identity::NodeId;
use super::metrics::Metrics;
use super::ring::{Watch, WatchOut, WatchTimer, WatchTuning, ring_key};
use super::wire::{Key, Kind, OVERHEAD, OpenError, Peer, Probe, ProbeAck, decode_heartbeat};
use super::{MembershipError, Tuning};

/// Largest datagram we send: fits an Ethernet MTU with IPv6 and UDP headers.
pub const MAX_DATAGRAM: usize = 1400;

/// A timer the core asked for; hand it back through [`Core::handle_timer`] when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreTimer {
    /// A SWIM timer (probe, indirect probe, suspicion, periodic gossip and announce).
    Swim(foca::Timer<NodeId>),
    /// Announce again to the seeds that are not live members.
    Reannounce,
    /// A ring monitor timer.
    Watch(WatchTimer),
}

/// What the core wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this (already authenticated) datagram.
    Send { to: SocketAddr, data: Vec<u8> },
    /// Call [`Core::handle_timer`] with `timer` after `after`.
    Schedule { after: Duration, timer: CoreTimer },
    /// The set of live member names (this node included) is now this.
    Live(BTreeSet<String>),
}

/// foca's runtime: collects what foca asks for.
struct Collector {
    key: Key,
    out: Vec<Output>,
    events: Vec<OwnedNotification<NodeId>>,
}

impl Runtime<NodeId> for Collector {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.events.push(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.out.push(Output::Send {
            to: to.addr,
            data: self.key.seal(Kind::Swim, data),
        });
    }

    fn submit_after(&mut self, event: foca::Timer<NodeId>, after: Duration) {
        self.out.push(Output::Schedule {
            after,
            timer: CoreTimer::Swim(event),
        });
    }
}

/// One member's protocol state.
pub struct Core {
    foca: Foca<NodeId, PostcardCodec, SmallRng, foca::NoCustomBroadcast>,
    rt: Collector,
    seeds: Vec<SocketAddr>,
    tuning: Tuning,
    live: BTreeSet<String>,
    metrics: Arc<Metrics>,
    left: bool,
    /// The ring monitor, unless `tuning.ring_monitors` is 0.
    watch: Option<Watch>,
    /// The ring as last handed to the monitor.
    ring: Vec<(u64, Peer)>,
    /// Recompute the live set and the ring on the next `finish`.
    dirty: bool,
    now: Duration,
}

/// foca's configuration for our tuning.
pub fn foca_config(t: &Tuning) -> Result<foca::Config, MembershipError> {
    if t.probe_rtt.is_zero() || t.probe_rtt >= t.probe_period {
        return Err(MembershipError::Tuning(
            "probe_rtt must be above zero and below probe_period",
        ));
    }
    if t.suspect_to_down.is_zero() || t.gossip_period.is_zero() || t.reannounce_period.is_zero() {
        return Err(MembershipError::Tuning(
            "suspect_to_down, gossip_period and reannounce_period must be above zero",
        ));
    }
    let nz =
        |n: usize, what: &'static str| NonZeroUsize::new(n).ok_or(MembershipError::Tuning(what));
    // memberlist-like LAN defaults for dissemination, with our (much shorter) timers.
    let mut c = foca::Config::new_lan(NonZeroU32::new(64).expect("non-zero"));
    c.probe_period = t.probe_period;
    c.probe_rtt = t.probe_rtt;
    c.num_indirect_probes = nz(t.indirect_probes, "indirect_probes must be at least 1")?;
    c.suspect_to_down_after = t.suspect_to_down;
    c.remove_down_after = Some(t.remove_down_after);
    c.max_packet_size = NonZeroUsize::new(MAX_DATAGRAM - OVERHEAD).expect("non-zero");
    c.notify_down_members = true;
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: t.gossip_period,
        num_members: nz(t.gossip_fanout, "gossip_fanout must be at least 1")?,
    });
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: t.reannounce_period,
        num_members: NonZeroUsize::new(2).expect("non-zero"),
    });
    Ok(c)
}

fn peer_of(id: &NodeId) -> Peer {
    Peer {
        addr: id.addr,
        bump: id.bump,
    }
}

impl Core {
    /// A member named `name`, reachable by peers at `addr`, in its life number `bump`,
    /// with the SWIM randomness seeded by `rng_seed` (fixed in tests).
    pub fn new(
        id: NodeId,
        key: &[u8],
        seeds: Vec<SocketAddr>,
        tuning: Tuning,
        rng_seed: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Self, MembershipError> {
        let config = foca_config(&tuning)?;
        let live = BTreeSet::from([id.name.clone()]);
        let watch = (tuning.ring_monitors > 0).then(|| {
            Watch::new(
                WatchTuning {
                    heartbeat_period: tuning.heartbeat_period,
                    heartbeat_timeout: tuning.heartbeat_timeout,
                    confirm_timeout: tuning.confirm_timeout,
                    monitors: tuning.ring_monitors,
                    relays: tuning.indirect_probes,
                },
                peer_of(&id),
                &id.name,
            )
        });
        metrics.set_members(1);
        Ok(Core {
            foca: Foca::new(id, config, SmallRng::seed_from_u64(rng_seed), PostcardCodec),
            rt: Collector {
                key: Key::new(key),
                out: Vec::new(),
                events: Vec::new(),
            },
            seeds,
            tuning,
            live,
            metrics,
            left: false,
            watch,
            ring: Vec::new(),
            dirty: true,
            now: Duration::ZERO,
        })
    }

    pub fn identity(&self) -> &NodeId {
        self.foca.identity()
    }

    /// Live member names, this node included (empty after [`Core::leave`]).
    pub fn live(&self) -> &BTreeSet<String> {
        &self.live
    }

    /// First announces to the seeds, and arms the re-announce and heartbeat timers.
    pub fn start(&mut self, now: Duration) -> Vec<Output> {
        self.now = now;
        self.announce_to_seeds();
        if let Some(w) = self.watch.as_mut() {
            let out = w.start();
            self.watch_outputs(out);
        }
        self.rt.out.push(Output::Schedule {
            after: self.tuning.reannounce_period,
            timer: CoreTimer::Reannounce,
        });
        self.finish()
    }

    /// Replaces the seed list (discovery update) and announces to new seeds at once.
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>) -> Vec<Output> {
        if self.left {
            return Vec::new();
        }
        self.seeds = seeds;
        self.announce_to_seeds();
        self.finish()
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &[u8], now: Duration) -> Vec<Output> {
        self.now = now;
        self.metrics.message_in(data.len());
        if self.left {
            return Vec::new();
        }
        match self.rt.key.open(data) {
            Err(OpenError::Unauthenticated) => {
                self.metrics.auth_failure();
                debug!(%from, len = data.len(), "dropped unauthenticated membership datagram");
            }
            Err(OpenError::Unknown { version, kind }) => {
                self.metrics.malformed();
                debug!(%from, version, kind, "dropped membership datagram of unknown kind");
            }
            Ok((Kind::Swim, payload)) => {
                if let Err(error) = self.foca.handle_data(payload, &mut self.rt) {
                    self.metrics.malformed();
                    debug!(%from, %error, "dropped membership datagram foca rejected");
                }
            }
            Ok((Kind::Leave, payload)) => self.on_leave_notice(from, payload),
            Ok((Kind::Dead, payload)) => self.on_death_notice(from, payload),
            Ok((kind @ (Kind::Heartbeat | Kind::Probe | Kind::ProbeAck), payload)) => {
                self.on_watch_datagram(from, kind, payload)
            }
        }
        self.finish()
    }

    /// A timer armed by an earlier [`Output::Schedule`] expired.
    pub fn handle_timer(&mut self, timer: CoreTimer, now: Duration) -> Vec<Output> {
        self.now = now;
        if self.left {
            return Vec::new();
        }
        match timer {
            CoreTimer::Swim(t) => {
                if let Err(error) = self.foca.handle_timer(t, &mut self.rt) {
                    warn!(%error, "membership timer failed");
                }
            }
            CoreTimer::Reannounce => {
                self.announce_to_seeds();
                self.rt.out.push(Output::Schedule {
                    after: self.tuning.reannounce_period,
                    timer: CoreTimer::Reannounce,
                });
            }
            CoreTimer::Watch(t) => {
                if let Some(w) = self.watch.as_mut() {
                    let out = w.on_timer(t, now);
                    self.watch_outputs(out);
                }
            }
        }
        self.finish()
    }

    /// Leaves gracefully: a leave notice straight to every live member and every seed
    /// (each sent `leave_repeats` times against loss; 0 sends none), plus SWIM's own leave
    /// gossip. After this the core ignores every input.
    pub fn leave(&mut self) -> Vec<Output> {
        if self.left {
            return Vec::new();
        }
        let me = self.foca.identity().clone();
        let mut notice = Vec::new();
        match PostcardCodec.encode_member(&Member::down(me.clone()), &mut notice) {
            Ok(()) => {
                let mut targets: BTreeSet<SocketAddr> =
                    self.foca.iter_members().map(|m| m.id().addr).collect();
                targets.extend(self.seeds.iter().copied());
                targets.remove(&me.addr);
                let data = self.rt.key.seal(Kind::Leave, &notice);
                for to in targets {
                    for _ in 0..self.tuning.leave_repeats {
                        self.rt.out.push(Output::Send {
                            to,
                            data: data.clone(),
                        });
                    }
                }
            }
            Err(error) => warn!(%error, "failed to encode leave notice"),
        }
        if let Err(error) = self.foca.leave_cluster(&mut self.rt) {
            warn!(%error, "foca leave failed");
        }
        self.left = true;
        self.dirty = true;
        info!(name = %me.name, "left membership");
        self.finish()
    }

    fn on_leave_notice(&mut self, from: SocketAddr, payload: &[u8]) {
        let member: Member<NodeId> = match PostcardCodec.decode_member(payload) {
            Ok(m) if m.state() == State::Down => m,
            Ok(_) | Err(_) => {
                self.metrics.malformed();
                debug!(%from, "dropped malformed leave notice");
                return;
            }
        };
        if member.id() == self.foca.identity() {
            // Someone replayed our own old notice at us: not a reason to die.
            return;
        }
        self.metrics.leave_received();
        debug!(%from, name = %member.id().name, "leave notice");
        if let Err(error) = self
            .foca
            .apply_many(std::iter::once(member), true, &mut self.rt)
        {
            warn!(%error, "failed to apply leave notice");
        }
    }

    fn on_watch_datagram(&mut self, from: SocketAddr, kind: Kind, payload: &[u8]) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        let out = match kind {
            Kind::Heartbeat => decode_heartbeat(payload).map(|p| w.on_heartbeat(p, self.now)),
            Kind::Probe => Probe::decode(payload).map(|p| w.on_probe(p)),
            Kind::ProbeAck => ProbeAck::decode(payload).map(|a| w.on_ack(a, self.now)),
            _ => None,
        };
        match out {
            Some(out) => self.watch_outputs(out),
            None => {
                self.metrics.malformed();
                debug!(%from, ?kind, "dropped malformed ring monitor datagram");
            }
        }
    }

    fn watch_outputs(&mut self, out: Vec<WatchOut>) {
        for o in out {
            match o {
                WatchOut::Send { to, kind, payload } => self.rt.out.push(Output::Send {
                    to,
                    data: self.rt.key.seal(kind, &payload),
                }),
                WatchOut::Schedule { after, timer } => self.rt.out.push(Output::Schedule {
                    after,
                    timer: CoreTimer::Watch(timer),
                }),
                WatchOut::Dead(peer) => self.declare_dead(peer),
            }
        }
    }

    /// The ring monitor found `peer` silent and unreachable: down in SWIM (which gossips
    /// it too) and a death notice straight to every other member, like a leave (and, like
    /// it, `leave_repeats` times).
    fn declare_dead(&mut self, peer: Peer) {
        let Some(id) = self
            .foca
            .iter_members()
            .map(|m| m.id())
            .find(|id| peer_of(id) == peer)
            .cloned()
        else {
            return;
        };
        self.metrics.declared_dead();
        info!(member = %id.name, "ring monitor: member silent and unreachable, declaring it down");
        let mut notice = Vec::new();
        if let Err(error) = PostcardCodec.encode_member(&Member::down(id.clone()), &mut notice) {
            warn!(%error, "failed to encode death notice");
            return;
        }
        let data = self.rt.key.seal(Kind::Dead, &notice);
        let me = self.foca.identity().addr;
        let targets: BTreeSet<SocketAddr> = self
            .foca
            .iter_members()
            .map(|m| m.id().addr)
            .filter(|a| *a != me && *a != id.addr)
            .collect();
        // As many copies as a leave notice (at least one): one lost copy must not leave a
        // member waiting for gossip.
        for to in targets {
            for _ in 0..self.tuning.leave_repeats.max(1) {
                self.rt.out.push(Output::Send {
                    to,
                    data: data.clone(),
                });
            }
        }
        if let Err(error) =
            self.foca
                .apply_many(std::iter::once(Member::down(id)), true, &mut self.rt)
        {
            warn!(%error, "failed to apply death");
        }
        self.dirty = true;
    }

    fn on_death_notice(&mut self, from: SocketAddr, payload: &[u8]) {
        let member: Member<NodeId> = match PostcardCodec.decode_member(payload) {
            Ok(m) if m.state() == State::Down => m,
            Ok(_) | Err(_) => {
                self.metrics.malformed();
                debug!(%from, "dropped malformed death notice");
                return;
            }
        };
        self.metrics.death_notice_received();
        // About us (a false verdict, or a replay): foca renews our identity and rejoins.
        debug!(%from, name = %member.id().name, "death notice");
        if let Err(error) = self
            .foca
            .apply_many(std::iter::once(member), true, &mut self.rt)
        {
            warn!(%error, "failed to apply death notice");
        }
        self.dirty = true;
    }

    fn announce_to_seeds(&mut self) {
        let own = self.foca.identity().addr;
        let active: BTreeSet<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        for seed in self.seeds.clone() {
            if seed != own
                && !active.contains(&seed)
                && let Err(error) = self.foca.announce(NodeId::seed(seed), &mut self.rt)
            {
                warn!(%seed, %error, "failed to announce to seed");
            }
        }
    }

    /// Books events, recomputes the live set and the ring (when SWIM reported a change)
    /// and hands out what is pending.
    fn finish(&mut self) -> Vec<Output> {
        if !self.rt.events.is_empty() {
            self.dirty = true;
        }
        for ev in self.rt.events.drain(..) {
            match ev {
                OwnedNotification::Rejoin(id) => {
                    self.metrics.rejoin();
                    info!(bump = id.bump, "declared down by the cluster; rejoined");
                }
                OwnedNotification::Defunct if !self.left => {
                    warn!("declared down by the cluster and could not rejoin");
                }
                other => debug!(event = ?other, "swim event"),
            }
        }
        if !std::mem::take(&mut self.dirty) {
            return self.take_out();
        }
        self.update_ring();
        let live: BTreeSet<String> = if self.left {
            BTreeSet::new()
        } else {
            std::iter::once(self.foca.identity().name.clone())
                .chain(self.foca.iter_members().map(|m| m.id().name.clone()))
                .collect()
        };
        if live != self.live {
            for gone in self.live.difference(&live) {
                if !self.left {
                    self.metrics.member_down();
                    info!(member = %gone, "member down");
                }
            }
            for new in live.difference(&self.live) {
                self.metrics.member_up();
                info!(member = %new, "member up");
            }
            self.metrics.set_members(live.len());
            self.live = live.clone();
            self.rt.out.push(Output::Live(live));
        }
        self.take_out()
    }

    fn update_ring(&mut self) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        let me = self.foca.identity();
        let ring: Vec<(u64, Peer)> = if self.left {
            Vec::new()
        } else {
            let mut ring: Vec<(u64, Peer)> = std::iter::once(me)
                .chain(self.foca.iter_members().map(|m| m.id()))
                .map(|id| (ring_key(&id.name), peer_of(id)))
                .collect();
            ring.sort();
            ring
        };
        if ring != self.ring {
            w.set_me(peer_of(me));
            let out = w.set_members(ring.clone(), self.now);
            self.ring = ring;
            self.watch_outputs(out);
        }
    }

    fn take_out(&mut self) -> Vec<Output> {
        let out = std::mem::take(&mut self.rt.out);
        for o in &out {
            if let Output::Send { data, .. } = o {
                self.metrics.message_out(data.len());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
