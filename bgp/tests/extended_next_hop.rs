//! RFC 8950 extended next hop encoding: the capability (code 5), IPv4 unicast NLRI in
//! MP_REACH_NLRI with an IPv6 next hop (16 or 32 octets), MP_UNREACH withdrawals, the
//! negotiation, and the Adj-RIB-Out's choice of next hop on a link-local (unnumbered) session.
//!
//! Byte vectors: `frr_*` were captured with `tcpdump -s0 -w` on the node side of a veth in
//! network namespaces, 2026-12-05, FRR 8.4.4 (Debian 12) `neighbor u1 interface remote-as
//! external` (AS 64513) peering unnumbered with ferrolb-speaker (AS 64512); the TCP payload was
//! split into BGP messages with a small script. The others are written from the wire diagrams
//! of RFC 8950 §3 (capability: NLRI AFI 2 octets, NLRI SAFI 2 octets, next hop AFI 2 octets)
//! and §4 / RFC 4760 §3 (MP_REACH_NLRI with AFI 1, SAFI 1, next hop length 16 or 32). All are
//! checked both ways (decode == value, encode(value) == bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_bgp::machine::*;
use ferrolb_bgp::packet::*;
use ferrolb_bgp::rib::*;
use ipnet::IpNet;

mod common;
use common::{both_ways, cxt, hex};

const LL: &str = "fe80::1";
const GLOBAL: &str = "2001:db8::10";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn open_with_extended_next_hop_capability() {
    let open = Open {
        version: 4,
        my_as: 64512,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 10),
        params: vec![vec![Capability::ExtendedNextHop(vec![
            NextHopTuple::IPV4_UNICAST_OVER_IPV6,
        ])]],
    };
    // len 39, OPEN, v4, AS 64512 (fc00), hold 90, id 192.0.2.10, opt len 10,
    // param 2 len 8: cap 5 len 6: AFI 1, SAFI 1 (2 octets), next hop AFI 2.
    both_ways(
        "0027 01 04 fc00 005a c000020a 0a 02 08 05 06 0001 0001 0002",
        Message::Open(open),
    );
}

#[test]
fn frr_unnumbered_open_offers_ipv4_over_ipv6() {
    let unknown = |code, value: &str| Capability::Unknown {
        code,
        value: hex(value),
    };
    let open = Open {
        version: 4,
        my_as: 64513,
        hold_time: 180,
        bgp_id: Ipv4Addr::new(198, 51, 100, 1),
        params: vec![
            vec![Capability::MultiProtocol { afi: 1, safi: 1 }],
            vec![Capability::ExtendedNextHop(vec![
                NextHopTuple::IPV4_UNICAST_OVER_IPV6,
            ])],
            vec![Capability::MultiProtocol { afi: 2, safi: 1 }],
            vec![unknown(128, "")],
            vec![Capability::RouteRefresh],
            vec![Capability::EnhancedRouteRefresh],
            vec![Capability::FourOctetAsn(64513)],
            vec![Capability::ExtendedMessage],
            vec![unknown(69, "0001010100020101")],
            vec![unknown(73, "02766d00")],
            vec![Capability::GracefulRestart {
                flags: 0xc0,
                restart_time: 120,
                families: vec![],
            }],
            vec![unknown(71, "0001018000000000020180000000")],
        ],
    };
    both_ways(
        "007b0104fc0100b4c63364015e0206010400010001020805060001000100020206010400020001020280000202020002024600020641040000fc0102020600020a450800010101000201010206490402766d0002044002c0780210470e0001018000000000020180000000",
        Message::Open(open),
    );
}

#[test]
fn frr_unnumbered_update_sends_its_link_local_address_twice() {
    // FRR re-advertising our 203.0.113.5/32: MP_REACH AFI 1 SAFI 1, 32-octet next hop with
    // its link-local address in both the global and the link-local field.
    let frr_ll = ip("fe80::4cb:3cff:fea1:cf6e");
    let u = Update {
        attrs: vec![
            PathAttr {
                flags: attr_flags::OPTIONAL | attr_flags::EXTENDED_LENGTH,
                value: AttrValue::MpReach(MpReach {
                    family: Family::Ipv4Unicast,
                    next_hops: vec![frr_ll, frr_ll],
                    nlri: vec![net("203.0.113.5/32")],
                }),
            },
            PathAttr::new(AttrValue::Origin(0)),
            PathAttr {
                flags: attr_flags::TRANSITIVE | attr_flags::EXTENDED_LENGTH,
                value: AttrValue::AsPath(vec![AsSegment::sequence(vec![64513, 64512])]),
            },
        ],
        ..Default::default()
    };
    both_ways(
        "00570200000040900e002a00010120fe8000000000000004cb3cfffea1cf6efe8000000000000004cb3cfffea1cf6e0020cb007105400101005002000a02020000fc010000fc00",
        Message::Update(u),
    );
}

