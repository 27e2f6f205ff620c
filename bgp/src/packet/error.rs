//! The decode error: what went wrong and which NOTIFICATION it calls for.

use bytes::Bytes;
use std::fmt;

use super::notification::{Notification, error_code};

/// A message that cannot be accepted. `code`/`subcode`/`data` are exactly what RFC 4271 §6
/// (and RFC 7606 where it applies) says the NOTIFICATION must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
    /// What was being decoded, for logs.
    pub what: &'static str,
}

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: Bytes, what: &'static str) -> Self {
        DecodeError {
            code,
            subcode,
            data,
            what,
        }
    }

    /// Message Header Error / Bad Message Length, data = the bad length (RFC 4271 §6.1).
    pub fn bad_length(len: u16, what: &'static str) -> Self {
        Self::new(
            error_code::HEADER,
            2,
            Bytes::copy_from_slice(&len.to_be_bytes()),
            what,
        )
    }

    pub fn open(subcode: u8, what: &'static str) -> Self {
        Self::new(error_code::OPEN, subcode, Bytes::new(), what)
    }

    pub fn update(subcode: u8, what: &'static str) -> Self {
        Self::new(error_code::UPDATE, subcode, Bytes::new(), what)
    }

    /// The NOTIFICATION to send for this error.
    pub fn to_notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed BGP message while decoding {} (NOTIFICATION {}/{})",
            self.what, self.code, self.subcode
        )
    }
}

impl std::error::Error for DecodeError {}
