//! Adj-RIB-Out: diffs are minimal, NLRI sharing attributes are packed into few UPDATEs that
//! fit in 4096 bytes, and what goes out decodes back to exactly the desired set.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;
use ferrolb_bgp::packet::*;
use ferrolb_bgp::rib::*;
use ipnet::IpNet;

fn sess(local_asn: u32, peer_asn: u32) -> SessionInfo {
    SessionInfo {
        local_asn,
        peer_asn,
        local_v4: Some(Ipv4Addr::new(192, 0, 2, 10)),
        local_v6: None,
        link_local: None,
        ipv4_over_ipv6: false,
        offered_ipv4_over_ipv6: false,
        cxt: Cxt {
            four_byte_asn: true,
            max_len: MAX_LEN,
        },
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
    }
}

fn v4_routes(n: u32) -> RouteSet {
    (0..n)
        .map(|i| {
            let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i);
            (
                IpNet::new(IpAddr::V4(a), 32).unwrap(),
                RouteAttrs::default().into(),
            )
        })
        .collect()
}

fn v6_routes(n: u32, nh: Option<IpAddr>) -> RouteSet {
    (0..n)
        .map(|i| {
            let a = Ipv6Addr::from(
                u128::from("2001:db8:100::".parse::<Ipv6Addr>().unwrap()) + i as u128,
            );
            (
                IpNet::new(IpAddr::V6(a), 128).unwrap(),
                RouteAttrs {
                    next_hop: nh,
                    ..Default::default()
                }
                .into(),
            )
        })
        .collect()
}

/// Encodes, checks sizes, decodes back; returns (announced, withdrawn) sets.
fn wire(ups: &[Update], s: &SessionInfo) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
    let mut ann = BTreeSet::new();
    let mut wd = BTreeSet::new();
    for u in ups {
        let mut b = BytesMut::new();
        Message::Update(u.clone()).encode(&mut b, &s.cxt);
        assert!(b.len() <= MAX_LEN, "UPDATE of {} bytes", b.len());
        let Message::Update(d) = Message::decode(&mut b.freeze(), &s.cxt).unwrap() else {
            panic!()
        };
        assert!(!d.treat_as_withdraw);
        ann.extend(d.nlri.iter().map(|n| IpNet::V4(*n)));
        wd.extend(d.withdrawn.iter().map(|n| IpNet::V4(*n)));
        for a in &d.attrs {
            match &a.value {
                AttrValue::MpReach(m) => ann.extend(m.nlri.iter().copied()),
                AttrValue::MpUnreach(m) => wd.extend(m.withdrawn.iter().copied()),
                _ => {}
            }
        }
    }
    (ann, wd)
}

#[test]
fn hundred_thousand_v4_routes_fit_in_125_updates() {
    let s = sess(64512, 64513);
    let mut rib = AdjRibOut::new();
    let routes = v4_routes(100_000);
    let plan = rib.sync(&routes, &s);
    assert!(plan.updates.len() <= 125, "{} UPDATEs", plan.updates.len());
    let (ann, wd) = wire(&plan.updates, &s);
    assert_eq!(ann, routes.keys().copied().collect());
    assert!(wd.is_empty());
    assert_eq!(rib.len(), 100_000);
    // Nothing changed: nothing to send.
    assert!(rib.sync(&routes, &s).updates.is_empty());
}

#[test]
fn ipv6_routes_use_explicit_next_hop_over_ipv4_session() {
    let s = sess(64512, 64513);
    let mut rib = AdjRibOut::new();
    // Without a next hop they cannot go out over an IPv4 session.
    let plan = rib.sync(&v6_routes(10, None), &s);
    assert_eq!(plan.unresolved, 10);
    assert!(plan.updates.is_empty());
    let nh: IpAddr = "2001:db8::10".parse().unwrap();
    let routes = v6_routes(20_000, Some(nh));
    let plan = rib.sync(&routes, &s);
    // 4096 bytes hold about 235 /128s.
    assert!(plan.updates.len() <= 90, "{} UPDATEs", plan.updates.len());
    let (ann, _) = wire(&plan.updates, &s);
    assert_eq!(ann.len(), 20_000);
    let first = &plan.updates[0];
    let Some(AttrValue::MpReach(m)) = first.attr(attr_type::MP_REACH) else {
        panic!()
    };
    assert_eq!(m.next_hops, vec![nh]);
}

