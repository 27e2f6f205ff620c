//! L2 owner election: which node answers ARP/NDP for a Service IP.
//!
//! A pure function of the candidate set and a key. The caller builds the candidates (live
//! members ∩ nodes selected by a matching L2Advertisement ∩, for `externalTrafficPolicy:
//! Local`, nodes with a ready local endpoint ∩ nodes with a carrier-up interface in the IP's
//! subnet or in the advertisement's `interfaces`) and passes the Service's **first ingress
//! IP** as the key for every IP of the Service, so dual-stack IPs and Services sharing an IP
//! all land on one node (MetalLB semantics, `speaker/layer2_controller.go: sortL2Candidates`).
//!
//! Order, best first:
//! 1. the summed `preferredNodeSelectors` weight of the node, highest first;
//! 2. rendezvous (highest-random-weight) hashing: `SHA-256(node_name + "#" + key)`, where
//!    `key` is the IP in its canonical text form (`192.0.2.10`, `2001:db8::a`), compared as
//!    bytes, **lowest first**.
//!
//! The hash is exactly MetalLB's, so for the same candidate set ferrolb picks the same node
//! as MetalLB does (a migration does not move L2 IPs). SHA-256 is fixed by its standard: the
//! result is identical across speaker versions, Rust releases and CPU architectures (unlike
//! `std`'s `DefaultHasher`). Rendezvous hashing means a node leaving moves only the keys it
//! owned, a node joining takes keys only for itself, and keys spread evenly.

use std::cmp::Ordering;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// A node that may own an IP, with its summed `preferredNodeSelectors` weight (0 when no
/// preference matches it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCandidate {
    pub name: String,
    pub preference_weight: u32,
}

impl NodeCandidate {
    pub fn new(name: impl Into<String>, preference_weight: u32) -> Self {
        NodeCandidate {
            name: name.into(),
            preference_weight,
        }
    }
}

/// The rendezvous hash of `node` for `key`: `SHA-256(node + "#" + key)`. Lower sorts first.
pub fn rendezvous_hash(node: &str, key: IpAddr) -> [u8; 32] {
    hash_text(node, &key.to_string())
}

fn hash_text(node: &str, key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update(b"#");
    h.update(key.as_bytes());
    h.finalize().into()
}

/// The owner of `key` among `candidates`: highest `preference_weight`, then lowest
/// [`rendezvous_hash`]. `None` when there is no candidate. The order of `candidates` does
/// not matter. Pass the Service's first ingress IP as `key` for all of its IPs.
pub fn owner(candidates: &[NodeCandidate], key: IpAddr) -> Option<&str> {
    let key = key.to_string();
    candidates
        .iter()
        .map(|c| (c, hash_text(&c.name, &key)))
        .min_by(compare)
        .map(|(c, _)| c.name.as_str())
}

/// The one owner of all IPs of a Service (or of Services sharing an IP): the election
/// keyed on the first ingress IP, as MetalLB does. `None` without candidates or IPs.
pub fn service_owner<'a>(candidates: &'a [NodeCandidate], ingress: &[IpAddr]) -> Option<&'a str> {
    owner(candidates, *ingress.first()?)
}

/// All candidates in election order (the owner first, then who would take over if it
/// went away), for status and diagnostics.
pub fn ranking(candidates: &[NodeCandidate], key: IpAddr) -> Vec<&str> {
    let key = key.to_string();
    let mut scored: Vec<_> = candidates
        .iter()
        .map(|c| (c, hash_text(&c.name, &key)))
        .collect();
    scored.sort_by(compare);
    scored.into_iter().map(|(c, _)| c.name.as_str()).collect()
}

