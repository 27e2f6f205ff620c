//! BFD authentication (RFC 5880 §6.7): Keyed SHA1 and Meticulous Keyed SHA1 (§6.7.4), pure.
//!
//! - [`sign`] fills a packet's authentication section (RFC 5880 §4.4) and its hash;
//! - [`check`] applies the receive rules of §6.7.4 in the RFC's order (A bit, type, key ID,
//!   sequence window, hash) against the session's [`RxSeq`] (bfd.AuthSeqKnown /
//!   bfd.RcvAuthSeq) and says why a packet fails ([`AuthFailure`]);
//! - [`TxSeq`] is bfd.XmitAuthSeq: Meticulous advances it on every packet, Keyed when the
//!   packet's contents change (§6.7.4 "MAY be incremented").
//!
//! The other types (simple password, keyed MD5) are not implemented: the RFC marks MD5 as
//! weaker and neither MetalLB nor FRR 8.4 offers them; BIRD 2 offers SHA1 too.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Auth Len    |  Auth Key ID  |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Auth Key/Hash...                        |
//! |                              ...                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

use crate::BfdError;
use crate::packet::{Auth, AuthType, ControlPacket, DropReason};

#[cfg(test)]
mod tests;

/// Auth Len of the SHA1 types (RFC 5880 §4.4).
pub const SHA1_AUTH_LEN: usize = 28;
/// Length of the Auth Key/Hash field, and the longest key.
pub const SHA1_HASH_LEN: usize = 20;

/// The authentication types ferrolb implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Keyed SHA1 (Auth Type 4): the sequence number may stay the same between packets.
    KeyedSha1,
    /// Meticulous Keyed SHA1 (Auth Type 5): the sequence number grows on every packet.
    MeticulousKeyedSha1,
}

impl AuthMethod {
    pub fn auth_type(self) -> AuthType {
        match self {
            AuthMethod::KeyedSha1 => AuthType::KeyedSha1,
            AuthMethod::MeticulousKeyedSha1 => AuthType::MeticulousKeyedSha1,
        }
    }

    pub fn meticulous(self) -> bool {
        self == AuthMethod::MeticulousKeyedSha1
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::KeyedSha1 => "keyed SHA1",
            AuthMethod::MeticulousKeyedSha1 => "meticulous keyed SHA1",
        })
    }
}

/// A shared secret of 1 to 20 bytes (RFC 5880 §4.4: the key is zero-padded to 20 bytes; a
/// longer one does not fit, and is refused rather than cut). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    pub fn new(key: &[u8]) -> Result<AuthKey, BfdError> {
        if key.is_empty() || key.len() > SHA1_HASH_LEN {
            return Err(BfdError::InvalidProfile {
                field: "authentication.key",
                reason: format!(
                    "the key is {} bytes long; SHA1 keys are 1 to {SHA1_HASH_LEN} bytes",
                    key.len()
                ),
            });
        }
        Ok(AuthKey(key.to_vec()))
    }

    /// The key as it sits in the Auth Key/Hash field: zero-padded to 20 bytes.
    fn padded(&self) -> [u8; SHA1_HASH_LEN] {
        let mut k = [0u8; SHA1_HASH_LEN];
        k[..self.0.len()].copy_from_slice(&self.0);
        k
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey(<{} bytes>)", self.0.len())
    }
}

/// A session's authentication settings: the method, the key ID we send and accept, the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdAuth {
    pub method: AuthMethod,
    pub key_id: u8,
    pub key: AuthKey,
}

/// Why a received packet failed authentication; each maps to one [`DropReason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The A bit is set and the session uses no authentication.
    Unexpected { got: AuthType },
    /// The A bit is clear and the session uses authentication.
    Missing { expected: AuthMethod },
    /// Another Auth Type than the session's.
    WrongType { got: AuthType, expected: AuthMethod },
    /// Another Auth Key ID than the session's.
    WrongKeyId { got: u8, expected: u8 },
    /// The hash does not match: another key (or a corrupted packet).
    BadHash { key_id: u8 },
    /// A sequence number at or behind the last accepted one (Meticulous: equal is a replay).
    Replayed { seq: u32, last: u32 },
    /// A sequence number more than 3 x Detect Mult ahead of the last accepted one.
    OutOfWindow { seq: u32, last: u32, window: u32 },
}

impl AuthFailure {
    pub fn reason(&self) -> DropReason {
        match self {
            AuthFailure::Unexpected { .. } => DropReason::AuthNotInUse,
            AuthFailure::Missing { .. } => DropReason::AuthMissing,
            AuthFailure::WrongType { .. } => DropReason::AuthTypeMismatch,
            AuthFailure::WrongKeyId { .. } => DropReason::AuthKeyIdMismatch,
            AuthFailure::BadHash { .. } => DropReason::AuthBadHash,
            AuthFailure::Replayed { .. } => DropReason::AuthSeqReplayed,
            AuthFailure::OutOfWindow { .. } => DropReason::AuthSeqOutOfWindow,
        }
    }
}

