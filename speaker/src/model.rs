//! The speaker's view of the configuration: advertisements with their pools resolved, peers
//! with their passwords and BFD profiles resolved, all parsed once.
//!
//! [`SpeakerConfig::from_resources`] is a bridge until `ferrolb_crds::config::Config` lands:
//! it parses only what the speaker needs, reports every invalid object by name and field,
//! and skips it (the valid rest applies).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::resources::ClusterResources;
use ipnet::IpNet;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::selector::{Labels, matches_any, matches_selector};

/// A BGP community attached to announced routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// RFC 1997 `asn:value`.
    Standard(u32),
    /// RFC 8092 `large:global:local1:local2`.
    Large(u32, u32, u32),
}

/// RFC 8326 GRACEFUL_SHUTDOWN, sent on routes before withdrawing them at shutdown.
pub const GRACEFUL_SHUTDOWN: Community = Community::Standard(0xFFFF_0000);

const WELL_KNOWN: &[(&str, u32)] = &[
    ("graceful-shutdown", 0xFFFF_0000),
    ("accept-own", 0xFFFF_0001),
    ("llgr-stale", 0xFFFF_0006),
    ("no-llgr", 0xFFFF_0007),
    ("blackhole", 0xFFFF_029A),
    ("no-export", 0xFFFF_FF01),
    ("no-advertise", 0xFFFF_FF02),
    ("no-export-subconfed", 0xFFFF_FF03),
    ("no-peer", 0xFFFF_FF04),
];

impl Community {
    /// Parses `65000:100`, `large:1:2:3` or a well-known name.
    pub fn parse(text: &str) -> Result<Community, String> {
        if let Some((_, v)) = WELL_KNOWN.iter().find(|(n, _)| *n == text) {
            return Ok(Community::Standard(*v));
        }
        if let Some(rest) = text.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3 {
                return Err("large community must be large:GLOBAL:LOCAL1:LOCAL2".into());
            }
            let n: Result<Vec<u32>, _> = parts.iter().map(|p| p.parse::<u32>()).collect();
            let n = n.map_err(|_| "large community parts must be 0..4294967295".to_string())?;
            return Ok(Community::Large(n[0], n[1], n[2]));
        }
        let Some((a, b)) = text.split_once(':') else {
            return Err("expected ASN:VALUE, large:G:L1:L2 or a well-known name".into());
        };
        let a: u16 = a
            .parse()
            .map_err(|_| "ASN part must be 0..65535".to_string())?;
        let b: u16 = b
            .parse()
            .map_err(|_| "value part must be 0..65535".to_string())?;
        Ok(Community::Standard((u32::from(a) << 16) | u32::from(b)))
    }
}

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xFFFF),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

/// An address pool: name, labels and the address ranges (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub labels: Labels,
    pub ranges: Vec<(IpAddr, IpAddr)>,
}

impl Pool {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|(a, b)| match (a, b, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => *a <= x && x <= *b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => *a <= x && x <= *b,
            _ => false,
        })
    }
}

/// An `L2Advertisement`, pools resolved to names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct L2Ad {
    pub name: String,
    pub pools: BTreeSet<String>,
    pub node_selectors: Vec<LabelSelector>,
    pub interfaces: Vec<String>,
    pub service_selectors: Vec<LabelSelector>,
    pub preferred: Vec<(u32, LabelSelector)>,
}

/// A `BGPAdvertisement`, pools resolved, communities parsed, lengths defaulted.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpAd {
    pub name: String,
    pub pools: BTreeSet<String>,
    pub node_selectors: Vec<LabelSelector>,
    pub service_selectors: Vec<LabelSelector>,
    /// Peer names; empty: every peer.
    pub peers: Vec<String>,
    pub aggregation_v4: u8,
    pub aggregation_v6: u8,
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<Community>,
}

impl Default for BgpAd {
    fn default() -> Self {
        BgpAd {
            name: String::new(),
            pools: BTreeSet::new(),
            node_selectors: Vec::new(),
            service_selectors: Vec::new(),
            peers: Vec::new(),
            aggregation_v4: 32,
            aggregation_v6: 128,
            local_pref: None,
            communities: BTreeSet::new(),
        }
    }
}

/// BFD timers of a `BFDProfile` (milliseconds, MetalLB defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdSettings {
    pub name: String,
    pub receive_interval_ms: u32,
    pub transmit_interval_ms: u32,
    pub detect_multiplier: u32,
    pub echo_mode: bool,
    pub passive_mode: bool,
    pub minimum_ttl: u32,
}

