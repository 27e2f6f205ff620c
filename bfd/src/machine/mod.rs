//! Every BFD session of the host, pure: `handle(input, now) -> Vec<Output>`. No sockets, no
//! tokio, no clock of its own; the driver ([`crate::driver`]) feeds it the datagrams read from
//! the receive sockets (with the TTL / hop limit they arrived with) and a tick whenever
//! [`Machine::next_timer`] is due, and carries out what it returns: send a packet to a peer,
//! report a state change, count a drop. The admin commands ([`Machine::add`],
//! [`Machine::remove`], [`Machine::set_profile`], [`Machine::shutdown`]) are inputs too, as
//! methods that return the outputs or the reason the command is refused.
//!
//! Rules that live here (each session's own rules are in [`Session`]):
//! - GTSM: a single-hop packet that did not arrive with TTL / hop limit 255 is dropped
//!   (RFC 5881 §5); then the codec's stateless checks (RFC 5880 §6.8.6);
//! - session selection: by Your Discriminator, which must come from the session's peer
//!   address, or by source address when Your Discriminator is zero (RFC 5880 §6.8.6; one
//!   session per peer address, single-hop or multihop);
//! - multihop (RFC 5883): a session added with [`Machine::add_multihop`] takes packets only
//!   from the multihop port, addressed to its local address, and with a TTL / hop limit of at
//!   least the profile's `minimum_ttl` (checked once the session is known, since the bound is
//!   per session); single-hop sessions take packets only from the single-hop port;
//! - admission: a valid profile, one session per peer, a receive socket for the peer's
//!   address family, a local address of the same family;
//! - local discriminators: random, non-zero, unique on the host (RFC 5880 §6.8.1);
//! - timers: the transmit and detection deadlines [`Session`] asks for, expiries fed back to
//!   it (detection first when both are due);
//! - what a state change tells the outside ([`BfdEvent`], with the peer's last state);
//! - echo (RFC 5880 §6.4): only IPv4 single-hop sessions may run it (RFC 5883 §3 forbids it
//!   for multihop); a datagram on the echo port is ours when its source and destination are
//!   the local address of the session its discriminator names, and it came back with TTL 254
//!   (the peer forwarded it once); other echo-port traffic (the peer's own echoes passing
//!   through this node) is ignored.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;

use crate::BfdError;
use crate::auth::AuthFailure;
use crate::echo::{EchoDropReason, EchoPacket};
use crate::packet::{ControlPacket, DecodeCxt, Diag, DropReason, SINGLE_HOP_TTL, State};
use crate::profile::BfdProfile;
use crate::session::{self, Session, SessionInfo};
use echo::check_echo;

#[cfg(test)]
mod auth_tests;
mod echo;
#[cfg(test)]
mod echo_tests;
#[cfg(test)]
mod multihop_tests;
#[cfg(test)]
mod tests;

/// Which address families have a receive socket (sessions of another family are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

/// A session changed state. `diag` is our local diagnostic after the change (for example
/// [`Diag::ControlDetectionTimeExpired`] or [`Diag::NeighborSignaledSessionDown`] on a Down);
/// `remote_state` is the peer's state as last received (AdminDown when the peer shut the
/// session down on purpose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdEvent {
    pub peer: IpAddr,
    pub old: State,
    pub new: State,
    pub diag: Diag,
    pub remote_state: State,
}

impl BfdEvent {
    /// True when this change means the forwarding path to the peer failed and BGP must be
    /// reset at once: Up -> Down, unless the peer signalled AdminDown (RFC 5882 §3.2: an
    /// administrative shutdown of BFD is not a path failure).
    pub fn is_failure(&self) -> bool {
        self.old == State::Up && self.new == State::Down && self.remote_state != State::AdminDown
    }
}

