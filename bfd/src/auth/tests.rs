use super::*;
use crate::packet::{DecodeCxt, State};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Three consecutive Control packets sent by BIRD 2.0.12 (`protocol bfd`, interface option
/// `authentication meticulous keyed sha1; password "ferrolb-vector" { id 7; };`), captured
/// with `tcpdump -xx` in a namespace (UDP payloads). State Down, sequence numbers f70be62c,
/// +1, +2; the hashes were also checked with Python's hashlib.
const BIRD_METICULOUS: [&str; 3] = [
    "20440334 df7c469e 00000000 000f4240 000186a0 00000000
     051c0700 f70be62c fc98ea1f d2071afe a2f8aeae 548a0b1f b6a998b2",
    "20440334 df7c469e 00000000 000f4240 000186a0 00000000
     051c0700 f70be62d 4991252b 74b4413e d14599ec b87ce38e 4308ac39",
    "20440334 df7c469e 00000000 000f4240 000186a0 00000000
     051c0700 f70be62e 4fac240d 5b73e738 a3c29c5e be8128a9 4f591fb0",
];
const BIRD_KEY: &[u8] = b"ferrolb-vector";

/// The same capture with `authentication keyed sha1; password "ferrolb-keyed" { id 42; };`
/// (Auth Type 4, key ID 0x2a). BIRD advances the sequence number on every packet in keyed
/// mode too (f7e6e50a, +1, +2); hashes also checked with hashlib.
const BIRD_KEYED: [&str; 3] = [
    "20440334 05909f95 00000000 000f4240 000186a0 00000000
     041c2a00 f7e6e50a b06369b7 14ea0eee 31140d48 d0806d8e 5767db9d",
    "20440334 05909f95 00000000 000f4240 000186a0 00000000
     041c2a00 f7e6e50b e1cb24d4 3cfde9bb 299e724b 0b6f3fef 42792b36",
    "20440334 05909f95 00000000 000f4240 000186a0 00000000
     041c2a00 f7e6e50c 650c4196 2144f253 c149aaf1 2034c9c2 5b000422",
];

fn cfg(method: AuthMethod, key_id: u8, key: &[u8]) -> BfdAuth {
    BfdAuth {
        method,
        key_id,
        key: AuthKey::new(key).unwrap(),
    }
}

fn bird() -> BfdAuth {
    cfg(AuthMethod::MeticulousKeyedSha1, 7, BIRD_KEY)
}

fn decode(raw: &[u8]) -> ControlPacket {
    ControlPacket::decode(raw, &DecodeCxt { auth_in_use: None }).unwrap()
}

fn bird_pkt(i: usize) -> ControlPacket {
    decode(&hex(BIRD_METICULOUS[i]))
}

#[test]
fn bird_packets_verify_and_our_signature_is_byte_identical() {
    let mut rx = RxSeq::default();
    for (i, raw) in BIRD_METICULOUS.iter().enumerate() {
        let raw = hex(raw);
        let pkt = decode(&raw);
        assert_eq!(pkt.state, State::Down);
        assert_eq!(check(Some(&bird()), &mut rx, &pkt), Ok(()), "packet {i}");
        let seq = 0xf70b_e62c + u32::try_from(i).unwrap();
        assert_eq!(rx, RxSeq(Some(seq)));
        // Signing the same contents with the same key and sequence gives BIRD's bytes.
        let mut ours = pkt.clone();
        ours.auth = None;
        sign(&mut ours, &bird(), seq);
        assert_eq!(ours.to_bytes().as_ref(), &raw[..], "packet {i}");
    }
}

#[test]
fn bird_keyed_sha1_packets_verify_and_resign_identically() {
    let keyed = cfg(AuthMethod::KeyedSha1, 42, b"ferrolb-keyed");
    let mut rx = RxSeq::default();
    for (i, raw) in BIRD_KEYED.iter().enumerate() {
        let raw = hex(raw);
        let pkt = decode(&raw);
        assert_eq!(check(Some(&keyed), &mut rx, &pkt), Ok(()), "packet {i}");
        // Keyed SHA1 accepts the same sequence number again (no replay protection).
        assert_eq!(
            check(Some(&keyed), &mut rx, &pkt),
            Ok(()),
            "packet {i} again"
        );
        let seq = 0xf7e6_e50a + u32::try_from(i).unwrap();
        let mut ours = pkt.clone();
        ours.auth = None;
        sign(&mut ours, &keyed, seq);
        assert_eq!(ours.to_bytes().as_ref(), &raw[..], "packet {i}");
    }
    // A meticulous session takes none of them: another Auth Type.
    let pkt = decode(&hex(BIRD_KEYED[0]));
    let meticulous = cfg(AuthMethod::MeticulousKeyedSha1, 42, b"ferrolb-keyed");
    assert_eq!(
        check(Some(&meticulous), &mut RxSeq::default(), &pkt).map_err(|e| e.reason()),
        Err(DropReason::AuthTypeMismatch)
    );
}

#[test]
fn meticulous_replay_and_old_packets_are_dropped() {
    let mut rx = RxSeq::default();
    for i in 0..3 {
        check(Some(&bird()), &mut rx, &bird_pkt(i)).unwrap();
    }
    let (last, old) = (0xf70b_e62e, 0xf70b_e62d);
    assert_eq!(
        check(Some(&bird()), &mut rx, &bird_pkt(2)),
        Err(AuthFailure::Replayed { seq: last, last })
    );
    assert_eq!(
        check(Some(&bird()), &mut rx, &bird_pkt(1)),
        Err(AuthFailure::Replayed { seq: old, last })
    );
    assert_eq!(rx, RxSeq(Some(last)), "a dropped packet changes nothing");
    // Before any packet is known, any sequence number is accepted (bfd.AuthSeqKnown = 0).
    let mut fresh = RxSeq::default();
    assert_eq!(check(Some(&bird()), &mut fresh, &bird_pkt(1)), Ok(()));
}

#[test]
fn wrong_key_key_id_type_and_auth_presence_are_named() {
    let pkt = bird_pkt(0);
    let mut rx = RxSeq::default();
    let wrong_key = cfg(AuthMethod::MeticulousKeyedSha1, 7, b"ferrolb-vectoR");
    assert_eq!(
        check(Some(&wrong_key), &mut rx, &pkt),
        Err(AuthFailure::BadHash { key_id: 7 })
    );
    let wrong_id = cfg(AuthMethod::MeticulousKeyedSha1, 1, BIRD_KEY);
    let e = check(Some(&wrong_id), &mut rx, &pkt).unwrap_err();
    assert_eq!(
        e,
        AuthFailure::WrongKeyId {
            got: 7,
            expected: 1
        }
    );
    assert_eq!(e.to_string(), "wrong key id 7 (expected 1)");
    assert_eq!(e.reason(), DropReason::AuthKeyIdMismatch);
    let keyed = cfg(AuthMethod::KeyedSha1, 7, BIRD_KEY);
    assert_eq!(
        check(Some(&keyed), &mut rx, &pkt),
        Err(AuthFailure::WrongType {
            got: AuthType::MeticulousKeyedSha1,
            expected: AuthMethod::KeyedSha1
        })
    );
    assert_eq!(
        check(None, &mut rx, &pkt).map_err(|e| e.reason()),
        Err(DropReason::AuthNotInUse)
    );
    let mut plain = pkt.clone();
    plain.auth = None;
    assert_eq!(
        check(Some(&bird()), &mut rx, &plain),
        Err(AuthFailure::Missing {
            expected: AuthMethod::MeticulousKeyedSha1
        })
    );
    assert_eq!(check(None, &mut rx, &plain), Ok(()));
    assert_eq!(rx, RxSeq(None), "no failure may set the sequence");
    // A flipped bit in the signed contents fails the hash too.
    let mut raw = hex(BIRD_METICULOUS[0]);
    raw[2] = 4;
    assert_eq!(
        check(Some(&bird()), &mut rx, &decode(&raw)),
        Err(AuthFailure::BadHash { key_id: 7 })
    );
}

/// A packet signed by `auth` with `seq`, Detect Mult 3 (window 9).
fn signed(auth: &BfdAuth, seq: u32) -> ControlPacket {
    let mut p = ControlPacket::for_test(State::Up, 1, 2, 300_000, 0);
    sign(&mut p, auth, seq);
    p
}

#[test]
fn sequence_window_per_rfc_5880_6_7_4() {
    for method in [AuthMethod::KeyedSha1, AuthMethod::MeticulousKeyedSha1] {
        let a = cfg(method, 1, b"k");
        let start = 1000;
        let at = |seq| {
            let mut rx = RxSeq(Some(start));
            check(Some(&a), &mut rx, &signed(&a, seq)).map(|()| rx)
        };
        // Keyed accepts the same number again, Meticulous does not.
        if method.meticulous() {
            assert_eq!(
                at(start),
                Err(AuthFailure::Replayed {
                    seq: start,
                    last: start
                })
            );
        } else {
            assert_eq!(at(start), Ok(RxSeq(Some(start))));
        }
        assert_eq!(at(start + 1), Ok(RxSeq(Some(start + 1))));
        assert_eq!(at(start + 9), Ok(RxSeq(Some(start + 9))), "3 x Detect Mult");
        assert_eq!(
            at(start + 10),
            Err(AuthFailure::OutOfWindow {
                seq: start + 10,
                last: start,
                window: 9
            })
        );
        assert_eq!(
            at(start - 1),
            Err(AuthFailure::Replayed {
                seq: start - 1,
                last: start
            })
        );
    }
}

#[test]
fn sequence_window_wraps_around() {
    let a = cfg(AuthMethod::MeticulousKeyedSha1, 1, b"k");
    let mut rx = RxSeq(Some(u32::MAX - 1));
    assert_eq!(check(Some(&a), &mut rx, &signed(&a, u32::MAX)), Ok(()));
    assert_eq!(
        check(Some(&a), &mut rx, &signed(&a, 3)),
        Ok(()),
        "wrapped, 4 ahead"
    );
    assert_eq!(rx, RxSeq(Some(3)));
    assert_eq!(
        check(Some(&a), &mut rx, &signed(&a, u32::MAX)),
        Err(AuthFailure::Replayed {
            seq: u32::MAX,
            last: 3
        })
    );
}

#[test]
fn transmit_sequence_meticulous_every_packet_keyed_on_change_and_wraps() {
    let seq = |p: &ControlPacket| sequence(p.auth.as_ref().unwrap());
    let m = cfg(AuthMethod::MeticulousKeyedSha1, 1, b"k");
    let mut tx = TxSeq::new(u32::MAX);
    let base = ControlPacket::for_test(State::Down, 1, 0, 1_000_000, 0);
    let sent: Vec<u32> = (0..3)
        .map(|_| {
            let mut p = base.clone();
            tx.sign(&mut p, &m);
            seq(&p)
        })
        .collect();
    assert_eq!(sent, [u32::MAX, 0, 1]);

    let k = cfg(AuthMethod::KeyedSha1, 1, b"k");
    let mut tx = TxSeq::new(50);
    let mut up = base.clone();
    up.state = State::Up;
    let sent: Vec<u32> = [&base, &base, &up, &up, &base]
        .into_iter()
        .map(|p| {
            let mut p = p.clone();
            tx.sign(&mut p, &k);
            seq(&p)
        })
        .collect();
    assert_eq!(sent, [50, 50, 51, 51, 52]);
}

#[test]
fn keys_are_1_to_20_bytes_and_never_printed() {
    assert!(AuthKey::new(b"").is_err());
    assert!(AuthKey::new(&[b'x'; 21]).is_err());
    let k = AuthKey::new(&[b'x'; 20]).unwrap();
    assert_eq!(format!("{k:?}"), "AuthKey(<20 bytes>)");
    let a = cfg(AuthMethod::KeyedSha1, 3, b"hunter2");
    assert!(!format!("{a:?}").contains("hunter2"));
}
