//! Property tests: decoders never panic on arbitrary bytes, and generated valid messages
//! survive encode -> decode unchanged. Case counts are kept small for the suite's run time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use ferrolb_bgp::packet::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

fn cxt(four: bool) -> Cxt {
    Cxt {
        four_byte_asn: four,
        max_len: MAX_LEN,
    }
}

/// A valid header of `kind` around `body` (length field consistent).
fn framed(kind: u8, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(&[0xff; 16]);
    b.put_u16((19 + body.len()) as u16);
    b.put_u8(kind);
    b.put_slice(body);
    b.freeze()
}

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn as_path(four: bool) -> impl Strategy<Value = Vec<AsSegment>> {
    let asn = if four {
        any::<u32>().boxed()
    } else {
        any::<u16>().prop_map(u32::from).boxed()
    };
    prop::collection::vec(
        (1u8..=2, prop::collection::vec(asn, 1..5))
            .prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..3,
    )
}

fn update(four: bool) -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(v4net(), 0..20),
        prop::collection::vec(v4net(), 1..20),
        0u8..=2,
        as_path(four),
        any::<u32>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(any::<(u32, u32, u32)>(), 0..3),
        prop::option::of((any::<u128>(), prop::collection::vec(v6net(), 1..10))),
    )
        .prop_map(
            |(withdrawn, nlri, origin, path, nh, med, lp, comms, large, mp)| {
                let mut attrs = vec![
                    PathAttr::new(AttrValue::Origin(origin)),
                    PathAttr::new(AttrValue::AsPath(path)),
                    PathAttr::new(AttrValue::NextHop(Ipv4Addr::from(nh))),
                ];
                if let Some(m) = med {
                    attrs.push(PathAttr::new(AttrValue::Med(m)));
                }
                if let Some(l) = lp {
                    attrs.push(PathAttr::new(AttrValue::LocalPref(l)));
                }
                if !comms.is_empty() {
                    attrs.push(PathAttr::new(AttrValue::Communities(comms)));
                }
                if !large.is_empty() {
                    attrs.push(PathAttr::new(AttrValue::LargeCommunities(
                        large
                            .into_iter()
                            .map(|(a, b, c)| LargeCommunity(a, b, c))
                            .collect(),
                    )));
                }
                if let Some((nh6, nets)) = mp {
                    attrs.push(PathAttr::new(AttrValue::MpReach(MpReach {
                        family: Family::Ipv6Unicast,
                        next_hops: vec![IpAddr::V6(Ipv6Addr::from(nh6))],
                        nlri: nets.into_iter().map(IpNet::V6).collect(),
                    })));
                }
                Update {
                    withdrawn,
                    attrs,
                    nlri,
                    treat_as_withdraw: false,
                }
            },
        )
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Capability::MultiProtocol { afi, safi }),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAsn),
        (
            0u8..16,
            0u16..4096,
            prop::collection::vec(any::<(u16, u8, u8)>(), 0..3)
        )
            .prop_map(|(f, t, fams)| Capability::GracefulRestart {
                flags: f << 4,
                restart_time: t,
                families: fams
                    .into_iter()
                    .map(|(afi, safi, flags)| GrFamily { afi, safi, flags })
                    .collect(),
            }),
        (100u8..=127, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(code, v)| {
            Capability::Unknown {
                code,
                value: Bytes::from(v),
            }
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        update(true).prop_map(Message::Update),
        (
            any::<u32>(),
            prop_oneof![Just(0u16), 3u16..],
            1u32..,
            prop::collection::vec(capability(), 0..6)
        )
            .prop_map(|(asn, hold, id, caps)| Message::Open(Open::new(
                asn,
                hold,
                Ipv4Addr::from(id),
                caps
            ))),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, subcode, d)| Message::Notification(Notification {
                code,
                subcode,
                data: Bytes::from(d)
            })),
        any::<(u16, u8, u8)>().prop_map(|(afi, subtype, safi)| Message::RouteRefresh(
            RouteRefresh { afi, subtype, safi }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(v in prop::collection::vec(any::<u8>(), 0..600), four in any::<bool>()) {
        let c = cxt(four);
        let _ = frame_len(&v, &c);
        let _ = Message::decode(&mut Bytes::from(v.clone()), &c);
        // Past the header checks, into each body decoder.
        for kind in 1..=5 {
            let _ = Message::decode(&mut framed(kind, &v), &c);
        }
    }

    #[test]
    fn update_bodies_with_valid_lengths_never_panic(
        w in prop::collection::vec(any::<u8>(), 0..40),
        a in prop::collection::vec(any::<u8>(), 0..200),
        n in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut body = BytesMut::new();
        body.put_u16(w.len() as u16);
        body.put_slice(&w);
        body.put_u16(a.len() as u16);
        body.put_slice(&a);
        body.put_slice(&n);
        let _ = Message::decode(&mut framed(2, &body), &cxt(true));
        let _ = Message::decode(&mut framed(2, &body), &cxt(false));
    }

    #[test]
    fn valid_messages_round_trip(m in message()) {
        let c = cxt(true);
        let b = m.to_bytes(&c);
        prop_assume!(b.len() <= MAX_LEN);
        prop_assert_eq!(frame_len(&b, &c), Ok(Some(b.len())));
        let back = Message::decode(&mut b.clone(), &c).expect("valid message must decode");
        prop_assert_eq!(back, m);
    }

    #[test]
    fn two_octet_as_path_round_trips(u in update(false)) {
        let c = cxt(false);
        let b = Message::Update(u.clone()).to_bytes(&c);
        prop_assume!(b.len() <= MAX_LEN);
        prop_assert_eq!(Message::decode(&mut b.clone(), &c).unwrap(), Message::Update(u));
    }
}