/// What the driver tells the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// One datagram read from a receive socket: its bytes, its source and destination
    /// addresses, the TTL / hop limit it arrived with (`None` when the kernel did not say),
    /// and whether it came in on the multihop port (4784) rather than the single-hop one.
    Datagram {
        data: &'a [u8],
        src: IpAddr,
        dst: Option<IpAddr>,
        ttl: Option<u8>,
        multihop: bool,
    },
    /// One IPv4/UDP datagram read from the echo port (3785): its addresses, TTL and
    /// payload.
    Echo {
        payload: &'a [u8],
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
    },
    /// [`Machine::next_timer`] is due (early or spurious ticks are harmless).
    Timer,
}

/// What the machine asks the driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `packet` to `peer` from that session's socket.
    Send { peer: IpAddr, packet: ControlPacket },
    /// A session changed state: count it, log it, tell the subscribers.
    StateChange(BfdEvent),
    /// A received packet was discarded: before session selection (`peer` is `None`: GTSM,
    /// codec checks, no such session) or by the session of `peer`.
    Drop {
        peer: Option<IpAddr>,
        reason: DropReason,
    },
    /// A packet from `peer` failed authentication (RFC 5880 §6.7) with another reason than
    /// the previous failure (log it); every failure also gives an [`Output::Drop`].
    AuthFailed { peer: IpAddr, failure: AuthFailure },
    /// Send our echo `packet` for the session to `peer`: from and to `local`, to the peer's
    /// link-layer address (RFC 5880 §6.4).
    SendEcho {
        peer: IpAddr,
        local: IpAddr,
        packet: EchoPacket,
    },
    /// One of our echoes came back to the session of `peer`.
    EchoReturned { peer: IpAddr },
    /// A datagram on the echo port that claimed to be ours was discarded.
    EchoDrop {
        peer: Option<IpAddr>,
        reason: EchoDropReason,
    },
    /// A probe of our echo function to `peer` got nothing back (the peer does not loop our
    /// echoes); the session stays Up and probes again after `hold`.
    EchoNotReturned { peer: IpAddr, hold: Duration },
}

/// One session as the machine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    pub info: SessionInfo,
    /// Our address for the session.
    pub local: IpAddr,
    /// A multihop session (RFC 5883).
    pub multihop: bool,
    /// Packets selected for this session.
    pub packets_in: u64,
    pub state_changes: u64,
    /// Packets this session discarded, by reason (only reasons that occurred).
    pub drops: BTreeMap<DropReason, u64>,
    /// The last authentication failure since the session was last Up.
    pub last_auth_failure: Option<AuthFailure>,
}

#[derive(Debug)]
struct Peer {
    session: Session,
    local: IpAddr,
    /// `Some(minimum TTL)` for a multihop session, `None` for single-hop.
    multihop: Option<u8>,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    echo_tx_at: Option<Instant>,
    echo_detect_at: Option<Instant>,
    packets_in: u64,
    state_changes: u64,
    drops: BTreeMap<DropReason, u64>,
    last_auth_failure: Option<AuthFailure>,
}

/// The sessions of one host, keyed by peer address.
#[derive(Debug)]
pub struct Machine {
    families: Families,
    sessions: BTreeMap<IpAddr, Peer>,
    by_discr: HashMap<u32, IpAddr>,
    rng: StdRng,
}

impl Machine {
    /// `rng` draws the local discriminators and seeds each session's jitter: the driver
    /// passes one seeded from the OS, tests a fixed seed.
    pub fn new(families: Families, rng: StdRng) -> Machine {
        Machine {
            families,
            sessions: BTreeMap::new(),
            by_discr: HashMap::new(),
            rng,
        }
    }

    /// When [`Input::Timer`] is next due, if any session has a timer running.
    pub fn next_timer(&self) -> Option<Instant> {
        self.sessions
            .values()
            .flat_map(|p| [p.tx_at, p.detect_at, p.echo_tx_at, p.echo_detect_at])
            .flatten()
            .min()
    }

