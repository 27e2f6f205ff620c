//! `BGPPeer` -> [`Peer`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;

use super::bfd::Bfd;
use super::error::{ConfigError, Kind, ObjectRef};
use super::l2_advertisement::check_interface;
use super::selector::SelectorSet;
use super::{Labels, parse_selectors};
use crate::v1alpha1::{
    BGPPeer, BGPPeerSpec, DynamicASNMode, INTERFACE_MULTIHOP, INTERFACE_SOURCE,
    PEER_ADDRESS_OR_INTERFACE, VRF_BFD, VRF_INTERFACE, VRF_NAME,
};
use crate::value::Asn;
use crate::value::ConnectTime;
use crate::value::EBGP_MULTIHOP_MESSAGE;
use crate::value::HoldTime;
use crate::value::parse_duration;

/// Default TCP port.
pub const DEFAULT_PORT: u16 = 179;

/// The peer's AS: fixed, or accepted from its OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsn {
    /// `peerASN`.
    Fixed(u32),
    /// `dynamicASN: internal`: whatever the peer sends, which must equal ours.
    Internal,
    /// `dynamicASN: external`: whatever the peer sends, which must differ from ours.
    External,
}

impl PeerAsn {
    /// Whether the session is iBGP when we present `local_as` (`localASN`, else `myASN`):
    /// `dynamicASN: internal`, or a `peerASN` equal to it.
    pub fn is_ibgp(self, local_as: u32) -> bool {
        match self {
            PeerAsn::Fixed(asn) => asn == local_as,
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }
}

/// A validated BGP peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Object name (advertisements refer to peers by name).
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// `myASN`.
    pub my_asn: u32,
    /// `peerASN` or `dynamicASN`.
    pub peer_asn: PeerAsn,
    /// `localASN`: the AS presented to this peer instead of `my_asn`.
    pub local_asn: Option<u32>,
    /// `peerAddress`; for an `interface` peer the unspecified address `::` until the speaker
    /// has learned the neighbour's link-local address on that interface.
    pub address: IpAddr,
    /// `interface`: unnumbered peering over this link (IPv6 link-local session, IPv4 routes
    /// with an IPv6 next hop).
    pub interface: Option<String>,
    /// `vrf`: the Linux VRF (master device name) the session runs in; `None`: the default VRF.
    pub vrf: Option<String>,
    /// `peerPort`, default 179.
    pub port: u16,
    /// `sourceAddress` (same family as `address`).
    pub source_address: Option<IpAddr>,
    /// `routerID`; `None`: the speaker picks the node's address.
    pub router_id: Option<Ipv4Addr>,
    /// `holdTime`, default 90 s; zero (no keepalives, no hold timer) or 3 s to 65535 s.
    pub hold_time: HoldTime,
    /// `keepaliveTime`, whole seconds, default hold/3; zero when `hold_time` is zero, else
    /// at least 1 s and below it (see [`HoldTime::keepalive`]).
    pub keepalive_time: Duration,
    /// `connectTime`; `None`: the session's own default.
    pub connect_time: Option<ConnectTime>,
    /// `ebgpMultiHop`.
    pub ebgp_multihop: bool,
    /// TCP MD5 password, from `password` or resolved from `passwordSecret`.
    pub password: Option<String>,
    /// `nodeSelectors`: which nodes run a session to this peer.
    pub node_selectors: SelectorSet,
    /// The resolved `bfdProfile`.
    pub bfd: Option<Bfd>,
    /// `enableGracefulRestart`.
    pub graceful_restart: bool,
    /// `dualStackAddressFamily`.
    pub dual_stack_address_family: bool,
}

impl Peer {
    /// The AS we present to this peer (`localASN`, else `myASN`).
    pub fn local_as(&self) -> u32 {
        self.local_asn.unwrap_or(self.my_asn)
    }

    /// Whether the session is iBGP (for `dynamicASN`, by its mode).
    pub fn is_ibgp(&self) -> bool {
        self.peer_asn.is_ibgp(self.local_as())
    }
}