#[test]
fn diff_sends_only_changes_and_packs_withdrawals() {
    let s = sess(64512, 64513);
    let mut rib = AdjRibOut::new();
    let mut routes = v4_routes(5000);
    rib.sync(&routes, &s);
    // Change the attributes of one route, drop 2000 others.
    let first = *routes.keys().next().unwrap();
    std::sync::Arc::make_mut(routes.get_mut(&first).unwrap()).communities =
        vec![(65000 << 16) | 100];
    let dropped: Vec<IpNet> = routes.keys().skip(3000).copied().collect();
    for d in &dropped {
        routes.remove(d);
    }
    let plan = rib.sync(&routes, &s);
    assert_eq!(plan.announced, 1);
    assert_eq!(plan.withdrawn, 2000);
    // 2000 withdrawals of 5 bytes: 3 messages; plus one announcement.
    assert_eq!(plan.updates.len(), 4);
    let (ann, wd) = wire(&plan.updates, &s);
    assert_eq!(ann, BTreeSet::from([first]));
    assert_eq!(wd, dropped.into_iter().collect());
    let u = plan.updates.last().unwrap();
    assert_eq!(
        u.attr(attr_type::COMMUNITIES),
        Some(&AttrValue::Communities(vec![(65000 << 16) | 100]))
    );
}

#[test]
fn ebgp_gets_as_path_and_no_local_pref_ibgp_gets_local_pref() {
    let mut routes = RouteSet::new();
    routes.insert(
        "203.0.113.10/32".parse().unwrap(),
        RouteAttrs {
            local_pref: Some(200),
            med: Some(5),
            large_communities: vec![LargeCommunity(64512, 1, 2)],
            ..Default::default()
        }
        .into(),
    );
    let ebgp = sess(64512, 64513);
    let ups = AdjRibOut::new().sync(&routes, &ebgp).updates;
    let u = &ups[0];
    assert_eq!(
        u.attr(attr_type::AS_PATH),
        Some(&AttrValue::AsPath(vec![AsSegment::sequence(vec![64512])]))
    );
    assert_eq!(u.attr(attr_type::LOCAL_PREF), None);
    assert_eq!(u.attr(attr_type::MED), Some(&AttrValue::Med(5)));
    assert_eq!(
        u.attr(attr_type::NEXT_HOP),
        Some(&AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 10)))
    );
    let ibgp = sess(64512, 64512);
    let ups = AdjRibOut::new().sync(&routes, &ibgp).updates;
    assert_eq!(
        ups[0].attr(attr_type::AS_PATH),
        Some(&AttrValue::AsPath(vec![]))
    );
    assert_eq!(
        ups[0].attr(attr_type::LOCAL_PREF),
        Some(&AttrValue::LocalPref(200))
    );
}

#[test]
fn ibgp_always_gets_local_pref_default_100() {
    // Regression: a route without localPref went to an iBGP peer without LOCAL_PREF, which
    // is mandatory there (RFC 4271 §5.1.5); FRR 8.4 withdrew it as malformed.
    let routes = v4_routes(1);
    let ups = AdjRibOut::new().sync(&routes, &sess(64512, 64512)).updates;
    assert_eq!(
        ups[0].attr(attr_type::LOCAL_PREF),
        Some(&AttrValue::LocalPref(ferrolb_bgp::DEFAULT_LOCAL_PREF))
    );
    assert_eq!(ferrolb_bgp::DEFAULT_LOCAL_PREF, 100);
    let ups = AdjRibOut::new().sync(&routes, &sess(64512, 64513)).updates;
    assert_eq!(ups[0].attr(attr_type::LOCAL_PREF), None, "never to eBGP");
}

#[test]
fn routes_of_families_not_negotiated_are_not_sent() {
    let mut s = sess(64512, 64513);
    s.families = vec![Family::Ipv4Unicast];
    let mut routes = v4_routes(3);
    routes.extend(v6_routes(3, Some("2001:db8::1".parse().unwrap())));
    let mut rib = AdjRibOut::new();
    let plan = rib.sync(&routes, &s);
    assert_eq!(plan.announced, 3);
    assert_eq!(rib.len(), 3);
}

#[test]
fn replay_resends_a_family() {
    let s = sess(64512, 64513);
    let mut rib = AdjRibOut::new();
    let mut routes = v4_routes(1000);
    routes.extend(v6_routes(100, Some("2001:db8::1".parse().unwrap())));
    rib.sync(&routes, &s);
    let (ann, _) = wire(&rib.replay(Family::Ipv6Unicast, &s), &s);
    assert_eq!(ann.len(), 100);
    let (ann, _) = wire(&rib.replay(Family::Ipv4Unicast, &s), &s);
    assert_eq!(ann.len(), 1000);
}

#[test]
fn extended_messages_pack_more_per_update() {
    let mut s = sess(64512, 64513);
    s.cxt.max_len = EXT_MAX_LEN;
    let mut rib = AdjRibOut::new();
    let routes = v4_routes(100_000);
    let plan = rib.sync(&routes, &s);
    assert!(plan.updates.len() <= 8, "{} UPDATEs", plan.updates.len());
    for u in &plan.updates {
        assert!(Message::Update(u.clone()).to_bytes(&s.cxt).len() <= EXT_MAX_LEN);
    }
}
