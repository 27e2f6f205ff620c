//! Packet vectors captured from real daemons and checked both ways (decode == value,
//! encode(value) == bytes).
//!
//! Source: `tcpdump -s0 -w` on a veth in network namespaces, 2026-11-23, Debian 12 packages:
//! BIRD 2.0.12 <-> FRR 8.4.4 (iBGP AS 65001, 192.0.2.1 <-> 192.0.2.2) and GoBGP 3.10 (AS 65010,
//! 198.51.100.3) -> BIRD 2.0.12 (AS 65020, 198.51.100.4). TCP payloads were split into BGP
//! messages with a small script; the hex below is each message verbatim.

use bytes::{Bytes, BytesMut};
use ferrolb_bgp::packet::*;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

mod common;
use common::{MARKER, both_ways, cxt, hex};

fn attr(flags: u8, value: AttrValue) -> PathAttr {
    PathAttr { flags, value }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn v4(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn comm(a: u16, b: u16) -> u32 {
    ((a as u32) << 16) | b as u32
}

#[test]
fn bird_open() {
    // BIRD 2.0.12 -> FRR: one capability parameter; GR aware with both families.
    both_ways(
        "00430104fde900f0c00002012602240104000100010104000200010200400a0078000101000002010041040000fde946004700",
        Message::Open(Open {
            version: 4,
            my_as: 65001,
            hold_time: 240,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            params: vec![vec![
                Capability::MultiProtocol { afi: 1, safi: 1 },
                Capability::MultiProtocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
                Capability::GracefulRestart {
                    flags: 0,
                    restart_time: 120,
                    families: vec![
                        GrFamily {
                            afi: 1,
                            safi: 1,
                            flags: 0,
                        },
                        GrFamily {
                            afi: 2,
                            safi: 1,
                            flags: 0,
                        },
                    ],
                },
                Capability::FourOctetAsn(65001),
                Capability::EnhancedRouteRefresh,
                Capability::Unknown {
                    code: 71,
                    value: Bytes::new(),
                },
            ]],
        }),
    );
}

#[test]
fn frr_open() {
    // FRR 8.4.4 -> BIRD: one parameter per capability; GR with R and N bits, no families.
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 180,
        bgp_id: Ipv4Addr::new(192, 0, 2, 2),
        params: vec![
            vec![Capability::MultiProtocol { afi: 1, safi: 1 }],
            vec![Capability::MultiProtocol { afi: 2, safi: 1 }],
            vec![Capability::Unknown {
                code: 128,
                value: Bytes::new(),
            }],
            vec![Capability::RouteRefresh],
            vec![Capability::EnhancedRouteRefresh],
            vec![Capability::FourOctetAsn(65001)],
            vec![Capability::ExtendedMessage],
            vec![Capability::Unknown {
                code: 69,
                value: hex("0001010100020101"),
            }],
            vec![Capability::Unknown {
                code: 73,
                value: hex("02766d00"),
            }],
            vec![Capability::GracefulRestart {
                flags: 0xc0,
                restart_time: 120,
                families: vec![],
            }],
            vec![Capability::Unknown {
                code: 71,
                value: hex("0001018000000000020180000000"),
            }],
        ],
    };
    assert_eq!(open.asn(), 65001);
    both_ways(
        "00710104fde900b4c00002025402060104000100010206010400020001020280000202020002024600020641040000fde902020600020a450800010101000201010206490402766d0002044002c0780210470e0001018000000000020180000000",
        Message::Open(open),
    );
}

#[test]
fn gobgp_open() {
    // GoBGP 3.10 -> BIRD: FQDN kept as unknown; extended next hop (RFC 8950) for IPv4
    // unicast over IPv6.
    both_ways(
        "00410104fdf2005ac63364032402220200490402766d0001040001000101040002000141040000fdf20506000100010002",
        Message::Open(Open {
            version: 4,
            my_as: 65010,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(198, 51, 100, 3),
            params: vec![vec![
                Capability::RouteRefresh,
                Capability::Unknown {
                    code: 73,
                    value: hex("02766d00"),
                },
                Capability::MultiProtocol { afi: 1, safi: 1 },
                Capability::MultiProtocol { afi: 2, safi: 1 },
                Capability::FourOctetAsn(65010),
                Capability::ExtendedNextHop(vec![NextHopTuple::IPV4_UNICAST_OVER_IPV6]),
            ]],
        }),
    );
}

#[test]
fn keepalive() {
    // Every daemon: the 19-byte KEEPALIVE.
    both_ways("001304", Message::Keepalive);
}

#[test]
fn bird_update_ipv4_with_communities() {
    // BIRD static route with community, large community, MED and local-pref over iBGP.
    both_ways(
        "004e020000003240010100400200400304c000020180040400000032400504000000c8c00804fde80064c0200c0000fde8000000010000000220cb00710a",
        Message::Update(Update {
            withdrawn: vec![],
            attrs: vec![
                attr(0x40, AttrValue::Origin(0)),
                attr(0x40, AttrValue::AsPath(vec![])),
                attr(0x40, AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
                attr(0x80, AttrValue::Med(50)),
                attr(0x40, AttrValue::LocalPref(200)),
                attr(0xc0, AttrValue::Communities(vec![comm(65000, 100)])),
                attr(
                    0xc0,
                    AttrValue::LargeCommunities(vec![LargeCommunity(65000, 1, 2)]),
                ),
            ],
            nlri: vec![v4("203.0.113.10/32")],
            treat_as_withdraw: false,
        }),
    );
}

#[test]
fn bird_update_ipv6_over_ipv4_session() {
    // BIRD: MP_REACH first with the extended length bit, explicit IPv6 next hop.
    both_ways(
        "0056020000003f900e00260002011020010db8000000000000000000000001008020010db80010000000000000000000014001010040020040050400000064c00804fde80065",
        Message::Update(Update {
            attrs: vec![
                attr(
                    0x90,
                    AttrValue::MpReach(MpReach {
                        family: Family::Ipv6Unicast,
                        next_hops: vec![ip("2001:db8::1")],
                        nlri: vec![net("2001:db8:10::1/128")],
                    }),
                ),
                attr(0x40, AttrValue::Origin(0)),
                attr(0x40, AttrValue::AsPath(vec![])),
                attr(0x40, AttrValue::LocalPref(100)),
                attr(0xc0, AttrValue::Communities(vec![comm(65000, 101)])),
            ],
            ..Default::default()
        }),
    );
}

#[test]
fn bird_withdrawals_and_end_of_rib() {
    both_ways(
        "002102000a20cb00710b20cb00710a0000",
        Message::Update(Update {
            withdrawn: vec![v4("203.0.113.11/32"), v4("203.0.113.10/32")],
            ..Default::default()
        }),
    );
    both_ways(
        "002f0200000018900f00140002018020010db8001000000000000000000001",
        Message::Update(Update {
            attrs: vec![attr(
                0x90,
                AttrValue::MpUnreach(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: vec![net("2001:db8:10::1/128")],
                }),
            )],
            ..Default::default()
        }),
    );
    // End-of-RIB for IPv4 (empty UPDATE) and IPv6 (empty MP_UNREACH), BIRD and FRR alike.
    let eor4 = Update::end_of_rib(Family::Ipv4Unicast);
    assert_eq!(eor4.end_of_rib_family(), Some(Family::Ipv4Unicast));
    both_ways("00170200000000", Message::Update(eor4));
    let eor6 = Update::end_of_rib(Family::Ipv6Unicast);
    assert_eq!(eor6.end_of_rib_family(), Some(Family::Ipv6Unicast));
    both_ways("001d0200000006800f03000201", Message::Update(eor6));
}

#[test]
fn frr_update_keeps_extended_length_flag() {
    // FRR 8.4: empty AS_PATH sent with the extended length bit (0x50) and a 2-byte length.
    both_ways(
        "0039020000001d4001010050020000400304c0000202800404000000004005040000006420cb00711e",
        Message::Update(Update {
            attrs: vec![
                attr(0x40, AttrValue::Origin(0)),
                attr(0x50, AttrValue::AsPath(vec![])),
                attr(0x40, AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 2))),
                attr(0x80, AttrValue::Med(0)),
                attr(0x40, AttrValue::LocalPref(100)),
            ],
            nlri: vec![v4("203.0.113.30/32")],
            ..Default::default()
        }),
    );
}

