//! BFD Control packet codec (RFC 5880 §4), pure: no sockets, no clock, no logging.
//!
//! [`ControlPacket::decode`] applies every stateless reception check of RFC 5880 §6.8.6 and
//! returns a named [`DropReason`] for a packet that must be discarded; the checks that need a
//! session (discriminator lookup, authentication in use, AdminDown) are made by the session
//! and the driver with the same [`DropReason`] type, so one counter set covers them all.

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

/// The only BFD version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;
/// Length of the mandatory section of a Control packet.
pub const HEADER_LEN: usize = 24;
/// UDP destination port of single-hop BFD Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// UDP destination port of multihop Control packets (RFC 5883 §4).
pub const MULTIHOP_PORT: u16 = 4784;
/// Source ports must be in this range (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// TTL / hop limit sent and required on receive for single-hop sessions (RFC 5881 §5).
pub const SINGLE_HOP_TTL: u8 = 255;

/// Session state as carried in the `Sta` field (RFC 5880 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(v: u8) -> State {
        match v & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code (RFC 5880 §4.1, 5 bits). Reserved values 9..=31 are kept as `Reserved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    Reserved(u8),
}

impl Diag {
    pub fn from_u8(v: u8) -> Diag {
        match v & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            n => Diag::Reserved(n),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(n) => n & 0x1f,
        }
    }
}

/// Authentication type (RFC 5880 §4.1). Reserved types are rejected by the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    SimplePassword = 1,
    KeyedMd5 = 2,
    MeticulousKeyedMd5 = 3,
    KeyedSha1 = 4,
    MeticulousKeyedSha1 = 5,
}

/// Optional authentication section (RFC 5880 §4.2 - §4.4): only its structure is checked.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Auth Len    |  Auth Key ID  |  type-specific ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub auth_type: AuthType,
    pub key_id: u8,
    /// Everything after the key ID: the password (type 1) or reserved byte, sequence number
    /// and digest/hash (types 2-5).
    pub data: Bytes,
}

impl Auth {
    fn wire_len(&self) -> usize {
        3 + self.data.len()
    }
}

/// Why a received packet was discarded. Produced by the codec (stateless checks), the session
/// (authentication, discriminator, AdminDown) and the driver (TTL, unknown session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Fewer than 24 bytes, or fewer than the Length field says (RFC 5880 §6.8.6).
    Short,
    /// Version field is not 1.
    BadVersion,
    /// Length field below 24, or below 26 with the A bit set.
    BadLength,
    /// Detect Mult is zero.
    ZeroDetectMult,
    /// Multipoint (M) bit set.
    Multipoint,
    /// My Discriminator is zero.
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while State is neither Down nor AdminDown.
    ZeroYourDiscriminator,
    /// Authentication section malformed (length mismatch, reserved type).
    BadAuthSection,
    /// A bit set and no authentication in use on the session.
    AuthNotInUse,
    /// A bit clear and authentication in use on the session.
    AuthMissing,
    /// Auth Type is not the session's (RFC 5880 §6.7.4).
    AuthTypeMismatch,
    /// Auth Key ID is not the session's.
    AuthKeyIdMismatch,
    /// The SHA1 hash does not match: another key, or a corrupted packet.
    AuthBadHash,
    /// Sequence number at or behind the last accepted one (a replay).
    AuthSeqReplayed,
    /// Sequence number more than 3 x Detect Mult ahead of the last accepted one.
    AuthSeqOutOfWindow,
    /// Your Discriminator names no session, or the session selected by source address.
    NoSession,
    /// Your Discriminator matches a session whose peer is not the packet's source.
    SourceMismatch,
    /// The session is AdminDown locally (RFC 5880 §6.8.6: discard).
    SessionAdminDown,
    /// Received TTL / hop limit is not 255 (GTSM, RFC 5881 §5).
    TtlNot255,
    /// A multihop packet arrived with a TTL / hop limit below the session's `minimumTtl`, or
    /// without one (RFC 5883 sets no TTL rule; the minimum is MetalLB's / FRR's setting).
    TtlBelowMinimum,
    /// A multihop packet was not addressed to the session's local address (RFC 5883 §3:
    /// multihop sessions are selected by source and destination).
    DestinationMismatch,
    /// A packet on the single-hop port for a multihop session, or the other way round.
    HopModeMismatch,
}

impl DropReason {
    /// Every reason, for counters and metrics.
    pub const ALL: [DropReason; 22] = [
        DropReason::Short,
        DropReason::BadVersion,
        DropReason::BadLength,
        DropReason::ZeroDetectMult,
        DropReason::Multipoint,
        DropReason::ZeroMyDiscriminator,
        DropReason::ZeroYourDiscriminator,
        DropReason::BadAuthSection,
        DropReason::AuthNotInUse,
        DropReason::AuthMissing,
        DropReason::AuthTypeMismatch,
        DropReason::AuthKeyIdMismatch,
        DropReason::AuthBadHash,
        DropReason::AuthSeqReplayed,
        DropReason::AuthSeqOutOfWindow,
        DropReason::NoSession,
        DropReason::SourceMismatch,
        DropReason::SessionAdminDown,
        DropReason::TtlNot255,
        DropReason::TtlBelowMinimum,
        DropReason::DestinationMismatch,
        DropReason::HopModeMismatch,
    ];

    /// A stable snake_case label, for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Short => "short",
            DropReason::BadVersion => "bad_version",
            DropReason::BadLength => "bad_length",
            DropReason::ZeroDetectMult => "zero_detect_mult",
            DropReason::Multipoint => "multipoint",
            DropReason::ZeroMyDiscriminator => "zero_my_discriminator",
            DropReason::ZeroYourDiscriminator => "zero_your_discriminator",
            DropReason::BadAuthSection => "bad_auth_section",
            DropReason::AuthNotInUse => "auth_not_in_use",
            DropReason::AuthMissing => "auth_missing",
            DropReason::AuthTypeMismatch => "auth_type_mismatch",
            DropReason::AuthKeyIdMismatch => "auth_key_id_mismatch",
            DropReason::AuthBadHash => "auth_bad_hash",
            DropReason::AuthSeqReplayed => "auth_seq_replayed",
            DropReason::AuthSeqOutOfWindow => "auth_seq_out_of_window",
            DropReason::NoSession => "no_session",
            DropReason::SourceMismatch => "source_mismatch",
            DropReason::SessionAdminDown => "session_admin_down",
            DropReason::TtlNot255 => "ttl_not_255",
            DropReason::TtlBelowMinimum => "ttl_below_minimum",
            DropReason::DestinationMismatch => "destination_mismatch",
            DropReason::HopModeMismatch => "hop_mode_mismatch",
        }
    }

    /// True for the reasons of a failed authentication check (RFC 5880 §6.7), counted per
    /// peer as authentication failures.
    pub fn is_auth(self) -> bool {
        matches!(
            self,
            DropReason::AuthNotInUse
                | DropReason::AuthMissing
                | DropReason::AuthTypeMismatch
                | DropReason::AuthKeyIdMismatch
                | DropReason::AuthBadHash
                | DropReason::AuthSeqReplayed
                | DropReason::AuthSeqOutOfWindow
        )
    }

    /// Position in [`DropReason::ALL`].
    pub fn index(self) -> usize {
        DropReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the decoder needs to know about the receiving side.
#[derive(Clone, Copy, Debug)]
pub struct DecodeCxt {
    /// `Some(true)` when the session uses authentication (bfd.AuthType != 0), `Some(false)`
    /// when it does not (the default): a packet whose A bit disagrees is discarded as
    /// [`DropReason::AuthNotInUse`] / [`DropReason::AuthMissing`]. `None` when the session is
    /// not known yet: only the section's structure is checked, and the session applies
    /// RFC 5880 §6.7 itself (the machine decodes before it selects the session).
    pub auth_in_use: Option<bool>,
}

impl Default for DecodeCxt {
    fn default() -> Self {
        DecodeCxt {
            auth_in_use: Some(false),
        }
    }
}

/// A BFD Control packet (RFC 5880 §4.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       My Discriminator                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Your Discriminator                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Desired Min TX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   Required Min RX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Required Min Echo RX Interval                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           An optional Authentication Section follows          |
/// ```
///
/// Intervals are in microseconds on the wire and kept as such here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
    pub auth: Option<Auth>,
}

