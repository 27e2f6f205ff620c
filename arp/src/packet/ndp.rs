//! IPv6 header and ICMPv6 Neighbor Discovery: Neighbor Solicitation and Neighbor
//! Advertisement (RFC 4861 §4.3, §4.4) with the link-layer address options (§4.6.1) and the
//! DAD nonce option (RFC 7527).
//!
//! IPv6 header (RFC 8200 §3):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! |                  Source Address (16 octets)                   |
//! |               Destination Address (16 octets)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Neighbor Solicitation (type 135) / Advertisement (type 136):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |R|S|O|                     Reserved (NS: all 32 bits)          |
//! |                  Target Address (16 octets)                   |
//! |   Options ... (Type, Length in units of 8 octets, Value)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv6Addr;

use bytes::{BufMut, BytesMut};

use super::{DecodeError, MacAddr, be16, mac_at, need};

pub const IPV6_HEADER_LEN: usize = 40;
pub const NEXT_HEADER_ICMPV6: u8 = 58;
pub const ICMPV6_NS: u8 = 135;
pub const ICMPV6_NA: u8 = 136;
const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;
const OPT_NONCE: u8 = 14;
/// NS/NA without options: type, code, checksum, flags/reserved, target.
const NDP_FIXED_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    pub traffic_class: u8,
    pub flow_label: u32,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

impl Ipv6Header {
    /// A header for an NDP message: next header ICMPv6, hop limit 255 (RFC 4861 §7.1).
    pub fn ndp(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Header {
        Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            next_header: NEXT_HEADER_ICMPV6,
            hop_limit: 255,
            src,
            dst,
        }
    }

    /// Decodes the header and returns it with the ICMPv6 message: exactly `payload length`
    /// bytes of payload (Ethernet padding after it is cut off), minus any extension headers
    /// in front of it (see [`skip_extension_headers`]). `next_header` is then ICMPv6.
    pub fn decode(buf: &[u8]) -> Result<(Ipv6Header, &[u8]), DecodeError> {
        need("IPv6 header", buf, IPV6_HEADER_LEN)?;
        let version = buf[0] >> 4;
        if version != 6 {
            return Err(DecodeError::NotIpv6(version));
        }
        let traffic_class = (buf[0] << 4) | (buf[1] >> 4);
        let flow_label = u32::from_be_bytes([0, buf[1] & 0x0f, buf[2], buf[3]]);
        let payload_len = usize::from(be16(buf, 4));
        need("IPv6 payload", &buf[IPV6_HEADER_LEN..], payload_len)?;
        let payload = &buf[IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len];
        let (next_header, body) = skip_extension_headers(buf[6], payload)?;
        if next_header != NEXT_HEADER_ICMPV6 {
            return Err(DecodeError::NotIcmpv6(next_header));
        }
        let hdr = Ipv6Header {
            traffic_class,
            flow_label,
            next_header,
            hop_limit: buf[7],
            src: ip6_at(buf, 8),
            dst: ip6_at(buf, 24),
        };
        Ok((hdr, body))
    }

    pub fn encode(&self, payload_len: u16, out: &mut BytesMut) {
        let first =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xfffff);
        out.put_u32(first);
        out.put_u16(payload_len);
        out.put_u8(self.next_header);
        out.put_u8(self.hop_limit);
        out.put_slice(&self.src.octets());
        out.put_slice(&self.dst.octets());
    }
}

/// Extension headers an NDP message may carry in front of it: Hop-by-Hop Options (RFC 8200
/// §4.3, only first), Destination Options (§4.6) and a Routing header with no segments left
/// (§4.4: the destination field is then the final one, so the ICMPv6 pseudo-header stays
/// right). All share the layout `next header, length in 8-octet units not counting the
/// first 8, ...`. A Fragment header is refused: RFC 6980 §5 says fragmented NDP MUST be
/// silently dropped. Anything else (AH, ESP, ...) ends the walk and is refused as not ICMPv6.
pub const MAX_EXTENSION_HEADERS: usize = 8;
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_DEST_OPTS: u8 = 60;

