//! The membership datagram: a one-byte version, a one-byte kind, the payload, and an
//! HMAC-SHA256 tag over all of it with the cluster's shared key (from a Secret).
//!
//! ```text
//!  0       1       2                              n      n+32
//! +-------+-------+------------ ... -------------+--------------------+
//! | ver=1 | kind  | payload                      | HMAC-SHA256 tag    |
//! +-------+-------+------------ ... -------------+--------------------+
//!   kind 1: a foca SWIM message (postcard-encoded by foca)
//!   kind 2: a leave notice: one foca `Member` (Down) naming the leaving identity
//!   kind 3: a heartbeat to a ring monitor: the sender's [`Peer`]
//!   kind 4: a probe: nonce (u32), target [`Peer`], reply-to address; the target acks
//!           (kind 5) to the reply-to address, anyone else relays it to the target
//!   kind 5: a probe ack: nonce (u32), the acking [`Peer`]
//!   kind 6: a death notice: one foca `Member` (Down) naming an identity a ring monitor
//!           found silent and unreachable (directly and through relays)
//!
//! A Peer is: bump (u64, big endian), address family (4 or 6), IP (4 or 16 bytes), port
//! (u16). Kinds 3-6 came with the ring monitor; a speaker without it drops them as
//! unknown kinds (counted as malformed) and still takes part through kinds 1 and 2.
//! ```
//!
//! The tag is checked (in constant time) before anything else is parsed, so a datagram
//! without the key never reaches the SWIM state machine. There is no replay protection: a
//! captured datagram can be replayed while it is still meaningful to SWIM (incarnations make
//! old alive/suspect news stale, and a replayed leave only re-kills an identity that is
//! already gone). Pure functions, no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Wire version written and accepted.
pub const VERSION: u8 = 1;
/// Bytes added around a payload: version, kind, tag.
pub const OVERHEAD: usize = 2 + TAG_LEN;
const TAG_LEN: usize = 32;

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Swim = 1,
    Leave = 2,
    Heartbeat = 3,
    Probe = 4,
    ProbeAck = 5,
    Dead = 6,
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a header and tag, or the tag does not match the key: not from a member.
    Unauthenticated,
    /// Authenticated but of a version or kind this speaker does not know.
    Unknown { version: u8, kind: u8 },
}

/// The shared key, ready to tag and verify.
#[derive(Clone)]
pub struct Key {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(key: &[u8]) -> Self {
        Key {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length"),
        }
    }

    /// Frames `payload` as `kind` and appends the tag.
    pub fn seal(&self, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
        out.push(VERSION);
        out.push(kind as u8);
        out.extend_from_slice(payload);
        let mut mac = self.mac.clone();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Checks the tag and returns the kind and payload.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Result<(Kind, &'a [u8]), OpenError> {
        if datagram.len() < OVERHEAD {
            return Err(OpenError::Unauthenticated);
        }
        let (body, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag)
            .map_err(|_| OpenError::Unauthenticated)?;
        let kind = match (body[0], body[1]) {
            (VERSION, 1) => Kind::Swim,
            (VERSION, 2) => Kind::Leave,
            (VERSION, 3) => Kind::Heartbeat,
            (VERSION, 4) => Kind::Probe,
            (VERSION, 5) => Kind::ProbeAck,
            (VERSION, 6) => Kind::Dead,
            (version, kind) => return Err(OpenError::Unknown { version, kind }),
        };
        Ok((kind, &body[2..]))
    }
}

/// One life of a member as the ring monitor names it: its address and bump (the name is
/// not needed on the wire; foca's member list maps the pair to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub bump: u64,
}

impl Peer {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bump.to_be_bytes());
        match self.addr.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.addr.port().to_be_bytes());
    }

    /// Decodes a peer from the front of `buf` and returns the rest; `None` if short or bad.
    pub fn decode(buf: &[u8]) -> Option<(Peer, &[u8])> {
        let bump = u64::from_be_bytes(buf.get(..8)?.try_into().ok()?);
        let (ip, rest): (IpAddr, &[u8]) = match *buf.get(8)? {
            4 => {
                let o: [u8; 4] = buf.get(9..13)?.try_into().ok()?;
                (Ipv4Addr::from(o).into(), &buf[13..])
            }
            6 => {
                let o: [u8; 16] = buf.get(9..25)?.try_into().ok()?;
                (Ipv6Addr::from(o).into(), &buf[25..])
            }
            _ => return None,
        };
        let port = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
        Some((
            Peer {
                addr: SocketAddr::new(ip, port),
                bump,
            },
            &rest[2..],
        ))
    }
}

/// Kind 4: "answer me if you are `target`, relay me to it otherwise".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub nonce: u32,
    pub target: Peer,
    pub reply_to: SocketAddr,
}

