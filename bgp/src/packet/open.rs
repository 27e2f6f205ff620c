//! OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and extended optional parameters
//! (RFC 9072).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Optional parameter 2 (Capabilities) holds a list of:
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! | Capability Length (1 octet)  |
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::net::Ipv4Addr;

use super::{DecodeError, error_code};

/// AS_TRANS (RFC 6793): the 2-octet stand-in for a 4-octet ASN.
pub const AS_TRANS: u16 = 23456;

/// A family entry of the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    /// Bit 0x80: forwarding state preserved (F bit).
    pub flags: u8,
}

/// One entry of the Extended Next Hop Encoding capability (RFC 8950 §3): NLRI of
/// `nlri_afi`/`nlri_safi` may carry a next hop of `next_hop_afi`.
///
/// ```text
/// +-----------------------------------------------------+
/// | NLRI AFI - 1 (2 octets)                             |
/// | NLRI SAFI - 1 (2 octets)                            |
/// | Nexthop AFI - 1 (2 octets)                          |
/// | .....                                               |
/// +-----------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopTuple {
    pub nlri_afi: u16,
    /// Two octets on the wire (unlike everywhere else in BGP).
    pub nlri_safi: u16,
    pub next_hop_afi: u16,
}

impl NextHopTuple {
    /// IPv4 unicast NLRI with an IPv6 next hop: what unnumbered peering needs.
    pub const IPV4_UNICAST_OVER_IPV6: NextHopTuple = NextHopTuple {
        nlri_afi: super::AFI_IPV4,
        nlri_safi: super::SAFI_UNICAST as u16,
        next_hop_afi: super::AFI_IPV6,
    };
}

/// A capability (RFC 5492). Unknown ones are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Code 1, RFC 4760.
    MultiProtocol {
        afi: u16,
        safi: u8,
    },
    /// Code 2, RFC 2918.
    RouteRefresh,
    /// Code 5, RFC 8950: the families whose NLRI may carry a next hop of another family.
    ExtendedNextHop(Vec<NextHopTuple>),
    /// Code 6, RFC 8654.
    ExtendedMessage,
    /// Code 64, RFC 4724:
    /// `| R | N | res(2) | Restart Time (12 bits) |` then (AFI, SAFI, flags) entries.
    GracefulRestart {
        /// Top 4 bits: 0x8 = Restart State (R), 0x4 = Graceful Notification (N, RFC 8538).
        flags: u8,
        restart_time: u16,
        families: Vec<GrFamily>,
    },
    /// Code 65, RFC 6793.
    FourOctetAsn(u32),
    /// Code 70, RFC 7313.
    EnhancedRouteRefresh,
    Unknown {
        code: u8,
        value: Bytes,
    },
}

impl Capability {
    fn encode(&self, buf: &mut BytesMut) {
        match self {
            Capability::MultiProtocol { afi, safi } => {
                buf.put_slice(&[1, 4]);
                buf.put_u16(*afi);
                buf.put_u8(0);
                buf.put_u8(*safi);
            }
            Capability::RouteRefresh => buf.put_slice(&[2, 0]),
            Capability::ExtendedNextHop(tuples) => {
                buf.put_u8(5);
                buf.put_u8((6 * tuples.len()) as u8);
                for t in tuples {
                    buf.put_u16(t.nlri_afi);
                    buf.put_u16(t.nlri_safi);
                    buf.put_u16(t.next_hop_afi);
                }
            }
            Capability::ExtendedMessage => buf.put_slice(&[6, 0]),
            Capability::GracefulRestart {
                flags,
                restart_time,
                families,
            } => {
                buf.put_u8(64);
                buf.put_u8((2 + 4 * families.len()) as u8);
                buf.put_u16(((*flags as u16 & 0xf0) << 8) | (restart_time & 0x0fff));
                for f in families {
                    buf.put_u16(f.afi);
                    buf.put_u8(f.safi);
                    buf.put_u8(f.flags);
                }
            }
            Capability::FourOctetAsn(asn) => {
                buf.put_slice(&[65, 4]);
                buf.put_u32(*asn);
            }
            Capability::EnhancedRouteRefresh => buf.put_slice(&[70, 0]),
            Capability::Unknown { code, value } => {
                buf.put_u8(*code);
                buf.put_u8(value.len() as u8);
                buf.put_slice(value);
            }
        }
    }

    fn decode(code: u8, mut v: Bytes) -> Result<Self, DecodeError> {
        let bad = || DecodeError::open(0, "OPEN capability value");
        Ok(match code {
            1 => {
                if v.len() != 4 {
                    return Err(bad());
                }
                let afi = v.get_u16();
                v.advance(1);
                Capability::MultiProtocol {
                    afi,
                    safi: v.get_u8(),
                }
            }
            2 if v.is_empty() => Capability::RouteRefresh,
            5 => {
                // RFC 8950 §3: a length that is not a multiple of 6 is malformed.
                if v.is_empty() || !v.len().is_multiple_of(6) {
                    return Err(bad());
                }
                let mut tuples = Vec::new();
                while v.has_remaining() {
                    tuples.push(NextHopTuple {
                        nlri_afi: v.get_u16(),
                        nlri_safi: v.get_u16(),
                        next_hop_afi: v.get_u16(),
                    });
                }
                Capability::ExtendedNextHop(tuples)
            }
            6 if v.is_empty() => Capability::ExtendedMessage,
            70 if v.is_empty() => Capability::EnhancedRouteRefresh,
            64 => {
                if v.len() < 2 || !(v.len() - 2).is_multiple_of(4) {
                    return Err(bad());
                }
                let w = v.get_u16();
                let mut families = Vec::new();
                while v.has_remaining() {
                    families.push(GrFamily {
                        afi: v.get_u16(),
                        safi: v.get_u8(),
                        flags: v.get_u8(),
                    });
                }
                Capability::GracefulRestart {
                    flags: ((w >> 8) as u8) & 0xf0,
                    restart_time: w & 0x0fff,
                    families,
                }
            }
            65 => {
                if v.len() != 4 {
                    return Err(bad());
                }
                Capability::FourOctetAsn(v.get_u32())
            }
            _ => Capability::Unknown { code, value: v },
        })
    }
}