fn duration_field(
    me: &ObjectRef,
    field: &str,
    value: &Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let text = value.as_ref()?;
    match parse_duration(text) {
        Ok(d) => Some(d),
        Err(m) => {
            errors.push(me.error(format!("spec.{field}"), Some(text), m));
            None
        }
    }
}

fn ip_field(
    me: &ObjectRef,
    field: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<IpAddr> {
    match text.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errors.push(me.error(format!("spec.{field}"), Some(text), "not an IP address"));
            None
        }
    }
}

/// Validates one peer, resolving its BFD profile and password Secret.
pub(super) fn validate(
    obj: &BGPPeer,
    bfd_profiles: &BTreeMap<String, Bfd>,
    secrets: &[Secret],
) -> Result<Peer, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::BGPPeer, &obj.metadata);
    let s = &obj.spec;
    let mut errors = Vec::new();

    let peer_asn = asns(&me, s, &mut errors);
    let (address, source_address) = addresses(&me, s, &mut errors);
    let interface = interface(&me, s, &mut errors);
    let vrf = vrf(&me, s, &mut errors);
    let router_id = router_id(&me, s, &mut errors);
    let port = port(&me, s, &mut errors);
    let (hold_time, keepalive_time, connect_time) = timers(&me, s, &mut errors);
    let ebgp_multihop = s.ebgp_multi_hop.unwrap_or(false);
    let local_as = s.local_asn.unwrap_or(s.my_asn);
    if ebgp_multihop && peer_asn.is_some_and(|p| p.is_ibgp(local_as)) {
        errors.push(me.error("spec.ebgpMultiHop", Some("true"), EBGP_MULTIHOP_MESSAGE));
    }

    let password = password(&me, s, secrets, &mut errors);
    let bfd = bfd_profile(&me, s, bfd_profiles, &mut errors);
    if let (Some(b), Some(addr)) = (&bfd, address) {
        echo_allowed(&me, b, addr, ebgp_multihop, &mut errors);
    }
    let node_selectors = parse_selectors(&me, "spec.nodeSelectors", &s.node_selectors, &mut errors);

    match (
        errors.is_empty(),
        peer_asn,
        address,
        hold_time,
        keepalive_time,
    ) {
        (true, Some(peer_asn), Some(address), Some(hold_time), Some(keepalive_time)) => Ok(Peer {
            name: me.name.clone(),
            namespace: me.namespace.clone(),
            my_asn: s.my_asn,
            peer_asn,
            local_asn: s.local_asn,
            address,
            interface,
            vrf,
            port,
            source_address,
            router_id,
            hold_time,
            keepalive_time,
            connect_time,
            ebgp_multihop,
            password,
            node_selectors,
            bfd,
            graceful_restart: s.enable_graceful_restart.unwrap_or(false),
            dual_stack_address_family: s.dual_stack_address_family.unwrap_or(false),
        }),
        _ => Err(errors),
    }
}

/// `myASN`, `localASN`, and `peerASN` or `dynamicASN`: the peer's AS rule.
fn asns(me: &ObjectRef, s: &BGPPeerSpec, errors: &mut Vec<ConfigError>) -> Option<PeerAsn> {
    if let Err(m) = Asn::new(s.my_asn) {
        errors.push(me.error("spec.myASN", Some(&s.my_asn.to_string()), m));
    }
    if let Some(Err(m)) = s.local_asn.map(Asn::new) {
        errors.push(me.error(
            "spec.localASN",
            s.local_asn.map(|n| n.to_string()).as_deref(),
            m,
        ));
    }
    match (s.peer_asn, s.dynamic_asn) {
        (Some(_), Some(_)) => {
            errors.push(me.error(
                "spec.dynamicASN",
                None,
                "peerASN and dynamicASN are mutually exclusive",
            ));
            None
        }
        (None, None) => {
            errors.push(me.error(
                "spec.peerASN",
                None,
                "one of peerASN and dynamicASN is required",
            ));
            None
        }
        (Some(asn), None) if Asn::new(asn).is_err() => {
            errors.push(me.error("spec.peerASN", Some(&asn.to_string()), Asn::MESSAGE));
            None
        }
        (Some(asn), None) => Some(PeerAsn::Fixed(asn)),
        (None, Some(DynamicASNMode::Internal)) => Some(PeerAsn::Internal),
        (None, Some(DynamicASNMode::External)) => Some(PeerAsn::External),
    }
}

