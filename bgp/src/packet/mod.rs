//! BGP-4 wire codec (RFC 4271 and extensions): pure functions over `bytes`, no I/O, no logging.
//!
//! Every message starts with the common header (RFC 4271 §4.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                           Marker (16 x 0xff)                  +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Negotiated state that changes the wire format (4-octet AS numbers, extended messages)
//! travels in [`Cxt`]. A [`DecodeError`] carries the NOTIFICATION code/subcode/data that the
//! receiver must send (RFC 4271 §6); UPDATE attribute errors follow RFC 7606 and never fail the
//! decode (see [`Update::treat_as_withdraw`]).

mod error;
mod notification;
mod open;
mod update;

pub use error::DecodeError;
pub use notification::{CeaseSubcode, Notification, error_code, error_names};
pub use open::{Capability, GrFamily, NextHopTuple, Open};
pub use update::{
    AsSegment, AttrValue, LargeCommunity, MpReach, MpUnreach, PathAttr, Update, attr_flags,
    attr_type,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Length of the common header.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended message capability (RFC 4271 §4).
pub const MAX_LEN: usize = 4096;
/// Largest message with the extended message capability (RFC 8654).
pub const EXT_MAX_LEN: usize = 65535;

/// Address family identifiers (IANA AFI).
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
/// Unicast SAFI.
pub const SAFI_UNICAST: u8 = 1;

/// Message type codes.
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// An address family we speak: IPv4 or IPv6 unicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (AFI_IPV4, SAFI_UNICAST),
            Family::Ipv6Unicast => (AFI_IPV6, SAFI_UNICAST),
        }
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4Unicast,
            IpNet::V6(_) => Family::Ipv6Unicast,
        }
    }
}

/// Negotiated session state that the codec needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cxt {
    /// Both sides announced the 4-octet AS capability (RFC 6793): AS_PATH carries 4-octet ASNs.
    pub four_byte_asn: bool,
    /// Largest message accepted and produced: [`MAX_LEN`], or [`EXT_MAX_LEN`] after RFC 8654.
    pub max_len: usize,
}

impl Default for Cxt {
    /// The state before OPEN exchange: 2-octet AS_PATH, 4096-byte messages.
    fn default() -> Self {
        Cxt {
            four_byte_asn: false,
            max_len: MAX_LEN,
        }
    }
}

/// ROUTE-REFRESH (RFC 2918, subtype from RFC 7313):
///
/// ```text
///  0       7      15      23      31
/// +-------+-------+-------+-------+
/// |      AFI      | Subt. | SAFI  |
/// +-------+-------+-------+-------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    /// 0 = normal request, 1 = BoRR, 2 = EoRR (RFC 7313).
    pub subtype: u8,
    pub safi: u8,
}

/// One BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn kind(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// Appends the whole message (header included) to `buf`.
    pub fn encode(&self, buf: &mut BytesMut, cxt: &Cxt) {
        let start = buf.len();
        buf.put_slice(&[0xff; 16]);
        buf.put_u16(0); // length, patched below
        buf.put_u8(self.kind());
        match self {
            Message::Open(o) => o.encode(buf),
            Message::Update(u) => u.encode(buf, cxt),
            Message::Notification(n) => n.encode(buf),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => {
                buf.put_u16(r.afi);
                buf.put_u8(r.subtype);
                buf.put_u8(r.safi);
            }
        }
        let len = (buf.len() - start) as u16;
        buf[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, cxt: &Cxt) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        self.encode(&mut b, cxt);
        b.freeze()
    }

    /// Decodes one whole message (header included; `buf` holds exactly one message, as
    /// returned by [`frame_len`]).
    pub fn decode(buf: &mut Bytes, cxt: &Cxt) -> Result<Message, DecodeError> {
        let (len, kind) = check_header(buf, cxt)?;
        if buf.len() != len {
            return Err(DecodeError::bad_length(len as u16, "message length"));
        }
        buf.advance(HEADER_LEN);
        let msg = match kind {
            msg_type::OPEN => Message::Open(Open::decode(buf)?),
            msg_type::UPDATE => Message::Update(Update::decode(buf, cxt)?),
            msg_type::NOTIFICATION => Message::Notification(Notification::decode(buf)?),
            msg_type::KEEPALIVE => Message::Keepalive,
            msg_type::ROUTE_REFRESH => {
                let r = RouteRefresh {
                    afi: buf.get_u16(),
                    subtype: buf.get_u8(),
                    safi: buf.get_u8(),
                };
                Message::RouteRefresh(r)
            }
            _ => unreachable!("check_header rejects unknown types"),
        };
        Ok(msg)
    }
}