/// Skips the extension headers in front of the upper-layer header; returns its protocol
/// number and bytes. At most [`MAX_EXTENSION_HEADERS`] are walked.
pub fn skip_extension_headers(first: u8, mut buf: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    let mut next = first;
    for i in 0..=MAX_EXTENSION_HEADERS {
        let known = matches!(next, EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS);
        if !known {
            return Ok((next, buf));
        }
        if i == MAX_EXTENSION_HEADERS || (next == EXT_HOP_BY_HOP && i > 0) {
            return Err(DecodeError::BadExtensionHeader { next_header: next });
        }
        need("IPv6 extension header", buf, 8)?;
        let len = 8 + usize::from(buf[1]) * 8;
        need("IPv6 extension header", buf, len)?;
        // Routing header: type at 2, segments left at 3.
        if next == EXT_ROUTING && buf[3] != 0 {
            return Err(DecodeError::BadExtensionHeader { next_header: next });
        }
        next = buf[0];
        buf = &buf[len..];
    }
    Err(DecodeError::BadExtensionHeader { next_header: next })
}

/// NA flags (RFC 4861 §4.4): Router, Solicited, Override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaFlags {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
}

/// The options the responder cares about. Unknown options are skipped (RFC 4861 §4.6:
/// "Receivers MUST silently ignore any options they do not recognize") and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdpOptions {
    pub source_lla: Option<MacAddr>,
    pub target_lla: Option<MacAddr>,
    /// RFC 7527 nonce as sent by Linux DAD (option length 1, six octets).
    pub nonce: Option<[u8; 6]>,
    pub unknown: u8,
}

impl NdpOptions {
    fn decode(mut buf: &[u8]) -> Result<NdpOptions, DecodeError> {
        let mut o = NdpOptions::default();
        while !buf.is_empty() {
            need("NDP option header", buf, 2)?;
            let ty = buf[0];
            let len = usize::from(buf[1]) * 8;
            // RFC 4861 §4.6: a length of 0 is invalid, the node MUST silently discard.
            if len == 0 || len > buf.len() {
                return Err(DecodeError::BadOptionLength { ty });
            }
            match ty {
                OPT_SOURCE_LLA | OPT_TARGET_LLA => {
                    if buf[1] != 1 {
                        return Err(DecodeError::BadLinkLayerOption(buf[1]));
                    }
                    let mac = mac_at(buf, 2);
                    if ty == OPT_SOURCE_LLA {
                        o.source_lla = Some(mac);
                    } else {
                        o.target_lla = Some(mac);
                    }
                }
                OPT_NONCE if buf[1] == 1 => {
                    let mut n = [0u8; 6];
                    n.copy_from_slice(&buf[2..8]);
                    o.nonce = Some(n);
                }
                _ => o.unknown = o.unknown.saturating_add(1),
            }
            buf = &buf[len..];
        }
        Ok(o)
    }

    fn encoded_len(&self) -> usize {
        8 * (usize::from(self.source_lla.is_some())
            + usize::from(self.target_lla.is_some())
            + usize::from(self.nonce.is_some()))
    }