/// `peerAddress` (unicast) and `sourceAddress` (same family).
fn addresses(
    me: &ObjectRef,
    s: &BGPPeerSpec,
    errors: &mut Vec<ConfigError>,
) -> (Option<IpAddr>, Option<IpAddr>) {
    let address = match (&s.peer_address, &s.interface) {
        (Some(text), None) => ip_field(me, "peerAddress", text, errors),
        // Learned on the link by the speaker.
        (None, Some(_)) => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        (text, _) => {
            errors.push(me.error(
                "spec.peerAddress",
                text.as_deref(),
                PEER_ADDRESS_OR_INTERFACE,
            ));
            None
        }
    };
    if let (Some(ip), Some(text)) = (address, &s.peer_address)
        && (ip.is_unspecified() || ip.is_multicast())
    {
        errors.push(me.error(
            "spec.peerAddress",
            Some(text),
            "peer address must be a unicast address",
        ));
    }
    let source_address = s
        .source_address
        .as_ref()
        .and_then(|t| ip_field(me, "sourceAddress", t, errors));
    if let (Some(a), Some(src), None) = (address, source_address, &s.interface)
        && a.is_ipv4() != src.is_ipv4()
    {
        errors.push(me.error(
            "spec.sourceAddress",
            Some(&src.to_string()),
            format!("source address family differs from peerAddress {a}"),
        ));
    }
    (address, source_address)
}

/// `interface`: a Linux interface name; the peer is one hop away and the session's source is
/// the interface's link-local address.
fn interface(me: &ObjectRef, s: &BGPPeerSpec, errors: &mut Vec<ConfigError>) -> Option<String> {
    let name = s.interface.as_ref()?;
    if let Err(m) = check_interface(name) {
        errors.push(me.error("spec.interface", Some(name), m));
    }
    if s.ebgp_multi_hop == Some(true) {
        errors.push(me.error("spec.ebgpMultiHop", Some("true"), INTERFACE_MULTIHOP));
    }
    if let Some(src) = &s.source_address {
        errors.push(me.error("spec.sourceAddress", Some(src), INTERFACE_SOURCE));
    }
    Some(name.clone())
}

/// `vrf`: a Linux device name; not with `interface` (the session would run in the VRF of that
/// interface) nor with `bfdProfile` (BFD sessions are not bound to a VRF).
fn vrf(me: &ObjectRef, s: &BGPPeerSpec, errors: &mut Vec<ConfigError>) -> Option<String> {
    let name = s.vrf.as_ref()?;
    if name.is_empty() || name.len() > 15 {
        errors.push(me.error(
            "spec.vrf",
            Some(name),
            "vrf name must be 1 to 15 characters",
        ));
    } else if name == "."
        || name == ".."
        || name.contains('/')
        || name.contains(char::is_whitespace)
    {
        errors.push(me.error("spec.vrf", Some(name), VRF_NAME));
    }
    if s.interface.is_some() {
        errors.push(me.error("spec.vrf", Some(name), VRF_INTERFACE));
    }
    if let Some(b) = &s.bfd_profile {
        errors.push(me.error("spec.bfdProfile", Some(b), VRF_BFD));
    }
    Some(name.clone())
}

/// `routerID`: a non-zero IPv4 address, or unset.
fn router_id(me: &ObjectRef, s: &BGPPeerSpec, errors: &mut Vec<ConfigError>) -> Option<Ipv4Addr> {
    match s.router_id.as_ref() {
        None => None,
        Some(t) => match t.trim().parse::<Ipv4Addr>() {
            Ok(id) if !id.is_unspecified() => Some(id),
            _ => {
                errors.push(me.error(
                    "spec.routerID",
                    Some(t),
                    "router ID must be a non-zero IPv4 address",
                ));
                None
            }
        },
    }
}

