//! Status helpers, and properties of the address parser.

mod common;

use common::*;
use ferrolb_crds::config::{IpRange, parse_range};
use ferrolb_crds::v1alpha1::{ConfigurationResult, ConfigurationStateStatus};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[test]
fn configuration_state_from_errors() {
    let out = build(&(pool("a", &["192.0.2.0/28"]) + &pool("b", &["192.0.2.9-192.0.2.1"])));
    let status = ConfigurationStateStatus::from_errors(&out.errors, None);
    assert_eq!(status.result, ConfigurationResult::Invalid);
    assert_eq!(status.error_count, 1);
    assert_eq!(
        status.error_summary,
        "IPAddressPool ferrolb-system/b: spec.addresses[0] \"192.0.2.9-192.0.2.1\": range start after end"
    );
    let e = &status.errors[0];
    assert_eq!(
        (
            e.kind.as_str(),
            e.namespace.as_str(),
            e.name.as_str(),
            e.field.as_str()
        ),
        ("IPAddressPool", "ferrolb-system", "b", "spec.addresses[0]")
    );
    assert_eq!(e.value.as_deref(), Some("192.0.2.9-192.0.2.1"));
    let ok = ConfigurationStateStatus::from_errors(&[], None);
    assert_eq!((ok.result, ok.error_count), (ConfigurationResult::Valid, 0));
}

fn check_cidrs_cover_exactly(r: &IpRange) {
    let cidrs = r.to_cidrs();
    let mut next = r.interval().0;
    for c in &cidrs {
        let piece = IpRange::from_net(*c);
        assert_eq!(piece.interval().0, next, "CIDRs of {r} are contiguous");
        next = piece.interval().1.wrapping_add(1);
    }
    assert_eq!(
        next.wrapping_sub(1),
        r.interval().1,
        "CIDRs of {r} end at its end"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v4_ranges_round_trip_and_summarize(a in any::<u32>(), b in any::<u32>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let text = format!("{}-{}", Ipv4Addr::from(lo), Ipv4Addr::from(hi));
        let r = parse_range(&text).unwrap();
        prop_assert_eq!(r.interval(), (u128::from(lo), u128::from(hi)));
        prop_assert_eq!(r.len(), u128::from(hi - lo) + 1);
        check_cidrs_cover_exactly(&r);
        if lo != hi {
            let reversed = format!("{}-{}", Ipv4Addr::from(hi), Ipv4Addr::from(lo));
            prop_assert_eq!(parse_range(&reversed).unwrap_err(), "range start after end");
        }
    }

    #[test]
    fn v6_ranges_summarize(a in any::<u128>(), span in 0u128..100_000) {
        let hi = a.saturating_add(span);
        let r = IpRange::new(IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(hi))).unwrap();
        check_cidrs_cover_exactly(&r);
        let text = format!("{}-{}", Ipv6Addr::from(a), Ipv6Addr::from(hi));
        prop_assert_eq!(parse_range(&text).unwrap(), r);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,40}") {
        let _ = parse_range(&s);
        let _ = ferrolb_crds::config::CommunityValue::parse(&s);
        let _ = ferrolb_crds::config::parse_duration(&s);
    }
}

fn random_pools() -> impl Strategy<Value = Vec<Vec<(u8, u8)>>> {
    prop::collection::vec(
        prop::collection::vec((any::<u8>(), any::<u8>()), 1..4),
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the pools, accepted pools never overlap, every error names an input pool, and
    /// a pool is left out only with an error.
    #[test]
    fn accepted_pools_never_overlap(spec in random_pools()) {
        let mut yaml = String::new();
        for (i, ranges) in spec.iter().enumerate() {
            let addrs: Vec<String> =
                ranges.iter().map(|(a, b)| format!("192.0.2.{a}-192.0.2.{b}")).collect();
            let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
            yaml += &pool(&format!("p{i}"), &refs);
        }
        let out = ferrolb_crds::Config::build(&res(&yaml), None);
        let pools: Vec<_> = out.config.pools.values().collect();
        for (i, a) in pools.iter().enumerate() {
            for b in &pools[i + 1..] {
                for ra in &a.ranges {
                    prop_assert!(!b.ranges.iter().any(|rb| rb.overlaps(ra)), "{} and {} overlap", a.name, b.name);
                }
            }
        }
        for e in &out.errors {
            prop_assert!(e.object.name.starts_with('p') && e.field.starts_with("spec.addresses["), "{}", e);
        }
        for i in 0..spec.len() {
            let name = format!("p{i}");
            prop_assert!(
                out.config.pools.contains_key(&name) || out.errors.iter().any(|e| e.object.name == name),
                "{} vanished without an error", name
            );
        }
    }
}
