//! The sans-IO membership core: SWIM (the `foca` crate) plus datagram authentication, seed
//! announces and the direct leave broadcast. Inputs are datagrams, timer expiries and
//! commands; outputs are datagrams to send, timers to arm and live-set changes. No sockets,
//! no clock: the driver (or a test) owns both.

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
use super::wire::{Key, Kind, OVERHEAD, OpenError};
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
        })
    }

    pub fn identity(&self) -> &NodeId {
        self.foca.identity()
    }

    /// Live member names, this node included (empty after [`Core::leave`]).
    pub fn live(&self) -> &BTreeSet<String> {
        &self.live
    }

    /// First announces to the seeds, and arms the re-announce timer.
    pub fn start(&mut self) -> Vec<Output> {
        self.announce_to_seeds();
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
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &[u8]) -> Vec<Output> {
        self.metrics.message_in();
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
        }
        self.finish()
    }

    /// A timer armed by an earlier [`Output::Schedule`] expired.
    pub fn handle_timer(&mut self, timer: CoreTimer) -> Vec<Output> {
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

    /// Books events, recomputes the live set and hands out what is pending.
    fn finish(&mut self) -> Vec<Output> {
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
        let out = std::mem::take(&mut self.rt.out);
        for o in &out {
            if matches!(o, Output::Send { .. }) {
                self.metrics.message_out();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