#[test]
fn gobgp_updates() {
    // `gobgp global rib add 203.0.113.20/32 community 65000:200 large-community 65000:3:4 med 10`
    both_ways(
        "004d02000000314001010240020602010000fdf2400304c63364038004040000000ac00804fde800c8c0200c0000fde8000000030000000420cb007114",
        Message::Update(Update {
            attrs: vec![
                attr(0x40, AttrValue::Origin(2)),
                attr(
                    0x40,
                    AttrValue::AsPath(vec![AsSegment::sequence(vec![65010])]),
                ),
                attr(0x40, AttrValue::NextHop(Ipv4Addr::new(198, 51, 100, 3))),
                attr(0x80, AttrValue::Med(10)),
                attr(0xc0, AttrValue::Communities(vec![comm(65000, 200)])),
                attr(
                    0xc0,
                    AttrValue::LargeCommunities(vec![LargeCommunity(65000, 3, 4)]),
                ),
            ],
            nlri: vec![v4("203.0.113.20/32")],
            ..Default::default()
        }),
    );
    // `gobgp global rib add -a ipv6 2001:db8:20::1/128 nexthop 2001:db8:1::3`
    both_ways(
        "004d02000000364001010240020602010000fdf2800e260002011020010db8000100000000000000000003008020010db8002000000000000000000001",
        Message::Update(Update {
            attrs: vec![
                attr(0x40, AttrValue::Origin(2)),
                attr(
                    0x40,
                    AttrValue::AsPath(vec![AsSegment::sequence(vec![65010])]),
                ),
                attr(
                    0x80,
                    AttrValue::MpReach(MpReach {
                        family: Family::Ipv6Unicast,
                        next_hops: vec![ip("2001:db8:1::3")],
                        nlri: vec![net("2001:db8:20::1/128")],
                    }),
                ),
            ],
            ..Default::default()
        }),
    );
    both_ways(
        "001c02000520cb0071140000",
        Message::Update(Update {
            withdrawn: vec![v4("203.0.113.20/32")],
            ..Default::default()
        }),
    );
    both_ways(
        "002e0200000017800f140002018020010db8002000000000000000000001",
        Message::Update(Update {
            attrs: vec![attr(
                0x80,
                AttrValue::MpUnreach(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: vec![net("2001:db8:20::1/128")],
                }),
            )],
            ..Default::default()
        }),
    );
}