/// A `BGPPeer` with everything resolved: this is what a session is built from, and a change
/// of any field restarts the session.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub my_asn: u32,
    /// `None` with `dynamic_asn` set.
    pub peer_asn: Option<u32>,
    /// `Some(true)`: internal, `Some(false)`: external.
    pub dynamic_internal: Option<bool>,
    pub local_asn: Option<u32>,
    pub address: IpAddr,
    pub port: u16,
    pub source_address: Option<IpAddr>,
    pub router_id: Option<Ipv4Addr>,
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    pub connect_time: Duration,
    pub ebgp_multihop: bool,
    /// TCP MD5 password (`password`, or resolved from `passwordSecret`).
    pub password: Option<String>,
    pub node_selectors: Vec<LabelSelector>,
    pub bfd: Option<BfdSettings>,
    pub graceful_restart: bool,
    pub dual_stack: bool,
}

/// Everything the speaker's decision reads from the ferrolb kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeakerConfig {
    pub pools: Vec<Pool>,
    pub l2: Vec<L2Ad>,
    pub bgp: Vec<BgpAd>,
    pub peers: Vec<Peer>,
}

impl SpeakerConfig {
    /// The pool an IP belongs to.
    pub fn pool_of(&self, ip: IpAddr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(ip))
    }

    /// Builds the speaker's config from raw resources. Invalid objects are skipped and
    /// reported as `Kind namespace/name: field: problem`.
    pub fn from_resources(res: &ClusterResources) -> (SpeakerConfig, Vec<String>) {
        let mut errors = Vec::new();
        let mut cfg = SpeakerConfig::default();

        for p in &res.pools {
            let mut ranges = Vec::new();
            let mut ok = true;
            for (i, a) in p.spec.addresses.iter().enumerate() {
                match parse_range(a) {
                    Ok(r) => ranges.push(r),
                    Err(e) => {
                        errors.push(obj_err(
                            "IPAddressPool",
                            &p.metadata,
                            &format!("addresses[{i}] {a:?}"),
                            &e,
                        ));
                        ok = false;
                    }
                }
            }
            if ok {
                cfg.pools.push(Pool {
                    name: name(&p.metadata),
                    labels: labels(&p.metadata),
                    ranges,
                });
            }
        }

        let resolve_pools =
            |names: &[String], sels: &[LabelSelector], pools: &[Pool]| -> BTreeSet<String> {
                if names.is_empty() && sels.is_empty() {
                    return pools.iter().map(|p| p.name.clone()).collect();
                }
                let mut out: BTreeSet<String> = names.iter().cloned().collect();
                for p in pools {
                    if sels.iter().any(|s| matches_selector(s, &p.labels)) {
                        out.insert(p.name.clone());
                    }
                }
                out
            };

        for a in &res.l2_advertisements {
            let s = &a.spec;
            let mut preferred = Vec::new();
            let mut ok = true;
            for (i, p) in s.preferred_node_selectors.iter().enumerate() {
                if !(1..=100).contains(&p.weight) {
                    errors.push(obj_err(
                        "L2Advertisement",
                        &a.metadata,
                        &format!("preferredNodeSelectors[{i}].weight"),
                        "must be 1..100",
                    ));
                    ok = false;
                } else {
                    preferred.push((p.weight as u32, p.preference.clone()));
                }
            }
            if ok {
                cfg.l2.push(L2Ad {
                    name: name(&a.metadata),
                    pools: resolve_pools(
                        &s.ip_address_pools,
                        &s.ip_address_pool_selectors,
                        &cfg.pools,
                    ),
                    node_selectors: s.node_selectors.clone(),
                    interfaces: s.interfaces.clone(),
                    service_selectors: s.service_selectors.clone(),
                    preferred,
                });
            }
        }

        let mut aliases: BTreeMap<String, Community> = BTreeMap::new();
        for c in &res.communities {
            for (i, alias) in c.spec.communities.iter().enumerate() {
                match Community::parse(&alias.value) {
                    Ok(v) => {
                        aliases.insert(alias.name.clone(), v);
                    }
                    Err(e) => errors.push(obj_err(
                        "Community",
                        &c.metadata,
                        &format!("communities[{i}].value {:?}", alias.value),
                        &e,
                    )),
                }
            }
        }

        for a in &res.bgp_advertisements {
            let s = &a.spec;
            let mut ok = true;
            let mut communities = BTreeSet::new();
            for (i, c) in s.communities.iter().enumerate() {
                match aliases
                    .get(c)
                    .copied()
                    .map(Ok)
                    .unwrap_or_else(|| Community::parse(c))
                {
                    Ok(v) => {
                        communities.insert(v);
                    }
                    Err(e) => {
                        errors.push(obj_err(
                            "BGPAdvertisement",
                            &a.metadata,
                            &format!("communities[{i}] {c:?}"),
                            &e,
                        ));
                        ok = false;
                    }
                }
            }
            let v4 = s.aggregation_length.unwrap_or(32);
            let v6 = s.aggregation_length_v6.unwrap_or(128);
            if !(0..=32).contains(&v4) {
                errors.push(obj_err(
                    "BGPAdvertisement",
                    &a.metadata,
                    "aggregationLength",
                    "must be 0..32",
                ));
                ok = false;
            }
            if !(0..=128).contains(&v6) {
                errors.push(obj_err(
                    "BGPAdvertisement",
                    &a.metadata,
                    "aggregationLengthV6",
                    "must be 0..128",
                ));
                ok = false;
            }
            if ok {
                cfg.bgp.push(BgpAd {
                    name: name(&a.metadata),
                    pools: resolve_pools(
                        &s.ip_address_pools,
                        &s.ip_address_pool_selectors,
                        &cfg.pools,
                    ),
                    node_selectors: s.node_selectors.clone(),
                    service_selectors: s.service_selectors.clone(),
                    peers: s.peers.clone(),
                    aggregation_v4: v4 as u8,
                    aggregation_v6: v6 as u8,
                    local_pref: s.local_pref,
                    communities,
                });
            }
        }

        for p in &res.bgp_peers {
            match peer(p, res) {
                Ok(peer) => cfg.peers.push(peer),
                Err((field, e)) => errors.push(obj_err("BGPPeer", &p.metadata, field, &e)),
            }
        }
        (cfg, errors)
    }
}

