//! ICMPv6 Router Advertisement (RFC 4861 §4.2), as unnumbered BGP peering uses it: each side
//! announces its link-local address on the link (FRR's zebra hands the sources of the RAs it
//! receives to bgpd as the interface's neighbours), and learns the other's the same way.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
//! |                         Reachable Time                        |
//! |                          Retrans Timer                        |
//! |   Options ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv6Addr;

use bytes::{BufMut, BytesMut};

use super::ethernet::{ETHERTYPE_IPV6, EthernetHeader};
use super::ndp::{Ipv6Header, NEXT_HEADER_ICMPV6, icmpv6_checksum, multicast_mac};
use super::{DecodeError, MacAddr, be16, need};

pub const ICMPV6_RA: u8 = 134;
/// RA without options.
const RA_FIXED_LEN: usize = 16;
const OPT_SOURCE_LLA: u8 = 1;
/// All-nodes multicast (RFC 4291 §2.7.1), where unsolicited RAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The fields of a Router Advertisement that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvert {
    pub cur_hop_limit: u8,
    /// M and O bits, as on the wire (0x80, 0x40).
    pub flags: u8,
    /// Seconds; 0: "not a default router" (RFC 4861 §4.2).
    pub router_lifetime: u16,
    pub reachable_time: u32,
    pub retrans_timer: u32,
    /// Source link-layer address option.
    pub source_mac: Option<MacAddr>,
}

impl RouterAdvert {
    /// The RA an unnumbered BGP speaker sends: router lifetime 0 (hosts must not take it as
    /// a default router), no prefixes, no flags, its MAC as source link-layer address.
    pub fn unnumbered(mac: MacAddr) -> RouterAdvert {
        RouterAdvert {
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            source_mac: Some(mac),
        }
    }

    /// Appends the ICMPv6 message with its checksum for `ip`'s addresses.
    pub fn encode(&self, ip: &Ipv6Header, out: &mut BytesMut) {
        let start = out.len();
        out.put_u8(ICMPV6_RA);
        out.put_u8(0);
        out.put_u16(0);
        out.put_u8(self.cur_hop_limit);
        out.put_u8(self.flags);
        out.put_u16(self.router_lifetime);
        out.put_u32(self.reachable_time);
        out.put_u32(self.retrans_timer);
        if let Some(mac) = self.source_mac {
            out.put_u8(OPT_SOURCE_LLA);
            out.put_u8(1);
            out.put_slice(&mac.0);
        }
        let sum = icmpv6_checksum(&ip.src, &ip.dst, &out[start..]);
        out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }

    fn encoded_len(&self) -> usize {
        RA_FIXED_LEN + if self.source_mac.is_some() { 8 } else { 0 }
    }

    /// The whole Ethernet frame: from `mac` to the all-nodes group, IPv6 hop limit 255.
    pub fn frame(&self, mac: MacAddr, src: Ipv6Addr) -> BytesMut {
        let mut out = BytesMut::with_capacity(14 + 40 + self.encoded_len());
        EthernetHeader {
            dst: multicast_mac(&ALL_NODES),
            src: mac,
            vlan: None,
            ethertype: ETHERTYPE_IPV6,
        }
        .encode(&mut out);
        let ip = Ipv6Header::ndp(src, ALL_NODES);
        ip.encode(self.encoded_len() as u16, &mut out);
        self.encode(&ip, &mut out);
        out
    }

    /// Decodes and validates an RA (RFC 4861 §6.1.2): ICMPv6 type 134, code 0, a correct
    /// checksum, at least 16 octets, options of non-zero length within the message, IPv6 hop
    /// limit 255 and a link-local source.
    pub fn decode(ip: &Ipv6Header, body: &[u8]) -> Result<RouterAdvert, DecodeError> {
        need("Router Advertisement", body, RA_FIXED_LEN)?;
        if body[0] != ICMPV6_RA {
            return Err(DecodeError::NotRouterAdvert(body[0]));
        }
        if body[1] != 0 {
            return Err(DecodeError::BadIcmpCode(body[1]));
        }
        let expected = icmpv6_checksum(&ip.src, &ip.dst, body);
        let got = be16(body, 2);
        if got != expected {
            return Err(DecodeError::BadChecksum { expected, got });
        }
        if ip.hop_limit != 255 || !ip.src.is_unicast_link_local() {
            return Err(DecodeError::RouterAdvertNotOnLink);
        }
        let mut ra = RouterAdvert {
            cur_hop_limit: body[4],
            flags: body[5],
            router_lifetime: be16(body, 6),
            reachable_time: u32::from_be_bytes([body[8], body[9], body[10], body[11]]),
            retrans_timer: u32::from_be_bytes([body[12], body[13], body[14], body[15]]),
            source_mac: None,
        };
        let mut opts = &body[RA_FIXED_LEN..];
        while !opts.is_empty() {
            need("NDP option", opts, 2)?;
            let (ty, len) = (opts[0], usize::from(opts[1]) * 8);
            if len == 0 || len > opts.len() {
                return Err(DecodeError::BadOptionLength { ty });
            }
            if ty == OPT_SOURCE_LLA && len == 8 {
                let mut m = [0u8; 6];
                m.copy_from_slice(&opts[2..8]);
                ra.source_mac = Some(MacAddr(m));
            }
            opts = &opts[len..];
        }
        Ok(ra)
    }
}

/// The sender of a valid Router Advertisement in an Ethernet frame: its link-local address
/// and the RA. Anything else (not IPv6, not ICMPv6, not an RA, invalid) is an error.
pub fn router_advert_source(frame: &[u8]) -> Result<(Ipv6Addr, RouterAdvert), DecodeError> {
    let (eth, payload) = EthernetHeader::decode(frame)?;
    if eth.ethertype != ETHERTYPE_IPV6 {
        return Err(DecodeError::UnsupportedEtherType(eth.ethertype));
    }
    let (ip, body) = Ipv6Header::decode(payload)?;
    if ip.next_header != NEXT_HEADER_ICMPV6 {
        return Err(DecodeError::NotIcmpv6(ip.next_header));
    }
    Ok((ip.src, RouterAdvert::decode(&ip, body)?))
}