#[test]
fn route_refresh_from_bird_and_frr() {
    // `birdc reload in` (enhanced route refresh: request, then BoRR/EoRR markers from FRR).
    let rr = |afi, subtype, safi| Message::RouteRefresh(RouteRefresh { afi, subtype, safi });
    both_ways("00170500010001", rr(1, 0, 1));
    both_ways("00170500020001", rr(2, 0, 1));
    both_ways("00170500010101", rr(1, 1, 1));
    both_ways("00170500010201", rr(1, 2, 1));
}

#[test]
fn bird_cease_with_shutdown_communication() {
    // `birdc disable frr "maintenance window"`: Cease / Administrative Shutdown, RFC 9003.
    let n = Notification::cease(CeaseSubcode::AdminShutdown, "maintenance window");
    assert_eq!(n.shutdown_message().as_deref(), Some("maintenance window"));
    both_ways(
        "0028030602126d61696e74656e616e63652077696e646f77",
        Message::Notification(n),
    );
}

fn decode_err(body: &str) -> DecodeError {
    let bytes = hex(&format!("{MARKER}{body}"));
    match frame_len(&bytes, &cxt()) {
        Err(e) => e,
        Ok(_) => Message::decode(&mut bytes.clone(), &cxt()).expect_err("must fail"),
    }
}

#[test]
fn header_errors_map_to_notifications() {
    // Bad marker -> 1/1 Connection Not Synchronized.
    let mut b = hex(&format!("{MARKER}001304")).to_vec();
    b[3] = 0;
    let e = frame_len(&b, &cxt()).unwrap_err();
    assert_eq!((e.code, e.subcode), (1, 1));
    // KEEPALIVE of 20 bytes -> 1/2 with the bad length as data.
    let e = decode_err("00140400");
    assert_eq!((e.code, e.subcode, &e.data[..]), (1, 2, &[0u8, 0x14][..]));
    // Length below the header -> 1/2.
    assert_eq!(decode_err("001004").subcode, 2);
    // UPDATE longer than 4096 -> 1/2.
    assert_eq!(decode_err("100102").subcode, 2);
    // Unknown type 9 -> 1/3 with the type as data.
    let e = decode_err("001309");
    assert_eq!((e.code, e.subcode, &e.data[..]), (1, 3, &[9u8][..]));
    // Incomplete frames wait for more bytes.
    assert_eq!(frame_len(&hex(MARKER), &cxt()), Ok(None));
    assert_eq!(
        frame_len(&hex(&format!("{MARKER}002f02")), &cxt()),
        Ok(None)
    );
}