/// `peerPort`, default [`DEFAULT_PORT`].
fn port(me: &ObjectRef, s: &BGPPeerSpec, errors: &mut Vec<ConfigError>) -> u16 {
    match s.peer_port {
        None => DEFAULT_PORT,
        Some(0) => {
            errors.push(me.error(
                "spec.peerPort",
                Some("0"),
                "port must be between 1 and 65535",
            ));
            DEFAULT_PORT
        }
        Some(p) => p,
    }
}

/// `holdTime`, `keepaliveTime` and `connectTime`.
fn timers(
    me: &ObjectRef,
    s: &BGPPeerSpec,
    errors: &mut Vec<ConfigError>,
) -> (Option<HoldTime>, Option<Duration>, Option<ConnectTime>) {
    // Timers, as in MetalLB: only hold -> keepalive = hold/3; only keepalive -> hold = 3x.
    // Each rule is HoldTime's (shared with the CEL rules); a field that is no duration at all
    // has its error already and skips the rest.
    let hold = duration_field(me, "holdTime", &s.hold_time, errors);
    let keepalive = duration_field(me, "keepaliveTime", &s.keepalive_time, errors);
    let unparsed = (s.hold_time.is_some() && hold.is_none())
        || (s.keepalive_time.is_some() && keepalive.is_none());
    let keepalive_error = |errors: &mut Vec<ConfigError>| {
        errors.push(me.error(
            "spec.keepaliveTime",
            s.keepalive_time.as_deref(),
            HoldTime::KEEPALIVE_MESSAGE,
        ));
    };
    let hold_time = match (hold, keepalive) {
        _ if unparsed => None,
        (Some(h), _) => HoldTime::from_duration(h)
            .map_err(|m| errors.push(me.error("spec.holdTime", s.hold_time.as_deref(), m)))
            .ok(),
        (None, Some(k)) => HoldTime::for_keepalive(k)
            .map_err(|_| keepalive_error(errors))
            .ok(),
        (None, None) => Some(HoldTime::DEFAULT),
    };
    let keepalive_time = hold_time.and_then(|h| {
        h.keepalive(keepalive)
            .map_err(|_| keepalive_error(errors))
            .ok()
    });
    let connect_time = duration_field(me, "connectTime", &s.connect_time, errors).and_then(|c| {
        ConnectTime::from_duration(c)
            .map_err(|m| errors.push(me.error("spec.connectTime", s.connect_time.as_deref(), m)))
            .ok()
    });
    (hold_time, keepalive_time, connect_time)
}

/// `password` or `passwordSecret` (resolved), 1 to 80 bytes.
fn password(
    me: &ObjectRef,
    s: &BGPPeerSpec,
    secrets: &[Secret],
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let password = match (&s.password, &s.password_secret) {
        (Some(_), Some(_)) => {
            errors.push(me.error(
                "spec.passwordSecret",
                None,
                "password and passwordSecret are mutually exclusive",
            ));
            None
        }
        (Some(p), None) => Some(p.clone()),
        (None, None) => None,
        (None, Some(r)) => {
            let ns = r.namespace.clone().unwrap_or_else(|| me.namespace.clone());
            match resolve_secret(secrets, &ns, &r.name) {
                Ok(p) => Some(p),
                Err(m) => {
                    errors.push(me.error(
                        "spec.passwordSecret",
                        Some(&format!("{ns}/{}", r.name)),
                        m,
                    ));
                    None
                }
            }
        }
    };
    if password
        .as_ref()
        .is_some_and(|p| p.is_empty() || p.len() > 80)
    {
        errors.push(me.error(
            "spec.password",
            None,
            "TCP MD5 password must be 1 to 80 bytes long",
        ));
    }
    password
}

/// `bfdProfile`: a valid BFDProfile of that name.
fn bfd_profile(
    me: &ObjectRef,
    s: &BGPPeerSpec,
    profiles: &BTreeMap<String, Bfd>,
    errors: &mut Vec<ConfigError>,
) -> Option<Bfd> {
    match &s.bfd_profile {
        // Reported by `vrf`.
        _ if s.vrf.is_some() => None,
        None => None,
        Some(name) => match profiles.get(name) {
            Some(p) => Some(p.clone()),
            None => {
                errors.push(me.error(
                    "spec.bfdProfile",
                    Some(name),
                    "no valid BFDProfile with this name",
                ));
                None
            }
        },
    }
}

