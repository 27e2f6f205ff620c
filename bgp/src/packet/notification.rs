//! NOTIFICATION (RFC 4271 §4.5) with the RFC 9003 shutdown communication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! For Cease / Administrative Shutdown and Administrative Reset the data is (RFC 9003):
//! one length octet then that many octets of UTF-8 (at most 255).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::DecodeError;

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 4486 for Cease subcodes).
pub mod error_code {
    pub const HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Cease subcodes (RFC 4486, RFC 8538).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CeaseSubcode {
    MaxPrefixes = 1,
    AdminShutdown = 2,
    PeerDeconfigured = 3,
    AdminReset = 4,
    ConnectionRejected = 5,
    OtherConfigChange = 6,
    CollisionResolution = 7,
    OutOfResources = 8,
    HardReset = 9,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Self {
        Notification {
            code,
            subcode,
            data: Bytes::new(),
        }
    }

    /// A Cease with an RFC 9003 shutdown communication. The text is cut to 255 bytes at a
    /// character boundary; it is only sent for subcodes that carry it (2 and 4).
    pub fn cease(subcode: CeaseSubcode, reason: &str) -> Self {
        let mut data = BytesMut::new();
        if matches!(
            subcode,
            CeaseSubcode::AdminShutdown | CeaseSubcode::AdminReset
        ) && !reason.is_empty()
        {
            let mut end = reason.len().min(255);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            data.put_u8(end as u8);
            data.put_slice(&reason.as_bytes()[..end]);
        }
        Notification {
            code: error_code::CEASE,
            subcode: subcode as u8,
            data: data.freeze(),
        }
    }

    /// The RFC 9003 shutdown communication, when this is a Cease that carries a valid one.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != error_code::CEASE || !matches!(self.subcode, 2 | 4) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..len as usize)?;
        std::str::from_utf8(text).ok().map(str::to_owned)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.code);
        buf.put_u8(self.subcode);
        buf.put_slice(&self.data);
    }

    pub(crate) fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        if buf.len() < 2 {
            return Err(DecodeError::bad_length(
                (buf.len() + super::HEADER_LEN) as u16,
                "NOTIFICATION",
            ));
        }
        let code = buf.get_u8();
        let subcode = buf.get_u8();
        Ok(Notification {
            code,
            subcode,
            data: buf.split_off(0),
        })
    }
}

/// The words for an error code and subcode (RFC 4271 §4.5, RFC 4486, RFC 6608, RFC 7313,
/// RFC 8203 and the IANA "BGP Error (Notification) Codes" registry).
pub fn error_names(code: u8, subcode: u8) -> (&'static str, Option<&'static str>) {
    let sub = |names: &[&'static str]| {
        names
            .get(usize::from(subcode))
            .copied()
            .filter(|n| !n.is_empty())
    };
    match code {
        1 => (
            "Message Header Error",
            sub(&[
                "",
                "Connection Not Synchronized",
                "Bad Message Length",
                "Bad Message Type",
            ]),
        ),
        2 => (
            "OPEN Message Error",
            sub(&[
                "",
                "Unsupported Version Number",
                "Bad Peer AS",
                "Bad BGP Identifier",
                "Unsupported Optional Parameter",
                "",
                "Unacceptable Hold Time",
                "Unsupported Capability",
                "",
                "",
                "",
                "Role Mismatch",
            ]),
        ),
        3 => (
            "UPDATE Message Error",
            sub(&[
                "",
                "Malformed Attribute List",
                "Unrecognized Well-known Attribute",
                "Missing Well-known Attribute",
                "Attribute Flags Error",
                "Attribute Length Error",
                "Invalid ORIGIN Attribute",
                "",
                "Invalid NEXT_HOP Attribute",
                "Optional Attribute Error",
                "Invalid Network Field",
                "Malformed AS_PATH",
            ]),
        ),
        4 => ("Hold Timer Expired", None),
        5 => (
            "Finite State Machine Error",
            sub(&[
                "",
                "Unexpected Message in OpenSent",
                "Unexpected Message in OpenConfirm",
                "Unexpected Message in Established",
            ]),
        ),
        6 => (
            "Cease",
            sub(&[
                "",
                "Maximum Number of Prefixes Reached",
                "Administrative Shutdown",
                "Peer De-configured",
                "Administrative Reset",
                "Connection Rejected",
                "Other Configuration Change",
                "Connection Collision Resolution",
                "Out of Resources",
                "Hard Reset",
                "BFD Down",
            ]),
        ),
        7 => (
            "ROUTE-REFRESH Message Error",
            sub(&["", "Invalid Message Length"]),
        ),
        _ => ("Unknown Error", None),
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NOTIFICATION {}/{}", self.code, self.subcode)?;
        match error_names(self.code, self.subcode) {
            (code, Some(sub)) => write!(f, " ({code}: {sub})")?,
            (code, None) => write!(f, " ({code})")?,
        }
        if let Some(m) = self.shutdown_message() {
            write!(f, " {m:?}")?;
        }
        Ok(())
    }
}