#[test]
fn open_errors_map_to_notifications() {
    // Version 3 -> 2/1, data = highest supported version (4).
    let e = decode_err("001d0103fde900f0c000020100");
    assert_eq!((e.code, e.subcode, &e.data[..]), (2, 1, &[0u8, 4][..]));
    // Hold time 2 -> 2/6 Unacceptable Hold Time.
    let e = decode_err("001d0104fde90002c000020100");
    assert_eq!((e.code, e.subcode), (2, 6));
    // BGP identifier 0.0.0.0 -> 2/3.
    let e = decode_err("001d0104fde900f00000000000");
    assert_eq!((e.code, e.subcode), (2, 3));
    // Optional parameter type 1 (authentication, deprecated) -> 2/4.
    let e = decode_err("00200104fde900f0c000020103010100");
    assert_eq!((e.code, e.subcode), (2, 4));
    // Parameter length overrunning the message -> 2/0.
    let e = decode_err("001f0104fde900f0c0000201020208");
    assert_eq!((e.code, e.subcode), (2, 0));
    // Hold time 0 is fine.
    let ok = hex(&format!("{MARKER}001d0104fde90000c000020100"));
    assert!(Message::decode(&mut ok.clone(), &cxt()).is_ok());
}

#[test]
fn update_errors_follow_rfc7606() {
    // Withdrawn length overruns the message -> 3/1 (session reset).
    let e = decode_err("001702ffff0000");
    assert_eq!((e.code, e.subcode), (3, 1));
    // NLRI with prefix length 33 -> 3/10 Invalid Network Field.
    let e = decode_err("001c020000000021cb00710a");
    assert_eq!((e.code, e.subcode), (3, 10));
    // Errors RFC 4271/7606 would answer with a session reset, we answer with
    // treat-as-withdraw (received routes are never used): an unrecognized well-known
    // attribute (flags 0x40, type 99), an MP_REACH with a bad next hop length, and a
    // repeated MP_UNREACH.
    for body in [
        "001a0200000003406300",
        "0021020000000a800e0700020103000000",
        "0023020000000c800f03000201800f03000201",
    ] {
        let b = hex(&format!("{MARKER}{body}"));
        let Message::Update(u) = Message::decode(&mut b.clone(), &cxt()).expect(body) else {
            panic!("not an UPDATE")
        };
        assert!(u.treat_as_withdraw, "{body}");
    }
    let mut good = Update {
        attrs: vec![
            PathAttr::new(AttrValue::Origin(0)),
            PathAttr::new(AttrValue::AsPath(vec![])),
            PathAttr::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
        ],
        nlri: vec![v4("203.0.113.10/32")],
        ..Default::default()
    };
    let mut raw = BytesMut::new();
    Message::Update(good.clone()).encode(&mut raw, &cxt());
    // Corrupt ORIGIN's value (index: header 19 + 2 wlen + 2 alen + flags/type/len 3).
    raw[19 + 4 + 3] = 7;
    let Message::Update(u) = Message::decode(&mut raw.freeze(), &cxt()).unwrap() else {
        panic!("not an UPDATE")
    };
    assert!(u.treat_as_withdraw);
    assert_eq!(u.nlri, good.nlri);
    // Missing NEXT_HOP with IPv4 NLRI -> treat-as-withdraw too.
    good.attrs.pop();
    let Message::Update(u) =
        Message::decode(&mut Message::Update(good).to_bytes(&cxt()), &cxt()).unwrap()
    else {
        panic!("not an UPDATE")
    };
    assert!(u.treat_as_withdraw);
    // Communities of length 3 -> treat-as-withdraw, attribute dropped.
    let raw = hex(&format!(
        "{MARKER}0030020000001440010100400200400304c0000201c0080301020320cb00710a"
    ));
    let Message::Update(u) = Message::decode(&mut raw.clone(), &cxt()).unwrap() else {
        panic!("not an UPDATE")
    };
    assert!(u.treat_as_withdraw);
    assert_eq!(u.attr(attr_type::COMMUNITIES), None);
    assert_eq!(u.attrs.len(), 3);
}

#[test]
fn as_path_two_octet_uses_as_trans() {
    let u = Update {
        attrs: vec![PathAttr::new(AttrValue::AsPath(vec![AsSegment::sequence(
            vec![4_200_000_000, 65001],
        )]))],
        ..Default::default()
    };
    let two = Cxt::default();
    let b = Message::Update(u).to_bytes(&two);
    // 40 02 06 02 02 5ba0 fde9
    assert_eq!(&b[23..], &[0x40, 2, 6, 2, 2, 0x5b, 0xa0, 0xfd, 0xe9][..]);
    let Message::Update(back) = Message::decode(&mut b.clone(), &two).unwrap() else {
        panic!()
    };
    assert_eq!(
        back.attr(attr_type::AS_PATH),
        Some(&AttrValue::AsPath(vec![AsSegment::sequence(vec![
            23456, 65001
        ])]))
    );
}
