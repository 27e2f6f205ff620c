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
//! ```
//!
//! The tag is checked (in constant time) before anything else is parsed, so a datagram
//! without the key never reaches the SWIM state machine. There is no replay protection: a
//! captured datagram can be replayed while it is still meaningful to SWIM (incarnations make
//! old alive/suspect news stale, and a replayed leave only re-kills an identity that is
//! already gone). Pure functions, no I/O.

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
            (version, kind) => return Err(OpenError::Unknown { version, kind }),
        };
        Ok((kind, &body[2..]))
    }
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
