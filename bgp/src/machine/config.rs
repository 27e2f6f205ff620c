//! What one session is configured with, and the OPEN it sends.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::packet::{Capability, Family, GrFamily, NextHopTuple, Open};

/// Default ConnectRetry time: the timeout of one connection attempt and the cap of the wait
/// between failed attempts. Short, so that a session is back within a few seconds of its
/// router (RFC 4271 suggests 120 s; FRR's `timers connect` and MetalLB's `connectTime` set it).
pub const DEFAULT_CONNECT_TIME: Duration = Duration::from_secs(2);

/// Graceful restart (RFC 4724) as a restarting speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestart {
    /// How long the peer should keep our routes after the session drops (≤ 4095 s).
    pub restart_time: u16,
}

/// `dynamicASN`: the peer's AS is learned from its OPEN, within a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DynamicAsn {
    /// The peer's AS must be ours (iBGP).
    Internal,
    /// The peer's AS must differ from ours (eBGP).
    External,
}

/// Which AS the peer's OPEN must carry (RFC 4271 §6.2: otherwise Bad Peer AS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsRule {
    /// `peerASN`: exactly this one.
    Fixed(u32),
    /// `dynamicASN`, with our AS (`local`) to compare with.
    Dynamic { mode: DynamicAsn, local: u32 },
}

impl PeerAsRule {
    /// The rule of a peer configured with `peer_asn` or `dynamic_asn` (which wins), when we
    /// present `local_asn`.
    pub fn new(peer_asn: u32, dynamic_asn: Option<DynamicAsn>, local_asn: u32) -> PeerAsRule {
        match dynamic_asn {
            None => PeerAsRule::Fixed(peer_asn),
            Some(mode) => PeerAsRule::Dynamic {
                mode,
                local: local_asn,
            },
        }
    }

    /// Whether an OPEN with AS `asn` (the 4-octet one when the peer sent it) is accepted.
    pub fn accepts(self, asn: u32) -> bool {
        match self {
            PeerAsRule::Fixed(want) => asn == want,
            PeerAsRule::Dynamic {
                mode: DynamicAsn::Internal,
                local,
            } => asn == local,
            PeerAsRule::Dynamic {
                mode: DynamicAsn::External,
                local,
            } => asn != local && asn != 0,
        }
    }

    /// Whether the session is eBGP, as far as it is known before the peer's OPEN.
    pub fn is_ebgp(self, local: u32) -> bool {
        match self {
            PeerAsRule::Fixed(want) => want != local,
            PeerAsRule::Dynamic { mode, .. } => mode == DynamicAsn::External,
        }
    }
}

impl std::fmt::Display for PeerAsRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAsRule::Fixed(a) => write!(f, "peerASN {a}"),
            PeerAsRule::Dynamic {
                mode: DynamicAsn::Internal,
                local,
            } => write!(f, "dynamicASN internal: our AS {local}"),
            PeerAsRule::Dynamic {
                mode: DynamicAsn::External,
                local,
            } => write!(f, "dynamicASN external: any AS but ours ({local})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    /// The peer's AS, unless `dynamic_asn` is set (then it is learned from the OPEN).
    pub peer_asn: u32,
    /// `dynamicASN`: accept the AS the peer opens with, within this rule.
    pub dynamic_asn: Option<DynamicAsn>,
    pub router_id: Ipv4Addr,
    /// Proposed hold time: 0 (no keepalives) or ≥ 3 seconds.
    pub hold_time: u16,
    /// Keepalive interval; 0 means hold time / 3. Used as configured when the peer accepts
    /// our hold time; scaled down to at most a third of a lower hold time the peer proposes.
    pub keepalive: u16,
    /// ConnectRetry time: timeout of one outbound connection attempt, and the cap of the
    /// backoff between failed attempts.
    pub connect_time: Duration,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    pub families: Vec<Family>,
    pub graceful_restart: Option<GracefulRestart>,
    /// Offer RFC 8654 extended messages.
    pub extended_messages: bool,
    /// Offer RFC 8950 extended next hop encoding for IPv4 unicast (IPv4 routes with an IPv6
    /// next hop): unnumbered sessions need it.
    pub extended_next_hop: bool,
    /// Seed for the backoff jitter (tests use a fixed one).
    pub jitter_seed: u64,
}

impl FsmConfig {
    pub fn new(local_asn: u32, peer_asn: u32, router_id: Ipv4Addr) -> Self {
        FsmConfig {
            local_asn,
            peer_asn,
            dynamic_asn: None,
            router_id,
            hold_time: 90,
            keepalive: 30,
            connect_time: DEFAULT_CONNECT_TIME,
            passive: false,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            graceful_restart: None,
            extended_messages: false,
            extended_next_hop: false,
            jitter_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Which AS the peer's OPEN must carry.
    pub fn peer_as_rule(&self) -> PeerAsRule {
        PeerAsRule::new(self.peer_asn, self.dynamic_asn, self.local_asn)
    }

    /// The keepalive interval for a negotiated hold time (RFC 4271 §4.4, §10).
    pub fn keepalive_for(&self, hold_time: u16) -> u16 {
        if hold_time == 0 {
            return 0;
        }
        let third = (hold_time / 3).max(1);
        match self.keepalive {
            0 => third,
            // The peer accepted our hold time: the configured interval (it is below it).
            k if hold_time == self.hold_time && k < hold_time => k,
            k => k.min(third),
        }
    }

    /// The OPEN we send.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| {
                let (afi, safi) = f.afi_safi();
                Capability::MultiProtocol { afi, safi }
            })
            .collect();
        caps.push(Capability::RouteRefresh);
        if self.extended_next_hop && self.families.contains(&Family::Ipv4Unicast) {
            caps.push(Capability::ExtendedNextHop(vec![
                NextHopTuple::IPV4_UNICAST_OVER_IPV6,
            ]));
        }
        if self.extended_messages {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = self.graceful_restart {
            caps.push(Capability::GracefulRestart {
                flags: 0,
                restart_time: gr.restart_time.min(4095),
                families: self
                    .families
                    .iter()
                    .map(|f| {
                        let (afi, safi) = f.afi_safi();
                        // F bit: forwarding (the node's data path) survives our restart.
                        GrFamily {
                            afi,
                            safi,
                            flags: 0x80,
                        }
                    })
                    .collect(),
            });
        }
        caps.push(Capability::FourOctetAsn(self.local_asn));
        Open::new(self.local_asn, self.hold_time, self.router_id, caps)
    }
}
