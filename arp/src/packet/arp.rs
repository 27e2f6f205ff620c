//! ARP for IPv4 over Ethernet (RFC 826; probes and announcements per RFC 5227).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      HTYPE (1 = Ethernet)    |     PTYPE (0x0800 = IPv4)      |
//! |  HLEN (6)    |   PLEN (4)    |  OPER (1 request, 2 reply)     |
//! |                Sender hardware address (SHA) ...              |
//! |      ... SHA                 |  Sender protocol address (SPA) |
//! |     ... SPA                  |  Target hardware address (THA) |
//! |                           ... THA                             |
//! |                  Target protocol address (TPA)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::{DecodeError, MacAddr, be16, mac_at, need};

pub const ARP_LEN: usize = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOp {
    Request,
    Reply,
}

impl ArpOp {
    fn code(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: ArpOp,
    pub sha: MacAddr,
    pub spa: Ipv4Addr,
    pub tha: MacAddr,
    pub tpa: Ipv4Addr,
}

impl ArpPacket {
    /// Decodes an Ethernet/IPv4 ARP packet; trailing bytes (Ethernet padding) are ignored.
    pub fn decode(buf: &[u8]) -> Result<ArpPacket, DecodeError> {
        need("ARP packet", buf, 8)?;
        let (htype, ptype, hlen, plen) = (be16(buf, 0), be16(buf, 2), buf[4], buf[5]);
        if htype != 1 || ptype != 0x0800 || hlen != 6 || plen != 4 {
            return Err(DecodeError::UnsupportedArp {
                htype,
                ptype,
                hlen,
                plen,
            });
        }
        need("ARP packet", buf, ARP_LEN)?;
        let op = match be16(buf, 6) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => return Err(DecodeError::UnsupportedArpOp(other)),
        };
        Ok(ArpPacket {
            op,
            sha: mac_at(buf, 8),
            spa: ip4_at(buf, 14),
            tha: mac_at(buf, 18),
            tpa: ip4_at(buf, 24),
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u16(1);
        out.put_u16(0x0800);
        out.put_u8(6);
        out.put_u8(4);
        out.put_u16(self.op.code());
        out.put_slice(&self.sha.0);
        out.put_slice(&self.spa.octets());
        out.put_slice(&self.tha.0);
        out.put_slice(&self.tpa.octets());
    }

    /// An ARP probe (RFC 5227 §2.1.1): a request with an all-zero sender IP.
    pub fn is_probe(&self) -> bool {
        self.op == ArpOp::Request && self.spa.is_unspecified()
    }

    /// A gratuitous ARP / announcement: sender IP equals target IP.
    pub fn is_gratuitous(&self) -> bool {
        self.spa == self.tpa
    }
}

fn ip4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}