const FLAG_P: u8 = 0x20;
const FLAG_F: u8 = 0x10;
const FLAG_C: u8 = 0x08;
const FLAG_A: u8 = 0x04;
const FLAG_D: u8 = 0x02;
const FLAG_M: u8 = 0x01;

/// Converts a wire interval to a [`Duration`].
pub fn us_to_duration(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

/// Converts a [`Duration`] to a wire interval, saturating at `u32::MAX` µs.
pub fn duration_to_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl ControlPacket {
    /// Length this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.auth.as_ref().map_or(0, Auth::wire_len)
    }

    /// Appends the packet to `buf`. The A bit and Length follow `auth`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let len = self.wire_len();
        buf.reserve(len);
        buf.put_u8((VERSION << 5) | self.diag.to_u8());
        let mut flags = (self.state as u8) << 6;
        for (set, bit) in [
            (self.poll, FLAG_P),
            (self.final_, FLAG_F),
            (self.control_plane_independent, FLAG_C),
            (self.auth.is_some(), FLAG_A),
            (self.demand, FLAG_D),
            (self.multipoint, FLAG_M),
        ] {
            if set {
                flags |= bit;
            }
        }
        buf.put_u8(flags);
        buf.put_u8(self.detect_mult);
        // Length is at most 24 + 3 + 255 by construction of `Auth::data` in practice; saturate.
        buf.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
        buf.put_u32(self.my_discr);
        buf.put_u32(self.your_discr);
        buf.put_u32(self.desired_min_tx_us);
        buf.put_u32(self.required_min_rx_us);
        buf.put_u32(self.required_min_echo_rx_us);
        if let Some(auth) = &self.auth {
            buf.put_u8(auth.auth_type as u8);
            buf.put_u8(u8::try_from(auth.wire_len()).unwrap_or(u8::MAX));
            buf.put_u8(auth.key_id);
            buf.put_slice(&auth.data);
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.wire_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes one UDP payload, applying the stateless checks of RFC 5880 §6.8.6 in the RFC's
    /// order. Bytes after `Length` are ignored (the RFC discards only when Length exceeds
    /// the payload).
    pub fn decode(buf: &[u8], cxt: &DecodeCxt) -> Result<ControlPacket, DropReason> {
        let Some(&b0) = buf.first() else {
            return Err(DropReason::Short);
        };
        if b0 >> 5 != VERSION {
            return Err(DropReason::BadVersion);
        }
        if buf.len() < 4 {
            return Err(DropReason::Short);
        }
        let flags = buf[1];
        let auth_bit = flags & FLAG_A != 0;
        let length = usize::from(buf[3]);
        if length < HEADER_LEN || (auth_bit && length < HEADER_LEN + 2) {
            return Err(DropReason::BadLength);
        }
        if length > buf.len() {
            return Err(DropReason::Short);
        }
        let buf = &buf[..length];
        let u32_at =
            |off: usize| u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]);
        let detect_mult = buf[2];
        if detect_mult == 0 {
            return Err(DropReason::ZeroDetectMult);
        }
        if flags & FLAG_M != 0 {
            return Err(DropReason::Multipoint);
        }
        let my_discr = u32_at(4);
        if my_discr == 0 {
            return Err(DropReason::ZeroMyDiscriminator);
        }
        let your_discr = u32_at(8);
        let state = State::from_bits(flags >> 6);
        if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DropReason::ZeroYourDiscriminator);
        }
        let auth = if auth_bit {
            Some(decode_auth(&buf[HEADER_LEN..])?)
        } else {
            None
        };
        match (auth.is_some(), cxt.auth_in_use) {
            (true, Some(false)) => return Err(DropReason::AuthNotInUse),
            (false, Some(true)) => return Err(DropReason::AuthMissing),
            _ => {}
        }
        Ok(ControlPacket {
            diag: Diag::from_u8(b0),
            state,
            poll: flags & FLAG_P != 0,
            final_: flags & FLAG_F != 0,
            control_plane_independent: flags & FLAG_C != 0,
            demand: flags & FLAG_D != 0,
            multipoint: false,
            detect_mult,
            my_discr,
            your_discr,
            desired_min_tx_us: u32_at(12),
            required_min_rx_us: u32_at(16),
            required_min_echo_rx_us: u32_at(20),
            auth,
        })
    }
}