/// A profile with `echoMode: true` only serves IPv4 single-hop peers: RFC 5883 §3 forbids
/// echo on multihop sessions (a peer with `ebgpMultiHop` runs multihop BFD), and IPv6 echo is
/// not implemented (MetalLB refuses echo with IPv6 as well) — an `interface` peer's session
/// is IPv6 link-local.
fn echo_allowed(
    me: &ObjectRef,
    b: &Bfd,
    address: IpAddr,
    ebgp_multihop: bool,
    errors: &mut Vec<ConfigError>,
) {
    if !b.echo_mode {
        return;
    }
    let why = if ebgp_multihop {
        "has echoMode: true, which RFC 5883 forbids on the multihop BFD session of an ebgpMultiHop peer"
    } else if address.is_ipv6() {
        "has echoMode: true, which ferrolb supports for IPv4 peers only"
    } else {
        return;
    };
    errors.push(me.error(
        "spec.bfdProfile",
        Some(&b.name),
        format!("BFDProfile {} {why}", b.name),
    ));
}

/// The `password` of Secret `namespace/name` (type `kubernetes.io/basic-auth` or unset);
/// shared by `BGPPeer.passwordSecret` and `BFDProfile.authentication.passwordSecret`.
pub(super) fn resolve_secret(
    secrets: &[Secret],
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    let secret = secrets
        .iter()
        .find(|s| {
            s.metadata.name.as_deref() == Some(name)
                && s.metadata.namespace.as_deref().unwrap_or_default() == namespace
        })
        .ok_or_else(|| "Secret not found".to_string())?;
    if let Some(t) = secret.type_.as_deref()
        && t != "kubernetes.io/basic-auth"
    {
        return Err(format!(
            "Secret type is {t:?}, want \"kubernetes.io/basic-auth\""
        ));
    }
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get("password")) {
        return String::from_utf8(v.0.clone())
            .map_err(|_| "Secret key \"password\" is not UTF-8".to_string());
    }
    if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get("password")) {
        return Ok(v.clone());
    }
    Err("Secret has no key \"password\"".to_string())
}

/// Two peers with the same address and port that can run on the same node would fight over
/// one TCP session: the later object is an error. The same address in two VRFs is two
/// routers (overlapping address plans): fine.
pub(super) fn check_duplicate(
    peer: Peer,
    accepted: &BTreeMap<String, Peer>,
    nodes: &BTreeMap<String, Labels>,
) -> Result<Peer, Vec<ConfigError>> {
    for other in accepted.values() {
        if other.address != peer.address
            || other.vrf != peer.vrf
            || other.port != peer.port
            || other.interface != peer.interface
        {
            continue;
        }
        let shared = if peer.node_selectors.is_everything() || other.node_selectors.is_everything()
        {
            true
        } else {
            nodes
                .values()
                .any(|l| peer.node_selectors.matches(l) && other.node_selectors.matches(l))
        };
        if shared {
            let me = ObjectRef {
                kind: Kind::BGPPeer,
                namespace: peer.namespace.clone(),
                name: peer.name.clone(),
            };
            let (field, target) = match &peer.interface {
                Some(i) => ("spec.interface", format!("interface {i}")),
                None => ("spec.peerAddress", peer.address.to_string()),
            };
            let message = format!(
                "BGPPeer {} already peers with {target} port {} on the same nodes in {}",
                other.name,
                other.port,
                vrf_label(other.vrf.as_deref())
            );
            return Err(vec![me.error(field, Some(&target), message)]);
        }
    }
    Ok(peer)
}

/// `vrf X` or `the default VRF`, for messages.
fn vrf_label(vrf: Option<&str>) -> String {
    match vrf {
        Some(v) => format!("vrf {v}"),
        None => "the default VRF".to_string(),
    }
}