fn peer(
    p: &ferrolb_crds::v1alpha1::BGPPeer,
    res: &ClusterResources,
) -> Result<Peer, (&'static str, String)> {
    let s = &p.spec;
    let address: IpAddr = s.peer_address.parse().map_err(|_| {
        (
            "peerAddress",
            format!("{:?} is not an IP address", s.peer_address),
        )
    })?;
    let source_address = match &s.source_address {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ("sourceAddress", format!("{a:?} is not an IP address")))?,
        ),
        None => None,
    };
    let router_id = match &s.router_id {
        Some(a) => Some(
            a.parse()
                .map_err(|_| ("routerID", format!("{a:?} is not an IPv4 address")))?,
        ),
        None => None,
    };
    let dynamic_internal = s
        .dynamic_asn
        .map(|m| m == ferrolb_crds::v1alpha1::DynamicASNMode::Internal);
    if s.peer_asn.is_some() == dynamic_internal.is_some() {
        return Err((
            "peerASN",
            "exactly one of peerASN and dynamicASN must be set".into(),
        ));
    }
    let dur = |v: &Option<String>,
               field: &'static str,
               default: Duration|
     -> Result<Duration, (&'static str, String)> {
        match v {
            None => Ok(default),
            Some(t) => parse_duration(t).map_err(|e| (field, format!("{t:?}: {e}"))),
        }
    };
    let hold_time = dur(&s.hold_time, "holdTime", Duration::from_secs(90))?;
    if hold_time != Duration::ZERO && hold_time < Duration::from_secs(3) {
        return Err(("holdTime", "must be 0 or at least 3s".into()));
    }
    let keepalive_time = dur(&s.keepalive_time, "keepaliveTime", hold_time / 3)?;
    let connect_time = dur(&s.connect_time, "connectTime", Duration::from_secs(120))?;
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    let password = match (&s.password, &s.password_secret) {
        (Some(_), Some(_)) => {
            return Err((
                "password",
                "password and passwordSecret are mutually exclusive".into(),
            ));
        }
        (Some(pw), None) => Some(pw.clone()),
        (None, Some(r)) => {
            let ns = r.namespace.clone().unwrap_or(namespace.clone());
            let secret = res
                .secrets
                .iter()
                .find(|x| {
                    x.metadata.name.as_deref() == Some(r.name.as_str())
                        && x.metadata.namespace.as_deref().unwrap_or("") == ns
                })
                .ok_or((
                    "passwordSecret",
                    format!("Secret {ns}/{} not found", r.name),
                ))?;
            let from_data = secret
                .data
                .as_ref()
                .and_then(|d| d.get("password"))
                .map(|ByteString(b)| String::from_utf8_lossy(b).into_owned());
            let from_string = secret
                .string_data
                .as_ref()
                .and_then(|d| d.get("password"))
                .cloned();
            Some(from_data.or(from_string).ok_or((
                "passwordSecret",
                format!("Secret {ns}/{} has no \"password\" key", r.name),
            ))?)
        }
        (None, None) => None,
    };
    let bfd = match &s.bfd_profile {
        None => None,
        Some(name_) => {
            let prof = res
                .bfd_profiles
                .iter()
                .find(|b| b.metadata.name.as_deref() == Some(name_.as_str()))
                .ok_or(("bfdProfile", format!("BFDProfile {name_:?} not found")))?;
            let b = &prof.spec;
            Some(BfdSettings {
                name: name_.clone(),
                receive_interval_ms: b.receive_interval.unwrap_or(300),
                transmit_interval_ms: b.transmit_interval.unwrap_or(300),
                detect_multiplier: b.detect_multiplier.unwrap_or(3),
                echo_mode: b.echo_mode.unwrap_or(false),
                passive_mode: b.passive_mode.unwrap_or(false),
                minimum_ttl: b.minimum_ttl.unwrap_or(254),
            })
        }
    };
    Ok(Peer {
        name: name(&p.metadata),
        my_asn: s.my_asn,
        peer_asn: s.peer_asn,
        dynamic_internal,
        local_asn: s.local_asn,
        address,
        port: s.peer_port.unwrap_or(179),
        source_address,
        router_id,
        hold_time,
        keepalive_time,
        connect_time,
        ebgp_multihop: s.ebgp_multi_hop.unwrap_or(false),
        password,
        node_selectors: s.node_selectors.clone(),
        bfd,
        graceful_restart: s.enable_graceful_restart.unwrap_or(false),
        dual_stack: s.dual_stack_address_family.unwrap_or(false),
    })
}