fn type_name(t: AuthType) -> &'static str {
    match t {
        AuthType::SimplePassword => "simple password",
        AuthType::KeyedMd5 => "keyed MD5",
        AuthType::MeticulousKeyedMd5 => "meticulous keyed MD5",
        AuthType::KeyedSha1 => "keyed SHA1",
        AuthType::MeticulousKeyedSha1 => "meticulous keyed SHA1",
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Unexpected { got } => write!(
                f,
                "packet carries {} authentication but none is configured",
                type_name(*got)
            ),
            AuthFailure::Missing { expected } => {
                write!(f, "packet without authentication ({expected} expected)")
            }
            AuthFailure::WrongType { got, expected } => write!(
                f,
                "wrong authentication type {} ({expected} expected)",
                type_name(*got)
            ),
            AuthFailure::WrongKeyId { got, expected } => {
                write!(f, "wrong key id {got} (expected {expected})")
            }
            AuthFailure::BadHash { key_id } => {
                write!(f, "hash mismatch with key id {key_id} (wrong key)")
            }
            AuthFailure::Replayed { seq, last } => write!(
                f,
                "sequence number {seq} replayed or old (last accepted {last})"
            ),
            AuthFailure::OutOfWindow { seq, last, window } => write!(
                f,
                "sequence number {seq} out of window (last accepted {last}, window {window})"
            ),
        }
    }
}

/// bfd.XmitAuthSeq, and the last packet sent (for Keyed SHA1's "advance on change").
#[derive(Clone, Debug)]
pub struct TxSeq {
    next: u32,
    last: Option<ControlPacket>,
}

impl TxSeq {
    /// RFC 5880 §6.8.1: bfd.XmitAuthSeq starts at a random value.
    pub fn new(initial: u32) -> TxSeq {
        TxSeq {
            next: initial,
            last: None,
        }
    }

    /// Signs `pkt` (its `auth` is replaced) with the sequence number the method calls for.
    pub fn sign(&mut self, pkt: &mut ControlPacket, auth: &BfdAuth) {
        pkt.auth = None;
        let seq = if auth.method.meticulous() {
            let s = self.next;
            self.next = s.wrapping_add(1);
            s
        } else {
            if self.last.as_ref().is_some_and(|l| l != pkt) {
                self.next = self.next.wrapping_add(1);
            }
            self.last = Some(pkt.clone());
            self.next
        };
        sign(pkt, auth, seq);
    }
}

/// bfd.AuthSeqKnown / bfd.RcvAuthSeq: `None` until a packet is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxSeq(pub Option<u32>);

/// Fills `pkt.auth` for `auth` with sequence number `seq` and the SHA1 hash (RFC 5880 §6.7.4:
/// the hash is taken over the whole packet with the zero-padded key in the hash field).
pub fn sign(pkt: &mut ControlPacket, auth: &BfdAuth, seq: u32) {
    pkt.auth = Some(section(
        auth.method.auth_type(),
        auth.key_id,
        seq,
        &auth.key,
    ));
    let hash = digest(pkt);
    if let Some(a) = pkt.auth.as_mut() {
        a.data = section_data(seq, &hash);
    }
}

fn section_data(seq: u32, field: &[u8; SHA1_HASH_LEN]) -> Bytes {
    let mut d = BytesMut::with_capacity(SHA1_AUTH_LEN - 3);
    d.put_u8(0); // Reserved
    d.put_u32(seq);
    d.put_slice(field);
    d.freeze()
}

fn section(auth_type: AuthType, key_id: u8, seq: u32, key: &AuthKey) -> Auth {
    Auth {
        auth_type,
        key_id,
        data: section_data(seq, &key.padded()),
    }
}

/// SHA1 over the packet as encoded.
fn digest(pkt: &ControlPacket) -> [u8; SHA1_HASH_LEN] {
    Sha1::digest(pkt.to_bytes()).into()
}

/// The Sequence Number of a SHA1 section (the codec checked Auth Len = 28).
fn sequence(a: &Auth) -> u32 {
    match a.data.get(1..5) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// RFC 5880 §6.7.4, reception: the packet's authentication against the session's settings
/// and receive sequence state, which is updated when the packet passes.
pub fn check(
    auth: Option<&BfdAuth>,
    rx: &mut RxSeq,
    pkt: &ControlPacket,
) -> Result<(), AuthFailure> {
    let (cfg, got) = match (auth, &pkt.auth) {
        (None, None) => return Ok(()),
        (None, Some(a)) => return Err(AuthFailure::Unexpected { got: a.auth_type }),
        (Some(cfg), None) => {
            return Err(AuthFailure::Missing {
                expected: cfg.method,
            });
        }
        (Some(cfg), Some(a)) => (cfg, a),
    };
    if got.auth_type != cfg.method.auth_type() {
        return Err(AuthFailure::WrongType {
            got: got.auth_type,
            expected: cfg.method,
        });
    }
    if got.key_id != cfg.key_id {
        return Err(AuthFailure::WrongKeyId {
            got: got.key_id,
            expected: cfg.key_id,
        });
    }
    let seq = sequence(got);
    if let Some(last) = rx.0 {
        check_window(seq, last, pkt.detect_mult, cfg.method.meticulous())?;
    }
    let mut keyed = pkt.clone();
    keyed.auth = Some(section(got.auth_type, got.key_id, seq, &cfg.key));
    if got.data.get(5..) != Some(&digest(&keyed)[..]) {
        return Err(AuthFailure::BadHash { key_id: got.key_id });
    }
    rx.0 = Some(seq);
    Ok(())
}

/// The sequence window (circular u32): Keyed `last ..= last + 3 x Detect Mult`, Meticulous
/// `last + 1 ..= last + 3 x Detect Mult`. Detect Mult is the packet's (the sender's).
fn check_window(seq: u32, last: u32, detect_mult: u8, meticulous: bool) -> Result<(), AuthFailure> {
    let window = 3 * u32::from(detect_mult);
    let ahead = seq.wrapping_sub(last);
    let low = u32::from(meticulous);
    if (low..=window).contains(&ahead) {
        return Ok(());
    }
    if ahead == 0 || ahead > u32::MAX / 2 {
        Err(AuthFailure::Replayed { seq, last })
    } else {
        Err(AuthFailure::OutOfWindow { seq, last, window })
    }
}
