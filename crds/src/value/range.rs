//! Address ranges: CIDRs and `start-end` ranges as inclusive intervals.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Family of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The other family.
    pub fn other(self) -> Self {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// Position in per-family arrays: 0 for IPv4, 1 for IPv6.
    pub fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    /// Address length in bits (32 or 128).
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as a number: IPv4 in the low 32 bits.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `family` numbered `n` (`n` must fit the family: for IPv4 the low 32 bits are
/// used).
pub fn u128_to_ip(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// An inclusive range of addresses of one family, from a pool's `addresses` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    /// `start..=end`; `None` when the families differ or `start > end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        (Family::of(start) == Family::of(end) && ip_to_u128(start) <= ip_to_u128(end))
            .then_some(IpRange { start, end })
    }

    /// Every address of `net` (network and broadcast included).
    pub fn from_net(net: IpNet) -> Self {
        IpRange {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address (inclusive).
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// Family of both ends.
    pub fn family(&self) -> Family {
        Family::of(self.start)
    }

    /// `(start, end)` as numbers, inclusive — what the allocator works on.
    pub fn interval(&self) -> (u128, u128) {
        (ip_to_u128(self.start), ip_to_u128(self.end))
    }

    /// Number of addresses, saturating at `u128::MAX` (only for `::/0`).
    pub fn len(&self) -> u128 {
        let (s, e) = self.interval();
        (e - s).saturating_add(1)
    }

    /// Always false: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && {
            let (s, e) = self.interval();
            let n = ip_to_u128(ip);
            s <= n && n <= e
        }
    }

    /// Whether the ranges share an address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.family() == other.family() && {
            let (a, b) = self.interval();
            let (c, d) = other.interval();
            a <= d && c <= b
        }
    }

    /// The smallest list of CIDRs covering exactly this range.
    pub fn to_cidrs(&self) -> Vec<IpNet> {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => {
                ipnet::Ipv4Subnets::new(s, e, 0).map(IpNet::V4).collect()
            }
            (IpAddr::V6(s), IpAddr::V6(e)) => {
                ipnet::Ipv6Subnets::new(s, e, 0).map(IpNet::V6).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Two ranges that share addresses, as found by [`find_overlaps`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overlap<K> {
    /// The range that starts first (on equal starts, the one listed first).
    pub earlier: K,
    /// The range that starts inside it.
    pub later: K,
    /// The first address both hold (the later range's start).
    pub at: IpAddr,
}

/// The overlap rule of pools, within a pool and across pools (MetalLB: no address in two
/// entries): every range that shares an address with a range starting at or before it, paired
/// with the one of those reaching furthest. Empty exactly when the ranges are pairwise
/// disjoint; adjacent ranges do not overlap. The keys say which range is which; the result is
/// in address order, IPv4 first.
pub fn find_overlaps<K: Copy>(ranges: impl IntoIterator<Item = (K, IpRange)>) -> Vec<Overlap<K>> {
    let mut sorted: Vec<(K, IpRange)> = ranges.into_iter().collect();
    // Stable: equal starts keep the caller's order.
    sorted.sort_by_key(|(_, r)| (r.family(), r.interval().0));
    let mut found = Vec::new();
    let mut reach: Option<(K, IpRange)> = None;
    for (k, r) in sorted {
        match reach {
            Some((rk, rr)) if rr.overlaps(&r) => {
                found.push(Overlap {
                    earlier: rk,
                    later: k,
                    at: r.start(),
                });
                if r.interval().1 > rr.interval().1 {
                    reach = Some((k, r));
                }
            }
            // Another family, or past the furthest end so far.
            _ => reach = Some((k, r)),
        }
    }
    found
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cidrs = self.to_cidrs();
        if cidrs.len() == 1 {
            write!(f, "{}", cidrs[0])
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Parses one `addresses` entry: a CIDR (`192.0.2.0/24`; host bits are masked like MetalLB
/// does) or an inclusive range (`192.0.2.10-192.0.2.20`, `2001:db8::1-2001:db8::ff`).
/// Surrounding whitespace is ignored. The error is the message for the config error.
pub fn parse_range(text: &str) -> Result<IpRange, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty address".to_string());
    }
    if let Some((a, b)) = t.split_once('-') {
        let start: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("range start {:?} is not an IP address", a.trim()))?;
        let end: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("range end {:?} is not an IP address", b.trim()))?;
        if Family::of(start) != Family::of(end) {
            return Err(format!(
                "{RANGE_MIXES_FAMILIES} ({} start, {} end)",
                Family::of(start),
                Family::of(end)
            ));
        }
        return IpRange::new(start, end).ok_or_else(|| RANGE_START_AFTER_END.to_string());
    }
    if t.contains('/') {
        let (addr, len) = t.split_once('/').unwrap_or((t, ""));
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("prefix length {len:?} is not a number"))?;
        let net = match ip {
            IpAddr::V4(v4) => Ipv4Net::new(v4, len).map(IpNet::V4),
            IpAddr::V6(v6) => Ipv6Net::new(v6, len).map(IpNet::V6),
        }
        .map_err(|_| {
            format!(
                "prefix length {len} is too long for {} (max {})",
                Family::of(ip),
                Family::of(ip).bits()
            )
        })?;
        return Ok(IpRange::from_net(net.trunc()));
    }
    if t.parse::<IpAddr>().is_ok() {
        let bits = if t.contains(':') { 128 } else { 32 };
        return Err(format!(
            "a single address needs a prefix length: write {t}/{bits}"
        ));
    }
    Err(NOT_AN_ADDRESS_RANGE.to_string())
}

/// Messages shared by [`parse_range`] and the CEL rules of `IPAddressPool.spec.addresses`.
pub const RANGE_START_AFTER_END: &str = "range start after end";
pub const RANGE_MIXES_FAMILIES: &str = "range mixes families";
pub const NOT_AN_ADDRESS_RANGE: &str =
    "not a CIDR (192.0.2.0/24) or a range (192.0.2.10-192.0.2.20)";

/// CEL, for the valid IP addresses `s` and `e` of `family`: `s` is not after `e`. CEL has no
/// ordering on IPs: this looks for the first bit where they differ (prefix `p` contains both,
/// `p + 1` does not) and checks that `s` has a 0 there. Unrolled, with literal prefix lengths:
/// list literals and `string(int)` make the API server's cost estimate explode.
fn cel_start_not_after_end(family: Family) -> String {
    let bits = family.bits();
    let net = |p: u8| format!("cidr(s + '/{p}')");
    let first_difference: Vec<String> = (0..bits)
        .map(|p| {
            let (at_p, at_next) = (net(p), net(p + 1));
            format!(
                "({at_p}.containsIP(e) && !{at_next}.containsIP(e) && \
                 {at_next}.containsIP({at_p}.masked().ip()))"
            )
        })
        .collect();
    let v = if family == Family::V4 { 4 } else { 6 };
    format!(
        "ip(s).family() != {v} || ip(e).family() != {v} || {}.containsIP(e) || {}",
        net(bits),
        first_difference.join(" || ")
    )
}

/// `x-kubernetes-validations` for one `addresses` entry (`self`): the same checks as
/// [`parse_range`] (form, one family, start not after end) with the same messages, so the API
/// server rejects what `Config::build` would.
pub fn cel_validations() -> serde_json::Value {
    let is_range = "(self.split('-').size() == 2 && isIP(self.split('-')[0].trim()) && \
                    isIP(self.split('-')[1].trim()))";
    // `[x].all(v, ...)` binds `v` to `x` (the CRD environment has no `cel.bind`).
    let with_ends = |body: String| {
        format!(
            "!{is_range} || [self.split('-')[0].trim()].all(s, \
             [self.split('-')[1].trim()].all(e, {body}))"
        )
    };
    let order = |family| {
        serde_json::json!({
            "rule": with_ends(cel_start_not_after_end(family)),
            "message": RANGE_START_AFTER_END,
        })
    };
    serde_json::json!([
        {
            "rule": format!("isCIDR(self.trim()) || {is_range}"),
            "message": NOT_AN_ADDRESS_RANGE,
        },
        {
            "rule": with_ends("ip(s).family() == ip(e).family()".into()),
            "message": RANGE_MIXES_FAMILIES,
        },
        order(Family::V4),
        order(Family::V6),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn find_overlaps_pairs_each_range_with_the_one_it_starts_in() {
        let r = |s: &str| parse_range(s).unwrap();
        // Adjacent ranges and equal addresses of different families do not overlap.
        assert!(
            find_overlaps([
                (0, r("192.0.2.0/28")),
                (1, r("192.0.2.16/28")),
                (2, r("::c000:200/124")),
            ])
            .is_empty()
        );
        // 2 starts inside 0 (which reaches past 1), not only next to its neighbour 1.
        let found = find_overlaps([
            (0, r("192.0.2.0-192.0.2.100")),
            (1, r("192.0.2.10-192.0.2.20")),
            (2, r("192.0.2.30-192.0.2.40")),
            (3, r("2001:db8::/120")),
            (4, r("2001:db8::ff-2001:db8::1ff")),
        ]);
        let pairs: Vec<(i32, i32, IpAddr)> =
            found.iter().map(|o| (o.earlier, o.later, o.at)).collect();
        assert_eq!(
            pairs,
            [
                (0, 1, ip("192.0.2.10")),
                (0, 2, ip("192.0.2.30")),
                (3, 4, ip("2001:db8::ff")),
            ]
        );
        // Equal starts: the one listed first is the earlier.
        let found = find_overlaps([("b", r("192.0.2.0/29")), ("a", r("192.0.2.0/28"))]);
        assert_eq!((found[0].earlier, found[0].later), ("b", "a"));
    }

    #[test]
    fn parses_cidrs_and_ranges() {
        let r = parse_range("192.0.2.0/28").unwrap();
        assert_eq!((r.start(), r.end()), (ip("192.0.2.0"), ip("192.0.2.15")));
        assert_eq!(r.len(), 16);
        let r = parse_range(" 192.0.2.10 - 192.0.2.20 ").unwrap();
        assert_eq!(r.interval(), (0xC000020A, 0xC0000214));
        let r = parse_range("2001:db8::/120").unwrap();
        assert_eq!(r.len(), 256);
        assert_eq!(r.family(), Family::V6);
        let r = parse_range("192.0.2.5/24").unwrap();
        assert_eq!(r.start(), ip("192.0.2.0"), "host bits are masked");
        assert_eq!(parse_range("::/0").unwrap().len(), u128::MAX);
    }

    #[test]
    fn rejects_bad_entries_with_reasons() {
        assert_eq!(
            parse_range("192.0.2.5-192.0.2.1").unwrap_err(),
            "range start after end"
        );
        assert!(
            parse_range("192.0.2.1-2001:db8::1")
                .unwrap_err()
                .contains("mixes families")
        );
        assert!(
            parse_range("192.0.2.0/33")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_range("192.0.2.7")
                .unwrap_err()
                .contains("192.0.2.7/32")
        );
        assert!(parse_range("banana").is_err());
        assert!(parse_range("192.0.2.0/x").is_err());
        assert!(parse_range("192.0.2.300-192.0.2.4").is_err());
    }

    #[test]
    fn cidr_summary_and_overlap() {
        let r = parse_range("192.0.2.1-192.0.2.6").unwrap();
        let cidrs: Vec<String> = r.to_cidrs().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cidrs,
            [
                "192.0.2.1/32",
                "192.0.2.2/31",
                "192.0.2.4/31",
                "192.0.2.6/32"
            ]
        );
        assert_eq!(r.to_string(), "192.0.2.1-192.0.2.6");
        assert_eq!(
            parse_range("192.0.2.0/30").unwrap().to_string(),
            "192.0.2.0/30"
        );
        let a = parse_range("192.0.2.0/28").unwrap();
        let b = parse_range("192.0.2.15-192.0.2.20").unwrap();
        let c = parse_range("192.0.2.16/28").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&c) && !a.overlaps(&c));
        assert!(a.contains(ip("192.0.2.15")) && !a.contains(ip("2001:db8::1")));
    }
}