impl Peer {
    /// Whether this peer selects a node with these labels.
    pub fn selects(&self, node_labels: &Labels) -> bool {
        matches_any(&self.node_selectors, node_labels)
    }
}

fn name(m: &ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

fn labels(m: &ObjectMeta) -> Labels {
    m.labels.clone().unwrap_or_default()
}

fn obj_err(kind: &str, m: &ObjectMeta, field: &str, problem: &str) -> String {
    format!(
        "{kind} {}/{}: {field}: {problem}",
        m.namespace.as_deref().unwrap_or(""),
        name(m)
    )
}

/// `a.b.c.d/n`, `a-b`, or a single address.
pub fn parse_range(text: &str) -> Result<(IpAddr, IpAddr), String> {
    let t = text.trim();
    if let Some((a, b)) = t.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{b:?} is not an IP address"))?;
        if a.is_ipv4() != b.is_ipv4() {
            return Err("range mixes IPv4 and IPv6".into());
        }
        if a > b {
            return Err("range start after end".into());
        }
        return Ok((a, b));
    }
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok((net.network(), net.broadcast()));
    }
    let ip: IpAddr = t
        .parse()
        .map_err(|_| "expected a CIDR, an a-b range or an address".to_string())?;
    Ok((ip, ip))
}

/// Kubernetes-style durations: `90s`, `1m30s`, `500ms`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("missing unit")?;
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| "bad number".to_string())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit {u:?}")),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_communities() {
        assert_eq!(
            Community::parse("65000:100").unwrap(),
            Community::Standard((65000 << 16) | 100)
        );
        assert_eq!(
            Community::parse("large:1:2:3").unwrap(),
            Community::Large(1, 2, 3)
        );
        assert_eq!(
            Community::parse("no-export").unwrap(),
            Community::Standard(0xFFFF_FF01)
        );
        assert_eq!(
            Community::parse("graceful-shutdown").unwrap(),
            GRACEFUL_SHUTDOWN
        );
        assert_eq!(GRACEFUL_SHUTDOWN.to_string(), "65535:0");
        assert!(Community::parse("70000:1").is_err());
        assert!(Community::parse("large:1:2").is_err());
    }

    #[test]
    fn parses_ranges_and_durations() {
        assert_eq!(
            parse_range("192.0.2.200-192.0.2.210").unwrap().1,
            "192.0.2.210".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_range("203.0.113.0/28").unwrap().1,
            "203.0.113.15".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_range("192.0.2.9-192.0.2.1").unwrap_err(),
            "range start after end"
        );
        assert_eq!(parse_duration("9s").unwrap(), Duration::from_secs(9));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5x").is_err());
    }
}