    /// The peers with a session, in address order.
    pub fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.sessions.keys().copied()
    }

    pub fn peer(&self, peer: IpAddr) -> Option<PeerView> {
        self.sessions.get(&peer).map(|p| PeerView {
            info: p.session.info(),
            local: p.local,
            multihop: p.multihop.is_some(),
            packets_in: p.packets_in,
            state_changes: p.state_changes,
            drops: p.drops.clone(),
            last_auth_failure: p.last_auth_failure.clone(),
        })
    }

    /// Whether [`Machine::add`] would accept this session. The driver asks before it opens
    /// the session's socket, so that a refused session costs no socket.
    pub fn check_add(
        &self,
        peer: IpAddr,
        local: IpAddr,
        multihop: bool,
        profile: &BfdProfile,
    ) -> Result<(), BfdError> {
        profile.validate()?;
        check_echo(peer, multihop, profile)?;
        if self.sessions.contains_key(&peer) {
            return Err(BfdError::SessionExists { peer });
        }
        if (peer.is_ipv4() && !self.families.ipv4) || (peer.is_ipv6() && !self.families.ipv6) {
            return Err(BfdError::BadSession {
                peer,
                reason: "no receive socket for this address family (disabled in ManagerConfig or unavailable on the host)".to_string(),
            });
        }
        if peer.is_ipv4() != local.is_ipv4() {
            return Err(BfdError::BadSession {
                peer,
                reason: format!("local address {local} is not of the peer's address family"),
            });
        }
        Ok(())
    }

    /// Starts a single-hop session (RFC 5881) to `peer` in state Down: the first packet at
    /// once (unless passive), then periodic ones.
    pub fn add(
        &mut self,
        peer: IpAddr,
        local: IpAddr,
        profile: BfdProfile,
        now: Instant,
    ) -> Result<Vec<Output>, BfdError> {
        self.add_session(peer, local, false, profile, now)
    }

    /// Starts a multihop session (RFC 5883) to `peer`, like [`Machine::add`]; it accepts
    /// packets with a TTL / hop limit of at least `profile.minimum_ttl`.
    pub fn add_multihop(
        &mut self,
        peer: IpAddr,
        local: IpAddr,
        profile: BfdProfile,
        now: Instant,
    ) -> Result<Vec<Output>, BfdError> {
        self.add_session(peer, local, true, profile, now)
    }

    fn add_session(
        &mut self,
        peer: IpAddr,
        local: IpAddr,
        multihop: bool,
        profile: BfdProfile,
        now: Instant,
    ) -> Result<Vec<Output>, BfdError> {
        self.check_add(peer, local, multihop, &profile)?;
        let min_ttl = multihop.then_some(profile.minimum_ttl);
        // RFC 5880 §6.8.1: bfd.LocalDiscr is non-zero and unique on the system.
        let discr = loop {
            let d: u32 = self.rng.random();
            if d != 0 && !self.by_discr.contains_key(&d) {
                break d;
            }
        };
        let session = Session::new(profile, discr, self.rng.random());
        self.sessions.insert(
            peer,
            Peer {
                session,
                local,
                multihop: min_ttl,
                tx_at: None,
                detect_at: None,
                echo_tx_at: None,
                echo_detect_at: None,
                packets_in: 0,
                state_changes: 0,
                drops: BTreeMap::new(),
                last_auth_failure: None,
            },
        );
        self.by_discr.insert(discr, peer);
        let mut out = Vec::new();
        self.feed(peer, session::Input::Start, now, &mut out);
        Ok(out)
    }

    /// Sends AdminDown to `peer` (RFC 5880 §6.8.16) and forgets the session.
    pub fn remove(&mut self, peer: IpAddr, now: Instant) -> Result<Vec<Output>, BfdError> {
        if !self.sessions.contains_key(&peer) {
            return Err(BfdError::NoSession { peer });
        }
        let mut out = Vec::new();
        self.feed(peer, session::Input::AdminDown, now, &mut out);
        if let Some(p) = self.sessions.remove(&peer) {
            self.by_discr.remove(&p.session.local_discr());
        }
        Ok(out)
    }

    /// New timers for the session to `peer`; while Up a Poll Sequence announces them
    /// (RFC 5880 §6.8.3).
    pub fn set_profile(
        &mut self,
        peer: IpAddr,
        profile: BfdProfile,
        now: Instant,
    ) -> Result<Vec<Output>, BfdError> {
        profile.validate()?;
        let Some(p) = self.sessions.get(&peer) else {
            return Err(BfdError::NoSession { peer });
        };
        check_echo(peer, p.multihop.is_some(), &profile)?;
        if let Some(p) = self.sessions.get_mut(&peer)
            && p.multihop.is_some()
        {
            p.multihop = Some(profile.minimum_ttl);
        }
        let mut out = Vec::new();
        self.feed(peer, session::Input::SetProfile(profile), now, &mut out);
        Ok(out)
    }

    /// AdminDown on every session (RFC 5882 §3.2: the peers must not read our stop as a
    /// failure), then no session at all.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let peers: Vec<IpAddr> = self.peers().collect();
        for peer in peers {
            self.feed(peer, session::Input::AdminDown, now, &mut out);
        }
        self.sessions.clear();
        self.by_discr.clear();
        out
    }

    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Datagram {
                data,
                src,
                dst,
                ttl,
                multihop,
            } => {
                let rx = Rx {
                    src,
                    dst,
                    ttl,
                    multihop,
                };
                self.on_datagram(data, rx, now, &mut out)
            }
            Input::Echo {
                payload,
                src,
                dst,
                ttl,
            } => self.on_echo(payload, (src, dst, ttl), now, &mut out),
            Input::Timer => self.on_timer(now, &mut out),
        }
        out
    }

    fn on_datagram(&mut self, data: &[u8], rx: Rx, now: Instant, out: &mut Vec<Output>) {
        let Rx { src, ttl, .. } = rx;
        let mut drop = |reason| out.push(Output::Drop { peer: None, reason });
        // RFC 5881 §5 (GTSM): single-hop packets must arrive with TTL / hop limit 255.
        // Multihop packets are checked against their session's minimum below.
        if !rx.multihop && ttl != Some(SINGLE_HOP_TTL) {
            drop(DropReason::TtlNot255);
            return;
        }
        // The A bit is checked against the session's authentication once it is selected.
        let cxt = DecodeCxt { auth_in_use: None };
        let pkt = match ControlPacket::decode(data, &cxt) {
            Ok(p) => p,
            Err(reason) => {
                drop(reason);
                return;
            }
        };
        // RFC 5880 §6.8.6: Your Discriminator selects the session; when zero, the source
        // address does (one session per peer address; RFC 5883 §3 adds the destination for
        // multihop, checked next).
        let peer = if pkt.your_discr != 0 {
            match self.by_discr.get(&pkt.your_discr) {
                Some(p) if *p == src => src,
                Some(_) => {
                    drop(DropReason::SourceMismatch);
                    return;
                }
                None => {
                    drop(DropReason::NoSession);
                    return;
                }
            }
        } else if self.sessions.contains_key(&src) {
            src
        } else {
            drop(DropReason::NoSession);
            return;
        };
        let Some(p) = self.sessions.get_mut(&peer) else {
            return;
        };
        if let Some(reason) = multihop_check(p, &rx) {
            *p.drops.entry(reason).or_default() += 1;
            out.push(Output::Drop {
                peer: Some(peer),
                reason,
            });
            return;
        }
        p.packets_in += 1;
        self.feed(peer, session::Input::Received(pkt), now, out);
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut due = Vec::new();
        for (peer, p) in &mut self.sessions {
            if p.detect_at.is_some_and(|t| t <= now) {
                p.detect_at = None;
                due.push((*peer, session::Input::DetectTimerExpired));
            }
            if p.tx_at.is_some_and(|t| t <= now) {
                p.tx_at = None;
                due.push((*peer, session::Input::TxTimerExpired));
            }
            if p.echo_detect_at.is_some_and(|t| t <= now) {
                p.echo_detect_at = None;
                due.push((*peer, session::Input::EchoDetectTimerExpired));
            }
            if p.echo_tx_at.is_some_and(|t| t <= now) {
                p.echo_tx_at = None;
                due.push((*peer, session::Input::EchoTxTimerExpired));
            }
        }
        for (peer, input) in due {
            self.feed(peer, input, now, out);
        }
    }

    /// Runs one input through the session of `peer`: timers are kept here, the rest is
    /// passed on in the session's order.
    fn feed(&mut self, peer: IpAddr, input: session::Input, now: Instant, out: &mut Vec<Output>) {
        let Some(p) = self.sessions.get_mut(&peer) else {
            return;
        };
        for o in p.session.process(input) {
            match o {
                session::Output::Send(packet) => out.push(Output::Send { peer, packet }),
                session::Output::ArmTx(d) => p.tx_at = Some(now + d),
                session::Output::StopTx => p.tx_at = None,
                session::Output::ArmDetect(d) => p.detect_at = Some(now + d),
                session::Output::StopDetect => p.detect_at = None,
                session::Output::StateChange { old, new, diag } => {
                    p.state_changes += 1;
                    if new == State::Up {
                        p.last_auth_failure = None;
                    }
                    out.push(Output::StateChange(BfdEvent {
                        peer,
                        old,
                        new,
                        diag,
                        remote_state: p.session.info().remote_state,
                    }));
                }
                session::Output::Drop(reason) => {
                    *p.drops.entry(reason).or_default() += 1;
                    out.push(Output::Drop {
                        peer: Some(peer),
                        reason,
                    });
                }
                session::Output::AuthFailed(failure) => {
                    let reason = failure.reason();
                    *p.drops.entry(reason).or_default() += 1;
                    let again = p.last_auth_failure.as_ref().map(AuthFailure::reason);
                    if again != Some(reason) {
                        out.push(Output::AuthFailed {
                            peer,
                            failure: failure.clone(),
                        });
                    }
                    p.last_auth_failure = Some(failure);
                    out.push(Output::Drop {
                        peer: Some(peer),
                        reason,
                    });
                }
                session::Output::SendEcho(packet) => out.push(Output::SendEcho {
                    peer,
                    local: p.local,
                    packet,
                }),
                session::Output::ArmEchoTx(d) => p.echo_tx_at = Some(now + d),
                session::Output::StopEchoTx => p.echo_tx_at = None,
                session::Output::ArmEchoDetect(d) => p.echo_detect_at = Some(now + d),
                session::Output::StopEchoDetect => p.echo_detect_at = None,
                session::Output::EchoReturned => out.push(Output::EchoReturned { peer }),
                session::Output::EchoDrop(reason) => out.push(Output::EchoDrop {
                    peer: Some(peer),
                    reason,
                }),
                session::Output::EchoNotReturned { hold } => {
                    out.push(Output::EchoNotReturned { peer, hold })
                }
            }
        }
    }
}

/// How a datagram arrived, besides its bytes.
struct Rx {
    src: IpAddr,
    dst: Option<IpAddr>,
    ttl: Option<u8>,
    multihop: bool,
}

/// The per-session receive rules of the hop mode: the port must match the session's mode; a
/// multihop packet must be addressed to the session's local address (when the kernel said)
/// and arrive with TTL / hop limit >= the profile's `minimum_ttl` (RFC 5883 §3 selects
/// multihop sessions by source and destination, §4 gives them their own port; it sets no TTL
/// rule, the minimum is MetalLB's / FRR's `minimumTtl`).
fn multihop_check(p: &Peer, rx: &Rx) -> Option<DropReason> {
    match (p.multihop, rx.multihop) {
        (None, false) => None,
        (None, true) | (Some(_), false) => Some(DropReason::HopModeMismatch),
        (Some(min), true) => {
            if rx.dst.is_some_and(|d| d != p.local) {
                Some(DropReason::DestinationMismatch)
            } else if rx.ttl.is_none_or(|t| t < min) {
                Some(DropReason::TtlBelowMinimum)
            } else {
                None
            }
        }
    }
}