    fn encode(&self, out: &mut BytesMut) {
        if let Some(m) = self.source_lla {
            out.put_u8(OPT_SOURCE_LLA);
            out.put_u8(1);
            out.put_slice(&m.0);
        }
        if let Some(m) = self.target_lla {
            out.put_u8(OPT_TARGET_LLA);
            out.put_u8(1);
            out.put_slice(&m.0);
        }
        if let Some(n) = self.nonce {
            out.put_u8(OPT_NONCE);
            out.put_u8(1);
            out.put_slice(&n);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpMessage {
    NeighborSolicit {
        target: Ipv6Addr,
        options: NdpOptions,
    },
    NeighborAdvert {
        flags: NaFlags,
        target: Ipv6Addr,
        options: NdpOptions,
    },
}

impl NdpMessage {
    /// Decodes the ICMPv6 body of `ip`, verifying the checksum over the pseudo-header.
    pub fn decode(ip: &Ipv6Header, body: &[u8]) -> Result<NdpMessage, DecodeError> {
        need("ICMPv6 header", body, 4)?;
        let ty = body[0];
        if ty != ICMPV6_NS && ty != ICMPV6_NA {
            return Err(DecodeError::NotNdp(ty));
        }
        need("Neighbor Discovery message", body, NDP_FIXED_LEN)?;
        let got = be16(body, 2);
        let expected = icmpv6_checksum(&ip.src, &ip.dst, body);
        if got != expected {
            return Err(DecodeError::BadChecksum { expected, got });
        }
        if body[1] != 0 {
            return Err(DecodeError::BadIcmpCode(body[1]));
        }
        let target = ip6_at(body, 8);
        let options = NdpOptions::decode(&body[NDP_FIXED_LEN..])?;
        Ok(if ty == ICMPV6_NS {
            NdpMessage::NeighborSolicit { target, options }
        } else {
            let f = body[4];
            NdpMessage::NeighborAdvert {
                flags: NaFlags {
                    router: f & 0x80 != 0,
                    solicited: f & 0x40 != 0,
                    override_: f & 0x20 != 0,
                },
                target,
                options,
            }
        })
    }

    pub fn target(&self) -> Ipv6Addr {
        match self {
            NdpMessage::NeighborSolicit { target, .. }
            | NdpMessage::NeighborAdvert { target, .. } => *target,
        }
    }

    pub fn options(&self) -> &NdpOptions {
        match self {
            NdpMessage::NeighborSolicit { options, .. }
            | NdpMessage::NeighborAdvert { options, .. } => options,
        }
    }

    pub fn encoded_len(&self) -> usize {
        NDP_FIXED_LEN + self.options().encoded_len()
    }

    /// Appends the ICMPv6 message with its checksum computed for `ip`'s addresses.
    pub fn encode(&self, ip: &Ipv6Header, out: &mut BytesMut) {
        let start = out.len();
        match self {
            NdpMessage::NeighborSolicit { .. } => {
                out.put_u8(ICMPV6_NS);
                out.put_u8(0);
                out.put_u16(0);
                out.put_u32(0);
            }
            NdpMessage::NeighborAdvert { flags, .. } => {
                out.put_u8(ICMPV6_NA);
                out.put_u8(0);
                out.put_u16(0);
                let f = (u8::from(flags.router) << 7)
                    | (u8::from(flags.solicited) << 6)
                    | (u8::from(flags.override_) << 5);
                out.put_u8(f);
                out.put_slice(&[0, 0, 0]);
            }
        }
        out.put_slice(&self.target().octets());
        self.options().encode(out);
        let sum = icmpv6_checksum(&ip.src, &ip.dst, &out[start..]);
        out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `msg`, a whole ICMPv6 message, over the IPv6
/// pseudo-header (RFC 8200 §8.1). The checksum field (bytes 2..4) is taken as zero whatever it
/// holds, so the result can be compared with the field or written into it.
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u64 = words(&src.octets()) + words(&dst.octets());
    sum += msg.len() as u64 + u64::from(NEXT_HEADER_ICMPV6);
    if msg.len() >= 4 {
        sum += words(&msg[..2]) + words(&msg[4..]);
    } else {
        sum += words(msg);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn words(b: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(u16::from_be_bytes([*last, 0]));
    }
    s
}

/// The solicited-node multicast address of `addr`: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast MAC of an IPv6 multicast address: 33:33 + low 32 bits (RFC 2464 §7).
pub fn multicast_mac(addr: &Ipv6Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The Ethernet multicast MAC of `addr`'s solicited-node group.
pub fn solicited_node_mac(addr: &Ipv6Addr) -> MacAddr {
    multicast_mac(&solicited_node(addr))
}

fn ip6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}