#[test]
fn extended_next_hop_capability_length_must_be_tuples() {
    let bytes = hex(
        "ffffffffffffffffffffffffffffffff 0025 01 04 fc00 005a c000020a 08 02 06 05 04 0001 0001",
    );
    let e = Message::decode(&mut bytes.clone(), &cxt()).unwrap_err();
    assert_eq!((e.code, e.subcode), (error_code::OPEN, 0));
}

fn mp_reach_v4(next_hops: Vec<IpAddr>) -> Update {
    Update {
        attrs: vec![
            PathAttr {
                flags: attr_flags::OPTIONAL | attr_flags::EXTENDED_LENGTH,
                value: AttrValue::MpReach(MpReach {
                    family: Family::Ipv4Unicast,
                    next_hops,
                    nlri: vec![net("203.0.113.10/32")],
                }),
            },
            PathAttr::new(AttrValue::Origin(0)),
            PathAttr::new(AttrValue::AsPath(vec![AsSegment::sequence(vec![64512])])),
        ],
        ..Default::default()
    }
}

#[test]
fn ipv4_nlri_with_link_local_next_hop() {
    // MP_REACH (flags 90, type 0e, len 0x001a = 26): AFI 1, SAFI 1, NH len 16, fe80::1,
    // reserved, 203.0.113.10/32. Then ORIGIN IGP and AS_PATH [64512].
    both_ways(
        "0042 02 0000 002b
         900e001a 0001 01 10 fe800000000000000000000000000001 00 20cb00710a
         40010100 400206 0201 0000fc00",
        Message::Update(mp_reach_v4(vec![ip(LL)])),
    );
}

#[test]
fn ipv4_nlri_with_global_and_link_local_next_hop() {
    both_ways(
        "0052 02 0000 003b
         900e002a 0001 01 20 20010db8000000000000000000000010 fe800000000000000000000000000001
         00 20cb00710a
         40010100 400206 0201 0000fc00",
        Message::Update(mp_reach_v4(vec![ip(GLOBAL), ip(LL)])),
    );
}

#[test]
fn ipv4_withdrawal_in_mp_unreach() {
    let u = Update {
        attrs: vec![PathAttr::new(AttrValue::MpUnreach(MpUnreach {
            family: Family::Ipv4Unicast,
            withdrawn: vec![net("203.0.113.10/32")],
        }))],
        ..Default::default()
    };
    both_ways(
        "0022 02 0000 000b 800f08 0001 01 20cb00710a",
        Message::Update(u),
    );
}

const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn negotiated(ours: bool, theirs: bool) -> Negotiated {
    let mut c = FsmConfig::new(64512, 64513, Ipv4Addr::new(192, 0, 2, 10));
    c.extended_next_hop = ours;
    // What we send offers the tuple only when configured.
    let offered = c
        .open()
        .capabilities()
        .any(|c| matches!(c, Capability::ExtendedNextHop(_)));
    assert_eq!(offered, ours);
    let mut caps = vec![
        Capability::MultiProtocol { afi: 1, safi: 1 },
        Capability::MultiProtocol { afi: 2, safi: 1 },
    ];
    if theirs {
        // FRR 8.4 on an interface neighbour offers IPv4 unicast and VPN (SAFI 128).
        caps.push(Capability::ExtendedNextHop(vec![
            NextHopTuple::IPV4_UNICAST_OVER_IPV6,
            NextHopTuple {
                nlri_afi: 1,
                nlri_safi: 128,
                next_hop_afi: 2,
            },
        ]));
    }
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(Open::new(
        64513, 90, PEER_ID, caps,
    ))));
    f.process(Input::Message(Message::Keepalive));
    assert_eq!(f.state(), State::Established);
    f.negotiated().unwrap().clone()
}

#[test]
fn negotiated_only_when_both_sides_offer_it() {
    assert!(negotiated(true, true).ipv4_over_ipv6_next_hop);
    assert!(!negotiated(true, false).ipv4_over_ipv6_next_hop);
    assert!(!negotiated(false, true).ipv4_over_ipv6_next_hop);
}

fn unnumbered(ext: bool, global: Option<&str>) -> SessionInfo {
    SessionInfo {
        local_asn: 64512,
        peer_asn: 64513,
        local_v4: None,
        local_v6: global.map(|g| g.parse().unwrap()),
        link_local: Some(LL.parse::<Ipv6Addr>().unwrap()),
        ipv4_over_ipv6: ext,
        offered_ipv4_over_ipv6: true,
        cxt: cxt(),
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
    }
}

