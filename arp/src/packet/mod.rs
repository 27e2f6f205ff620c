//! Pure parse/build of the frames the L2 responder deals with: Ethernet II (with an optional
//! 802.1Q tag), ARP for IPv4 over Ethernet (RFC 826) and ICMPv6 Neighbor Solicitation /
//! Advertisement (RFC 4861 §4.3, §4.4) with their options and checksum.
//!
//! No I/O, no logging, no allocation on decode: decoders borrow the input slice and return
//! plain values; short or inconsistent input is a [`DecodeError`], never a panic. Encoders
//! append to a `BytesMut`.

mod arp;
mod ethernet;
mod ndp;
mod ra;

use std::fmt;

pub use arp::{ArpOp, ArpPacket};
pub use ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV6, ETHERTYPE_VLAN, EthernetHeader, VlanTag};
pub use ndp::{
    Ipv6Header, MAX_EXTENSION_HEADERS, NaFlags, NdpMessage, NdpOptions, icmpv6_checksum,
    multicast_mac, skip_extension_headers, solicited_node, solicited_node_mac,
};
pub use ra::{ALL_NODES, ICMPV6_RA, RouterAdvert, router_advert_source};

use bytes::BytesMut;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for group addresses (I/G bit set), broadcast included.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or(DecodeError::BadMacText)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| DecodeError::BadMacText)?;
        }
        if parts.next().is_some() {
            return Err(DecodeError::BadMacText);
        }
        Ok(MacAddr(out))
    }
}

/// Why a frame could not be decoded. Every variant is a reason to drop the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("unsupported ethertype {0:#06x}")]
    UnsupportedEtherType(u16),
    #[error(
        "unsupported ARP hardware/protocol: htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen}"
    )]
    UnsupportedArp {
        htype: u16,
        ptype: u16,
        hlen: u8,
        plen: u8,
    },
    #[error("unsupported ARP operation {0}")]
    UnsupportedArpOp(u16),
    #[error("IPv6 header has version {0}")]
    NotIpv6(u8),
    #[error(
        "IPv6 extension header {next_header} not allowed here (repeated Hop-by-Hop, routing with segments left, or more than 8)"
    )]
    BadExtensionHeader { next_header: u8 },
    #[error("IPv6 next header {0} is not ICMPv6")]
    NotIcmpv6(u8),
    #[error("ICMPv6 type {0} is not a Neighbor Solicitation or Advertisement")]
    NotNdp(u8),
    #[error("ICMPv6 type {0} is not a Router Advertisement")]
    NotRouterAdvert(u8),
    #[error("Router Advertisement not from this link (hop limit not 255 or source not link-local)")]
    RouterAdvertNotOnLink,
    #[error("ICMPv6 code {0} is not 0")]
    BadIcmpCode(u8),
    #[error("ICMPv6 checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum { expected: u16, got: u16 },
    #[error("NDP option type {ty} has length 0 or runs past the message")]
    BadOptionLength { ty: u8 },
    #[error("NDP link-layer address option has length {0} (expected 1 for Ethernet)")]
    BadLinkLayerOption(u8),
    #[error("MAC address text is not six hex bytes separated by ':'")]
    BadMacText,
}

/// The L3 part of a frame the responder understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Arp(ArpPacket),
    Ndp { ip: Ipv6Header, msg: NdpMessage },
}

/// A decoded frame: Ethernet header (with its VLAN tag if any) and an ARP or NDP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub eth: EthernetHeader,
    pub payload: Payload,
}

impl Frame {
    /// Decodes a whole Ethernet frame as received (trailing Ethernet padding is ignored).
    pub fn decode(buf: &[u8]) -> Result<Frame, DecodeError> {
        let (eth, rest) = EthernetHeader::decode(buf)?;
        let payload = match eth.ethertype {
            ETHERTYPE_ARP => Payload::Arp(ArpPacket::decode(rest)?),
            ETHERTYPE_IPV6 => {
                let (ip, body) = Ipv6Header::decode(rest)?;
                let msg = NdpMessage::decode(&ip, body)?;
                Payload::Ndp { ip, msg }
            }
            other => return Err(DecodeError::UnsupportedEtherType(other)),
        };
        Ok(Frame { eth, payload })
    }

    /// Appends the wire form of the frame (ICMPv6 checksum computed here).
    pub fn encode(&self, out: &mut BytesMut) {
        self.eth.encode(out);
        match &self.payload {
            Payload::Arp(a) => a.encode(out),
            Payload::Ndp { ip, msg } => {
                let body_len = msg.encoded_len();
                ip.encode(body_len as u16, out);
                msg.encode(ip, out);
            }
        }
    }

    /// A broadcast ARP request from `mac` for `tpa` (RFC 826; a probe when `spa` is
    /// 0.0.0.0). For tools and tests that need to ask.
    pub fn arp_request(mac: MacAddr, spa: std::net::Ipv4Addr, tpa: std::net::Ipv4Addr) -> Frame {
        Frame::arp_broadcast(mac, ArpOp::Request, spa, MacAddr::ZERO, tpa)
    }

    /// A broadcast ARP packet from `mac` (sender hardware address `mac` as well).
    pub fn arp_broadcast(
        mac: MacAddr,
        op: ArpOp,
        spa: std::net::Ipv4Addr,
        tha: MacAddr,
        tpa: std::net::Ipv4Addr,
    ) -> Frame {
        Frame {
            eth: EthernetHeader {
                dst: MacAddr::BROADCAST,
                src: mac,
                vlan: None,
                ethertype: ETHERTYPE_ARP,
            },
            payload: Payload::Arp(ArpPacket {
                op,
                sha: mac,
                spa,
                tha,
                tpa,
            }),
        }
    }

    /// The wire form in a fresh buffer.
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(90);
        self.encode(&mut out);
        out
    }
}

pub(crate) fn need(what: &'static str, buf: &[u8], n: usize) -> Result<(), DecodeError> {
    if buf.len() < n {
        Err(DecodeError::Truncated {
            what,
            need: n,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn mac_at(b: &[u8], at: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    MacAddr(m)
}
