//! Interfaces of a node, and the compact digest of them that every speaker publishes so that
//! the others can tell whether it could answer for an IP.
//!
//! Design: the L2 owner must be elected from the same candidate set on every node, and
//! "has a carrier-up interface in the IP's subnet" is a fact only the node itself sees. Each
//! speaker therefore publishes its up, non-loopback interfaces and their networks as the
//! annotation [`LINKS_ANNOTATION`] of its `SpeakerState` (Kubernetes) or of the
//! `DIR/.ferrolb/speaker-<node>.yaml` file (standalone), and re-publishes on every link
//! change. Format: `eth0=192.0.2.0/24,2001:db8:1::/64;eth1=` (interfaces separated by `;`,
//! networks by `,`). A node whose digest is not known yet (just started, or an old speaker)
//! is assumed able to answer on any subnet (symmetric nodes) — it is still subject to
//! membership and every other rule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Annotation carrying [`digest`] on a speaker's state object.
pub const LINKS_ANNOTATION: &str = "ferrolb.io/l2-links";

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// Administratively up with carrier.
    pub up: bool,
    pub loopback: bool,
    /// Addresses with their prefix length (as configured).
    pub addrs: Vec<IpNet>,
}

impl Link {
    /// Whether this link is usable for `ip`: up, not loopback, and one of its networks
    /// (not host routes: a /32 or /128 is a VIP put on an interface, not a subnet) holds `ip`.
    pub fn serves(&self, ip: IpAddr) -> bool {
        self.usable() && self.addrs.iter().any(|n| !is_host(n) && n.contains(&ip))
    }

    /// Up and not loopback.
    pub fn usable(&self) -> bool {
        self.up && !self.loopback
    }
}

/// fe80::/10 and 169.254/16: never a Service subnet.
fn is_link_local(n: &IpNet) -> bool {
    match n.addr() {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_host(n: &IpNet) -> bool {
    n.prefix_len() == n.max_prefix_len()
}

/// What is known about the interfaces of every node. A node absent from the map is unknown
/// (assumed symmetric: eligible).
pub type LinkMap = BTreeMap<String, Vec<Link>>;

/// Encodes the usable links of a node: `eth0=192.0.2.0/24,2001:db8:1::/64;eth1=`.
pub fn digest(links: &[Link]) -> String {
    let mut parts = Vec::new();
    let mut sorted: Vec<&Link> = links.iter().filter(|l| l.usable()).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for l in sorted {
        let mut nets: Vec<IpNet> = l
            .addrs
            .iter()
            .filter(|n| !is_host(n) && !is_link_local(n))
            .map(|n| n.trunc())
            .collect();
        nets.sort();
        nets.dedup();
        let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        parts.push(format!("{}={}", l.name, nets.join(",")));
    }
    parts.join(";")
}

/// Decodes a [`digest`]; every decoded link is up and not loopback.
pub fn parse_digest(text: &str) -> Result<Vec<Link>, String> {
    let mut out = Vec::new();
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (name, nets) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected NAME=NETS"))?;
        let mut addrs = Vec::new();
        for n in nets.split(',').filter(|n| !n.is_empty()) {
            addrs.push(
                n.parse::<IpNet>()
                    .map_err(|_| format!("{n:?} is not a CIDR"))?,
            );
        }
        out.push(Link {
            name: name.to_string(),
            up: true,
            loopback: false,
            addrs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_drops_unusable_links_and_host_routes() {
        let links = vec![
            Link {
                name: "lo".into(),
                up: true,
                loopback: true,
                addrs: vec!["127.0.0.1/8".parse().unwrap()],
            },
            Link {
                name: "eth0".into(),
                up: true,
                loopback: false,
                addrs: vec![
                    "192.0.2.11/24".parse().unwrap(),
                    "2001:db8:1::11/64".parse().unwrap(),
                    "192.0.2.200/32".parse().unwrap(),
                    "fe80::1/64".parse().unwrap(),
                ],
            },
            Link {
                name: "eth1".into(),
                up: false,
                loopback: false,
                addrs: vec!["198.51.100.5/24".parse().unwrap()],
            },
        ];
        let d = digest(&links);
        assert_eq!(d, "eth0=192.0.2.0/24,2001:db8:1::/64");
        let back = parse_digest(&d).unwrap();
        assert_eq!(back.len(), 1);
        assert!(back[0].serves("192.0.2.200".parse().unwrap()));
        assert!(!back[0].serves("198.51.100.7".parse().unwrap()));
        assert!(
            !links[2].serves("198.51.100.7".parse().unwrap()),
            "down link"
        );
        assert!(parse_digest("eth0=nonsense").is_err());
        assert_eq!(parse_digest("").unwrap(), vec![]);
    }
}