fn compare(a: &(&NodeCandidate, [u8; 32]), b: &(&NodeCandidate, [u8; 32])) -> Ordering {
    b.0.preference_weight
        .cmp(&a.0.preference_weight)
        .then_with(|| a.1.cmp(&b.1))
        // Equal hashes only for equal names: make the order total anyway.
        .then_with(|| a.0.name.cmp(&b.0.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    fn nodes(n: usize) -> Vec<NodeCandidate> {
        (0..n)
            .map(|i| NodeCandidate::new(format!("node-{i}"), 0))
            .collect()
    }

    /// `count` distinct keys: 2001:db8::/32 addresses plus a few IPv4 ones.
    fn keys(count: u32) -> Vec<IpAddr> {
        (0..count)
            .map(|i| {
                if i % 16 == 0 {
                    IpAddr::V4(Ipv4Addr::new(198, 51, (i >> 8) as u8, i as u8))
                } else {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        (i >> 16) as u16,
                        i as u16,
                    ))
                }
            })
            .collect()
    }

    fn owners(cands: &[NodeCandidate], keys: &[IpAddr]) -> Vec<String> {
        keys.iter()
            .map(|k| owner(cands, *k).unwrap().to_string())
            .collect()
    }

    fn hex(h: [u8; 32]) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hash_is_sha256_of_node_hash_ip() {
        // Independent values from coreutils: `printf 'node-a#192.0.2.1' | sha256sum`.
        assert_eq!(
            hex(rendezvous_hash("node-a", "192.0.2.1".parse().unwrap())),
            "9028b03eebd9c50f45e3cb24b507db170990cd5f206b44ba22be4e1dc2acad0a"
        );
        // `printf 'node-b#2001:db8::a' | sha256sum`: IPv6 in its compressed RFC 5952 form.
        assert_eq!(
            hex(rendezvous_hash(
                "node-b",
                "2001:0db8:0:0::000a".parse().unwrap()
            )),
            "1ce11397ce7221288350408cb5c6e4774dc397d91ebffc535c8c3db93ff98d3e"
        );
    }

    #[test]
    fn empty_candidates_have_no_owner() {
        assert_eq!(owner(&[], "192.0.2.1".parse().unwrap()), None);
    }

    #[test]
    fn lowest_hash_wins_among_equal_weights() {
        let cands = nodes(5);
        let key: IpAddr = "203.0.113.7".parse().unwrap();
        let want = cands
            .iter()
            .min_by_key(|c| rendezvous_hash(&c.name, key))
            .unwrap();
        assert_eq!(owner(&cands, key), Some(want.name.as_str()));
        assert_eq!(ranking(&cands, key)[0], want.name);
        assert_eq!(ranking(&cands, key).len(), 5);
    }

    #[test]
    fn member_loss_moves_only_the_lost_nodes_ips() {
        let cands = nodes(10);
        let ks = keys(10_000);
        let before = owners(&cands, &ks);
        let lost = "node-3";
        let rest: Vec<_> = cands.iter().filter(|c| c.name != lost).cloned().collect();
        let after = owners(&rest, &ks);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b == lost {
                assert_ne!(a, lost);
                moved += 1;
            } else {
                assert_eq!(a, b, "an IP of a surviving node moved");
            }
        }
        assert!(
            moved > 0,
            "the lost node owned nothing: test proves nothing"
        );
    }

    #[test]
    fn join_moves_ips_only_to_the_new_node() {
        let cands = nodes(10);
        let ks = keys(10_000);
        let before = owners(&cands, &ks);
        let mut more = cands.clone();
        more.push(NodeCandidate::new("node-new", 0));
        let after = owners(&more, &ks);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if a != b {
                assert_eq!(a, "node-new", "an IP moved to an old node");
                moved += 1;
            }
        }
        // Rendezvous: the new node takes about 1/11 of the keys.
        assert!((700..=1100).contains(&moved), "moved {moved} of 10000");
    }

    fn assert_even(n: usize, key_count: u32) {
        let cands = nodes(n);
        let ks = keys(key_count);
        let mut count: HashMap<String, u32> = HashMap::new();
        for o in owners(&cands, &ks) {
            *count.entry(o).or_default() += 1;
        }
        assert_eq!(count.len(), n, "some node owns nothing");
        let even = f64::from(key_count) / n as f64;
        for (node, c) in &count {
            let dev = (f64::from(*c) - even).abs() / even;
            assert!(
                dev <= 0.20,
                "{node} owns {c}, even is {even:.0} ({n} nodes)"
            );
        }
    }

    #[test]
    fn spread_over_3_nodes_is_even() {
        assert_even(3, 10_000);
    }

    #[test]
    fn spread_over_10_nodes_is_even() {
        assert_even(10, 10_000);
    }

    #[test]
    fn spread_over_100_nodes_is_even() {
        // 300 keys per node on average: ±20% is about 3.5 standard deviations.
        assert_even(100, 30_000);
    }

    #[test]
    fn preference_weight_wins_over_hash() {
        let mut cands = nodes(10);
        let ks = keys(2_000);
        cands[7].preference_weight = 10;
        assert!(owners(&cands, &ks).iter().all(|o| o == "node-7"));
        // Two nodes with the top summed weight split the keys by hash between them.
        cands[2].preference_weight = 10;
        cands[4].preference_weight = 5;
        let split = owners(&cands, &ks);
        let on7 = split.iter().filter(|o| *o == "node-7").count();
        let on2 = split.iter().filter(|o| *o == "node-2").count();
        assert_eq!(on7 + on2, ks.len());
        assert!(on7 > 600 && on2 > 600, "uneven split {on7}/{on2}");
        // The preferred node leaving hands its keys to the next weight, not to the hash.
        let rest: Vec<_> = cands
            .iter()
            .filter(|c| c.name != "node-7" && c.name != "node-2")
            .cloned()
            .collect();
        assert!(owners(&rest, &ks).iter().all(|o| o == "node-4"));
    }

    #[test]
    fn dual_stack_service_has_one_owner_keyed_on_the_first_ip() {
        let cands = nodes(10);
        // Find a Service whose two IPs would land on different nodes if elected apart.
        let svc = (0..1000u32)
            .map(|i| {
                let v4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i % 250) as u8));
                let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i as u16));
                [v4, v6]
            })
            .find(|[a, b]| owner(&cands, *a) != owner(&cands, *b))
            .expect("some pair splits");
        assert_eq!(service_owner(&cands, &svc), owner(&cands, svc[0]));
        assert_ne!(service_owner(&cands, &svc), owner(&cands, svc[1]));
        assert_eq!(service_owner(&cands, &[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn owner_is_a_candidate_and_order_independent(
            weights in proptest::collection::vec(0u32..3, 1..12),
            ip in any::<u32>(),
            rot in 0usize..12,
        ) {
            let cands: Vec<_> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| NodeCandidate::new(format!("n{i}"), *w))
                .collect();
            let key = IpAddr::V4(Ipv4Addr::from(ip));
            let o = owner(&cands, key).unwrap().to_string();
            prop_assert!(cands.iter().any(|c| c.name == o));
            let max_w = cands.iter().map(|c| c.preference_weight).max().unwrap();
            prop_assert_eq!(cands.iter().find(|c| c.name == o).unwrap().preference_weight, max_w);
            let mut rotated = cands.clone();
            let len = rotated.len();
            rotated.rotate_left(rot % len);
            prop_assert_eq!(owner(&rotated, key).unwrap(), o.as_str());
            // Removing any non-owner never moves the IP.
            for skip in 0..cands.len() {
                if cands[skip].name == o { continue; }
                let fewer: Vec<_> = cands.iter().enumerate()
                    .filter(|(i, _)| *i != skip).map(|(_, c)| c.clone()).collect();
                prop_assert_eq!(owner(&fewer, key).unwrap(), o.as_str());
            }
        }
    }
}