/// An OPEN message. Capabilities keep the grouping into optional parameters that the sender
/// used (one parameter holding all, as BIRD and GoBGP do, or one each, as FRR does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// 2-octet "My Autonomous System" (AS_TRANS when the real ASN needs 4 octets).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Capability optional parameters, each a list of capabilities.
    pub params: Vec<Vec<Capability>>,
}

impl Open {
    /// An OPEN as we send it: version 4, all capabilities in one optional parameter, the
    /// 4-octet ASN capability always present.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, mut caps: Vec<Capability>) -> Self {
        if !caps
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAsn(_)))
        {
            caps.push(Capability::FourOctetAsn(asn));
        }
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: vec![caps],
        }
    }

    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flatten()
    }

    /// The sender's ASN: the 4-octet capability if present, else "My Autonomous System".
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAsn(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(self.my_as as u32)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.version);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time);
        buf.put_slice(&self.bgp_id.octets());
        let len_at = buf.len();
        buf.put_u8(0);
        for group in &self.params {
            buf.put_u8(2);
            let at = buf.len();
            buf.put_u8(0);
            for c in group {
                c.encode(buf);
            }
            buf[at] = (buf.len() - at - 1) as u8;
        }
        buf[len_at] = (buf.len() - len_at - 1) as u8;
    }

    /// Decodes the OPEN body and applies the checks of RFC 4271 §6.2 that need no
    /// configuration (version, hold time, BGP identifier, parameter types). The peer AS is
    /// checked by the FSM.
    pub(crate) fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        if buf.len() < 10 {
            return Err(DecodeError::bad_length(
                (buf.len() + super::HEADER_LEN) as u16,
                "OPEN",
            ));
        }
        let version = buf.get_u8();
        if version != 4 {
            // Data: the largest version we support (RFC 4271 §6.2).
            return Err(DecodeError::new(
                error_code::OPEN,
                1,
                Bytes::from_static(&[0, 4]),
                "OPEN version",
            ));
        }
        let my_as = buf.get_u16();
        let hold_time = buf.get_u16();
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::open(6, "OPEN hold time"));
        }
        let bgp_id = Ipv4Addr::from(buf.get_u32());
        if bgp_id.is_unspecified() {
            return Err(DecodeError::open(3, "OPEN BGP identifier"));
        }
        let params = decode_params(buf)?;
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            params,
        })
    }
}

/// Malformed optional parameters (OPEN Message Error, subcode 0).
fn malformed() -> DecodeError {
    DecodeError::open(0, "OPEN optional parameters")
}

/// The optional parameters after the OPEN's fixed part (RFC 4271 §4.2; RFC 9072 extended
/// lengths): the capabilities of each Capabilities parameter, in order. Any other parameter
/// type is refused (subcode 4).
fn decode_params(buf: &mut Bytes) -> Result<Vec<Vec<Capability>>, DecodeError> {
    let opt_len = buf.get_u8() as usize;
    // RFC 9072 extended optional parameters: length 255 and a first type of 255.
    let extended = opt_len == 255 && buf.first() == Some(&255);
    let mut opts = if extended {
        buf.advance(1);
        if buf.len() < 2 {
            return Err(malformed());
        }
        let l = buf.get_u16() as usize;
        if buf.len() != l {
            return Err(malformed());
        }
        buf.split_to(l)
    } else {
        if buf.len() != opt_len {
            return Err(malformed());
        }
        buf.split_to(opt_len)
    };
    let mut params = Vec::new();
    while opts.has_remaining() {
        let hdr = if extended { 3 } else { 2 };
        if opts.len() < hdr {
            return Err(malformed());
        }
        let ptype = opts.get_u8();
        let plen = if extended {
            opts.get_u16() as usize
        } else {
            opts.get_u8() as usize
        };
        if opts.len() < plen {
            return Err(malformed());
        }
        let p = opts.split_to(plen);
        if ptype != 2 {
            return Err(DecodeError::open(4, "OPEN optional parameter type"));
        }
        params.push(decode_capabilities(p)?);
    }
    Ok(params)
}

/// The capabilities in one Capabilities parameter (RFC 5492).
fn decode_capabilities(mut p: Bytes) -> Result<Vec<Capability>, DecodeError> {
    let mut caps = Vec::new();
    while p.has_remaining() {
        if p.len() < 2 {
            return Err(malformed());
        }
        let code = p.get_u8();
        let clen = p.get_u8() as usize;
        if p.len() < clen {
            return Err(malformed());
        }
        caps.push(Capability::decode(code, p.split_to(clen))?);
    }
    Ok(caps)
}