fn routes() -> RouteSet {
    [net("203.0.113.10/32"), net("2001:db8:100::10/128")]
        .into_iter()
        .map(|n| (n, RouteAttrs::default().into()))
        .collect()
}

/// One MP_REACH: family, next hops, NLRI.
type Reach = (Family, Vec<IpAddr>, Vec<IpNet>);

/// Each MP_REACH and the MP_UNREACH withdrawals, after a wire round trip.
fn on_wire(ups: &[Update]) -> (Vec<Reach>, Vec<IpNet>) {
    let mut reach = Vec::new();
    let mut unreach = Vec::new();
    for u in ups {
        let b = Message::Update(u.clone()).to_bytes(&cxt());
        let Message::Update(d) = Message::decode(&mut b.clone(), &cxt()).unwrap() else {
            panic!()
        };
        assert!(
            d.nlri.is_empty() && d.withdrawn.is_empty() && !d.treat_as_withdraw,
            "{d:?}"
        );
        for a in d.attrs {
            match a.value {
                AttrValue::MpReach(m) => reach.push((m.family, m.next_hops, m.nlri)),
                AttrValue::MpUnreach(m) => unreach.extend(m.withdrawn),
                AttrValue::NextHop(_) => panic!("NEXT_HOP on an IPv6-only session"),
                _ => {}
            }
        }
    }
    reach.sort();
    (reach, unreach)
}

#[test]
fn unnumbered_session_sends_ipv4_with_link_local_next_hop_twice_as_frr_does() {
    let s = unnumbered(true, None);
    let mut rib = AdjRibOut::new();
    let plan = rib.sync(&routes(), &s);
    assert_eq!((plan.unresolved, plan.needs_extended_next_hop), (0, 0));
    let (reach, unreach) = on_wire(&plan.updates);
    assert_eq!(
        reach,
        vec![
            (
                Family::Ipv4Unicast,
                vec![ip(LL), ip(LL)],
                vec![net("203.0.113.10/32")]
            ),
            (
                Family::Ipv6Unicast,
                vec![ip(LL), ip(LL)],
                vec![net("2001:db8:100::10/128")]
            ),
        ]
    );
    assert!(unreach.is_empty());
    // Withdrawing: the IPv4 route goes in MP_UNREACH too, like the IPv6 one.
    let plan = rib.sync(&RouteSet::new(), &s);
    let (reach, mut unreach) = on_wire(&plan.updates);
    unreach.sort();
    assert!(reach.is_empty());
    assert_eq!(
        unreach,
        vec![net("203.0.113.10/32"), net("2001:db8:100::10/128")]
    );
}

#[test]
fn global_address_goes_first_then_link_local() {
    let s = unnumbered(true, Some(GLOBAL));
    let plan = AdjRibOut::new().sync(&routes(), &s);
    let (reach, _) = on_wire(&plan.updates);
    assert!(
        reach
            .iter()
            .all(|(_, nh, _)| nh == &vec![ip(GLOBAL), ip(LL)])
    );
    assert_eq!(reach.len(), 2);
}

#[test]
fn ipv4_routes_refused_without_the_capability() {
    let s = unnumbered(false, None);
    let mut rib = AdjRibOut::new();
    let plan = rib.sync(&routes(), &s);
    assert_eq!(plan.needs_extended_next_hop, 1);
    assert_eq!(plan.unresolved, 0);
    let (reach, _) = on_wire(&plan.updates);
    assert_eq!(
        reach,
        vec![(
            Family::Ipv6Unicast,
            vec![ip(LL), ip(LL)],
            vec![net("2001:db8:100::10/128")]
        )]
    );
    assert_eq!(rib.len(), 1);
}

#[test]
fn ipv4_session_keeps_classic_next_hop_even_with_the_capability() {
    let mut s = unnumbered(true, Some(GLOBAL));
    s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 10));
    let plan = AdjRibOut::new().sync(&routes(), &s);
    let v4 = plan
        .updates
        .iter()
        .find(|u| !u.nlri.is_empty())
        .expect("IPv4 NLRI in the UPDATE body");
    assert_eq!(
        v4.attr(attr_type::NEXT_HOP),
        Some(&AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 10)))
    );
}

#[test]
fn link_local_peer_needs_its_interface() {
    let mut p = ferrolb_bgp::PeerConfig::new(ip(LL), 64512, 64513);
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("interface"), "{e}");
    p.interface = Some("eth0".into());
    p.validate().unwrap();
}

#[test]
fn without_our_offer_an_ipv4_route_on_an_ipv6_session_is_unresolved() {
    let mut s = unnumbered(false, Some(GLOBAL));
    s.offered_ipv4_over_ipv6 = false;
    let plan = AdjRibOut::new().sync(&routes(), &s);
    assert_eq!((plan.unresolved, plan.needs_extended_next_hop), (1, 0));
}
