//! Ethernet II header with an optional IEEE 802.1Q tag.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Destination MAC (6 octets) ...                |
//! |       ... destination     |     Source MAC (6 octets) ...     |
//! |                        ... source                             |
//! |  [TPID 0x8100 (802.1Q)    |  PCP |D|        VLAN ID       ]   |
//! |          EtherType        |   payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::{BufMut, BytesMut};

use super::{DecodeError, MacAddr, be16, mac_at, need};

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// An 802.1Q tag: priority code point, drop-eligible indicator, VLAN ID (12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
}

impl VlanTag {
    /// From the 16-bit Tag Control Information field.
    pub fn from_tci(tci: u16) -> VlanTag {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub vlan: Option<VlanTag>,
    /// The EtherType of the payload (after the tag, if tagged).
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Decodes the header and returns it with the rest of the frame.
    pub fn decode(buf: &[u8]) -> Result<(EthernetHeader, &[u8]), DecodeError> {
        need("Ethernet header", buf, 14)?;
        let dst = mac_at(buf, 0);
        let src = mac_at(buf, 6);
        let mut ethertype = be16(buf, 12);
        let mut off = 14;
        let mut vlan = None;
        if ethertype == ETHERTYPE_VLAN {
            need("802.1Q tagged Ethernet header", buf, 18)?;
            vlan = Some(VlanTag::from_tci(be16(buf, 14)));
            ethertype = be16(buf, 16);
            off = 18;
        }
        Ok((
            EthernetHeader {
                dst,
                src,
                vlan,
                ethertype,
            },
            &buf[off..],
        ))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.dst.0);
        out.put_slice(&self.src.0);
        if let Some(tag) = self.vlan {
            out.put_u16(ETHERTYPE_VLAN);
            out.put_u16(tag.tci());
        }
        out.put_u16(self.ethertype);
    }

    pub fn encoded_len(&self) -> usize {
        if self.vlan.is_some() { 18 } else { 14 }
    }
}