impl Probe {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.nonce.to_be_bytes().to_vec();
        self.target.encode(&mut out);
        Peer {
            addr: self.reply_to,
            bump: 0,
        }
        .encode(&mut out);
        out
    }

    pub fn decode(buf: &[u8]) -> Option<Probe> {
        let nonce = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?);
        let (target, rest) = Peer::decode(&buf[4..])?;
        let (reply, rest) = Peer::decode(rest)?;
        rest.is_empty().then_some(Probe {
            nonce,
            target,
            reply_to: reply.addr,
        })
    }
}

/// Kind 5: the probed member's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeAck {
    pub nonce: u32,
    pub from: Peer,
}

impl ProbeAck {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.nonce.to_be_bytes().to_vec();
        self.from.encode(&mut out);
        out
    }

    pub fn decode(buf: &[u8]) -> Option<ProbeAck> {
        let nonce = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?);
        let (from, rest) = Peer::decode(&buf[4..])?;
        rest.is_empty().then_some(ProbeAck { nonce, from })
    }
}

/// Kind 3: the heartbeat payload is the sender's [`Peer`] alone.
pub fn decode_heartbeat(buf: &[u8]) -> Option<Peer> {
    let (peer, rest) = Peer::decode(buf)?;
    rest.is_empty().then_some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary bytes are never taken for an authenticated datagram, and never panic.
        #[test]
        fn random_bytes_are_unauthenticated(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(Key::new(&[3; 32]).open(&data), Err(OpenError::Unauthenticated));
        }
    }

    #[test]
    fn watch_payloads_have_the_documented_layout() {
        // Layout written out by hand from the module diagram, not by the encoder.
        let peer = Peer {
            addr: "192.0.2.7:7946".parse().unwrap(),
            bump: 0x0102_0304_0506_0708,
        };
        let mut hb = Vec::new();
        peer.encode(&mut hb);
        let expected = [1, 2, 3, 4, 5, 6, 7, 8, 4, 192, 0, 2, 7, 0x1f, 0x0a];
        assert_eq!(hb, expected);
        assert_eq!(decode_heartbeat(&expected), Some(peer));
        let probe = Probe {
            nonce: 9,
            target: peer,
            reply_to: "[2001:db8::1]:7".parse().unwrap(),
        };
        let bytes = probe.encode();
        assert_eq!(&bytes[..4], &[0, 0, 0, 9]);
        assert_eq!(&bytes[4..19], &expected);
        assert_eq!(&bytes[19..27], &[0; 8]);
        assert_eq!(bytes[27], 6);
        assert_eq!(&bytes[28..30], &[0x20, 0x01]);
        assert_eq!(&bytes[44..], &[0, 7]);
        assert_eq!(Probe::decode(&bytes), Some(probe));
        let ack = ProbeAck {
            nonce: 9,
            from: peer,
        };
        assert_eq!(ProbeAck::decode(&ack.encode()), Some(ack));
        for n in 0..bytes.len() {
            assert_eq!(Probe::decode(&bytes[..n]), None, "short probe {n}");
        }
        assert_eq!(decode_heartbeat(&[0; 9]), None);
        let mut bad_family = expected;
        bad_family[8] = 5;
        assert_eq!(decode_heartbeat(&bad_family), None);
    }

    #[test]
    fn sealed_datagram_matches_an_independent_hmac() {
        // Independent value: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"k"*32, bytes([1,1])+b"ping", hashlib.sha256).hexdigest())'
        let key = Key::new(&[b'k'; 32]);
        let d = key.seal(Kind::Swim, b"ping");
        assert_eq!(&d[..6], &[1, 1, b'p', b'i', b'n', b'g']);
        let tag: String = d[6..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(tag, PY_TAG);
        assert_eq!(key.open(&d), Ok((Kind::Swim, &b"ping"[..])));
    }
    const PY_TAG: &str = "eb08ce09fb5b60e28215fef5c292519f99cd7c28eed93d0a3e02578c222291c1";

    #[test]
    fn wrong_key_short_and_flipped_bits_are_unauthenticated() {
        let key = Key::new(b"0123456789abcdef0123456789abcdef");
        let other = Key::new(b"0123456789abcdef0123456789abcdeX");
        let d = key.seal(Kind::Leave, b"bye");
        assert_eq!(key.open(&d), Ok((Kind::Leave, &b"bye"[..])));
        assert_eq!(other.open(&d), Err(OpenError::Unauthenticated));
        assert_eq!(
            key.open(&d[..OVERHEAD - 1]),
            Err(OpenError::Unauthenticated)
        );
        assert_eq!(key.open(&[]), Err(OpenError::Unauthenticated));
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key.open(&bad),
                Err(OpenError::Unauthenticated),
                "bit flip at {i}"
            );
        }
    }

    #[test]
    fn unknown_version_or_kind_is_reported_after_authentication() {
        let key = Key::new(&[7; 32]);
        let mut d = key.seal(Kind::Swim, b"x");
        // Re-tag a datagram with kind 9 using the same key.
        d.truncate(3);
        d[1] = 9;
        let mut mac = key.mac.clone();
        mac.update(&d);
        d.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(
            key.open(&d),
            Err(OpenError::Unknown {
                version: 1,
                kind: 9
            })
        );
    }
}