/// Checks the authentication section's structure (RFC 5880 §4.2-§4.4): its Auth Len must cover
/// exactly the rest of the packet and fit the type.
fn decode_auth(sec: &[u8]) -> Result<Auth, DropReason> {
    if sec.len() < 3 {
        return Err(DropReason::BadAuthSection);
    }
    let auth_len = usize::from(sec[1]);
    if auth_len != sec.len() {
        return Err(DropReason::BadAuthSection);
    }
    let auth_type = match sec[0] {
        1 => AuthType::SimplePassword,
        2 => AuthType::KeyedMd5,
        3 => AuthType::MeticulousKeyedMd5,
        4 => AuthType::KeyedSha1,
        5 => AuthType::MeticulousKeyedSha1,
        _ => return Err(DropReason::BadAuthSection),
    };
    let ok = match auth_type {
        // 1..=16 password bytes (RFC 5880 §4.2)
        AuthType::SimplePassword => (4..=19).contains(&auth_len),
        // reserved + sequence + 16-byte digest (§4.3)
        AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => auth_len == 24,
        // reserved + sequence + 20-byte hash (§4.4)
        AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => auth_len == 28,
    };
    if !ok {
        return Err(DropReason::BadAuthSection);
    }
    Ok(Auth {
        auth_type,
        key_id: sec[2],
        data: Bytes::copy_from_slice(&sec[3..]),
    })
}

/// A peer's packet for unit tests: its discriminator `my`, ours as `your`, `interval_us`
/// both ways, detection multiplier 3, no flags.
#[cfg(test)]
impl ControlPacket {
    pub(crate) fn for_test(
        state: State,
        my: u32,
        your: u32,
        interval_us: u32,
        echo_rx_us: u32,
    ) -> ControlPacket {
        ControlPacket {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx_us: interval_us,
            required_min_rx_us: interval_us,
            required_min_echo_rx_us: echo_rx_us,
            auth: None,
        }
    }
}
