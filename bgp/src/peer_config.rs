//! The settings of one BGP neighbour.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::Error;
use crate::machine::{DEFAULT_CONNECT_TIME, DynamicAsn, FsmConfig, GracefulRestart, PeerAsRule};
use crate::packet::Family;

/// Which neighbour: its address within its VRF. The same address in two VRFs is two
/// routers (overlapping address plans), so peers are told apart by both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey {
    /// `None`: the default VRF.
    pub vrf: Option<String>,
    pub addr: IpAddr,
}

impl PeerKey {
    pub fn new(vrf: Option<&str>, addr: IpAddr) -> Self {
        PeerKey {
            vrf: vrf.map(str::to_string),
            addr,
        }
    }
}

/// A peer in the default VRF.
impl From<IpAddr> for PeerKey {
    fn from(addr: IpAddr) -> Self {
        PeerKey { vrf: None, addr }
    }
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.vrf {
            Some(v) => write!(f, "{} (vrf {v})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// One BGP neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub peer_addr: IpAddr,
    /// 179 unless set.
    pub peer_port: u16,
    /// The interface of a link-local `peer_addr` (unnumbered peering): its index, looked up
    /// at each connection attempt (so a re-created interface is found), is the address's
    /// scope. `None` for any other address.
    pub interface: Option<String>,
    /// The Linux VRF (its master device) the session runs in: the socket is bound to it
    /// (`SO_BINDTODEVICE`) at each connection attempt, so source address and route come
    /// from the VRF's table, and a VRF created later is found. `None`: the default VRF.
    pub vrf: Option<String>,
    pub local_asn: u32,
    /// The peer's AS; ignored when `dynamic_asn` is set.
    pub peer_asn: u32,
    /// `dynamicASN`: accept the AS the peer's OPEN carries if it is ours (internal) or not
    /// ours (external); the session is iBGP or eBGP by the AS learned.
    pub dynamic_asn: Option<DynamicAsn>,
    /// Local address to bind (and the default next hop for its family).
    pub source_addr: Option<IpAddr>,
    /// Proposed hold time in seconds: 0 or ≥ 3 (default 90).
    pub hold_time: u16,
    /// Keepalive interval in seconds (default 30; 0 = hold / 3).
    pub keepalive: u16,
    /// ConnectRetry time (default 2 s): the timeout of one connection attempt, and the cap
    /// of the wait between failed attempts (which grows from 1 s, with jitter).
    pub connect_time: Duration,
    /// eBGP multihop: TTL of our packets. `None`: TTL 1 for eBGP, the system default for iBGP.
    pub ebgp_multihop: Option<u8>,
    /// TCP MD5 signature key (RFC 2385), at most 80 bytes.
    pub md5_password: Option<String>,
    /// Advertise graceful restart (restarting speaker: F bit set, End-of-RIB after the dump).
    pub graceful_restart: bool,
    /// Restart time advertised with graceful restart (default 120 s).
    pub restart_time: u16,
    pub families: Vec<Family>,
    /// Never connect out; wait for the peer (needs [`SpeakerConfig::listen`]).
    pub passive: bool,
    /// Offer RFC 8654 extended messages (UPDATEs up to 65535 bytes when both sides agree).
    pub extended_messages: bool,
    /// Offer RFC 8950 extended next hop encoding for IPv4 unicast, so that IPv4 routes can
    /// take an IPv6 next hop (unnumbered sessions).
    pub extended_next_hop: bool,
    /// On a link-local session: the interface's global IPv6 address, sent as the IPv6 next
    /// hop before the link-local one (RFC 2545). `None`: the link-local address in both
    /// fields (as FRR does).
    pub global_v6: Option<std::net::Ipv6Addr>,
    /// BGP identifier for this session; `None`: the speaker's ([`crate::SpeakerConfig`]).
    pub router_id: Option<Ipv4Addr>,
}

impl PeerConfig {
    pub fn new(peer_addr: IpAddr, local_asn: u32, peer_asn: u32) -> Self {
        PeerConfig {
            peer_addr,
            peer_port: 179,
            interface: None,
            vrf: None,
            local_asn,
            peer_asn,
            dynamic_asn: None,
            source_addr: None,
            hold_time: 90,
            keepalive: 30,
            connect_time: DEFAULT_CONNECT_TIME,
            ebgp_multihop: None,
            md5_password: None,
            graceful_restart: false,
            restart_time: 120,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            passive: false,
            extended_messages: false,
            extended_next_hop: false,
            global_v6: None,
            router_id: None,
        }
    }

    /// A peer whose AS is learned from its OPEN (`dynamicASN`); `peer_asn` is 0.
    pub fn dynamic(peer_addr: IpAddr, local_asn: u32, mode: DynamicAsn) -> Self {
        let mut c = PeerConfig::new(peer_addr, local_asn, 0);
        c.dynamic_asn = Some(mode);
        c
    }

    /// The peer's identity: VRF and address.
    pub fn key(&self) -> PeerKey {
        PeerKey::new(self.vrf.as_deref(), self.peer_addr)
    }

    /// Which AS the peer's OPEN must carry.
    pub fn peer_as_rule(&self) -> PeerAsRule {
        PeerAsRule::new(self.peer_asn, self.dynamic_asn, self.local_asn)
    }

    pub(crate) fn ttl(&self) -> Option<u8> {
        match self.ebgp_multihop {
            Some(t) => Some(t),
            None if self.peer_as_rule().is_ebgp(self.local_asn) => Some(1),
            None => None,
        }
    }

    /// Checks the fields; errors name the peer and the field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: &str| Error::InvalidPeer {
            peer: self.peer_addr,
            field,
            reason: reason.to_string(),
        };
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(bad("holdTime", "must be 0 or at least 3 seconds"));
        }
        if self.hold_time > 0 && self.keepalive > self.hold_time {
            return Err(bad("keepaliveTime", "must not exceed the hold time"));
        }
        if self.peer_port == 0 {
            return Err(bad("peerPort", "must not be 0"));
        }
        if self.local_asn == 0 || (self.dynamic_asn.is_none() && self.peer_asn == 0) {
            return Err(bad("ASN", "0 is reserved"));
        }
        if self.families.is_empty() {
            return Err(bad("families", "at least one address family is needed"));
        }
        if self.ebgp_multihop == Some(0) {
            return Err(bad("ebgpMultiHop", "TTL must be at least 1"));
        }
        if self.restart_time > 4095 {
            return Err(bad("restartTime", "at most 4095 seconds"));
        }
        if let Some(pw) = &self.md5_password
            && (pw.is_empty() || pw.len() > crate::sys::MD5_MAX_KEY)
        {
            return Err(bad("password", "must be 1 to 80 bytes"));
        }
        if let Some(src) = self.source_addr
            && src.is_ipv4() != self.peer_addr.is_ipv4()
        {
            return Err(bad("sourceAddress", "must be of the peer address's family"));
        }
        if let IpAddr::V6(a) = self.peer_addr
            && a.is_unicast_link_local()
            && self.interface.is_none()
        {
            return Err(bad(
                "interface",
                "a link-local peer address needs its interface (scope)",
            ));
        }
        if self.vrf.is_some() && self.interface.is_some() {
            return Err(bad("vrf", "cannot be set with interface"));
        }
        if self
            .vrf
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > 15)
        {
            return Err(bad("vrf", "must be a device name of 1 to 15 bytes"));
        }
        if self.connect_time.is_zero() {
            return Err(bad("connectTime", "must be positive"));
        }
        if self.router_id.is_some_and(|id| id.is_unspecified()) {
            return Err(bad("routerID", "must not be 0.0.0.0"));
        }
        Ok(())
    }

    /// The FSM's settings; `router_id` is the speaker's, used unless the peer has its own.
    pub(crate) fn fsm_config(&self, router_id: Ipv4Addr) -> FsmConfig {
        let mut c = FsmConfig::new(
            self.local_asn,
            self.peer_asn,
            self.router_id.unwrap_or(router_id),
        );
        c.dynamic_asn = self.dynamic_asn;
        c.hold_time = self.hold_time;
        c.keepalive = self.keepalive;
        c.connect_time = self.connect_time;
        c.passive = self.passive;
        c.extended_messages = self.extended_messages;
        c.extended_next_hop = self.extended_next_hop;
        c.families = self.families.clone();
        c.graceful_restart = self.graceful_restart.then_some(GracefulRestart {
            restart_time: self.restart_time,
        });
        // Different peers get different jitter sequences.
        c.jitter_seed = match self.peer_addr {
            IpAddr::V4(a) => u32::from(a) as u64,
            IpAddr::V6(a) => u128::from(a) as u64,
        } ^ 0x9e37_79b9_7f4a_7c15
            ^ std::process::id() as u64;
        c
    }
}