/// Whole-stream framing: returns `Ok(Some(len))` when `buf` starts with a complete message
/// of `len` bytes, `Ok(None)` when more bytes are needed, or the header error to send.
pub fn frame_len(buf: &[u8], cxt: &Cxt) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let (len, _) = check_header(buf, cxt)?;
    Ok((buf.len() >= len).then_some(len))
}

/// RFC 4271 §6.1 header checks: marker, length bounds per type, known type.
fn check_header(buf: &[u8], cxt: &Cxt) -> Result<(usize, u8), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::bad_length(buf.len() as u16, "message header"));
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            error_code::HEADER,
            1,
            Bytes::new(),
            "header marker is not all ones",
        ));
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]);
    let kind = buf[18];
    let l = len as usize;
    let ok = match kind {
        msg_type::OPEN => (29..=cxt.max_len.min(MAX_LEN)).contains(&l),
        msg_type::UPDATE => (23..=cxt.max_len).contains(&l),
        msg_type::NOTIFICATION => (21..=cxt.max_len).contains(&l),
        msg_type::KEEPALIVE => l == 19,
        msg_type::ROUTE_REFRESH => l == 23,
        _ => {
            return Err(DecodeError::new(
                error_code::HEADER,
                3,
                Bytes::copy_from_slice(&[kind]),
                "unknown message type",
            ));
        }
    };
    if !ok {
        return Err(DecodeError::bad_length(len, "message length for its type"));
    }
    Ok((l, kind))
}

/// Encodes a prefix as (length, significant octets) (RFC 4271 §4.3).
pub(crate) fn put_prefix(buf: &mut BytesMut, len: u8, octets: &[u8]) {
    buf.put_u8(len);
    buf.put_slice(&octets[..(len as usize).div_ceil(8)]);
}

pub fn prefix_wire_len(net: &IpNet) -> usize {
    1 + (net.prefix_len() as usize).div_ceil(8)
}

pub(crate) fn put_net(buf: &mut BytesMut, net: &IpNet) {
    match net {
        IpNet::V4(n) => put_prefix(buf, n.prefix_len(), &n.addr().octets()),
        IpNet::V6(n) => put_prefix(buf, n.prefix_len(), &n.addr().octets()),
    }
}

fn get_prefix<const N: usize>(
    buf: &mut Bytes,
    what: &'static str,
) -> Result<(u8, [u8; N]), DecodeError> {
    let invalid = || DecodeError::update(10, what);
    if buf.is_empty() {
        return Err(invalid());
    }
    let len = buf.get_u8();
    if len as usize > N * 8 {
        return Err(invalid());
    }
    let n = (len as usize).div_ceil(8);
    if buf.len() < n {
        return Err(invalid());
    }
    let mut octets = [0u8; N];
    buf.copy_to_slice(&mut octets[..n]);
    Ok((len, octets))
}

pub(crate) fn get_v4_prefixes(
    mut buf: Bytes,
    what: &'static str,
) -> Result<Vec<Ipv4Net>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (len, o) = get_prefix::<4>(&mut buf, what)?;
        // Host bits set beyond the length are masked (RFC 4271 says they are irrelevant).
        let net =
            Ipv4Net::new(Ipv4Addr::from(o), len).map_err(|_| DecodeError::update(10, what))?;
        out.push(net.trunc());
    }
    Ok(out)
}

pub(crate) fn get_v6_prefixes(
    mut buf: Bytes,
    what: &'static str,
) -> Result<Vec<Ipv6Net>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (len, o) = get_prefix::<16>(&mut buf, what)?;
        let net =
            Ipv6Net::new(Ipv6Addr::from(o), len).map_err(|_| DecodeError::update(10, what))?;
        out.push(net.trunc());
    }
    Ok(out)
}

pub(crate) fn ip_octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}
