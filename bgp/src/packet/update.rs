//! UPDATE (RFC 4271 §4.3) with MP-BGP (RFC 4760), communities (RFC 1997), large communities
//! (RFC 8092), AS4_PATH (RFC 6793), and RFC 7606 error handling on receive.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//!
//! Path attribute:
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then Length: 1 octet, or 2 if Extended Length (0x10)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! MP_REACH_NLRI (type 14) value:            MP_UNREACH_NLRI (type 15) value:
//! +---------------------------------+        +---------------------------------+
//! | AFI (2) | SAFI (1)              |        | AFI (2) | SAFI (1)              |
//! | Length of Next Hop (1)          |        | Withdrawn Routes (variable)     |
//! | Next Hop (variable)             |        +---------------------------------+
//! | Reserved (1)                    |
//! | NLRI (variable)                 |
//! +---------------------------------+
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{Cxt, DecodeError, Family, get_v4_prefixes, put_net};
use crate::packet::open::AS_TRANS;

mod mp;
use mp::{mp_reach, mp_unreach};

pub mod attr_flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH: u8 = 14;
    pub const MP_UNREACH: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// An AS_PATH segment (RFC 4271 §4.3): type 1 = AS_SET, 2 = AS_SEQUENCE (3/4 = confederation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsSegment {
    pub kind: u8,
    pub asns: Vec<u32>,
}

impl AsSegment {
    pub const SET: u8 = 1;
    pub const SEQUENCE: u8 = 2;

    pub fn sequence(asns: Vec<u32>) -> Self {
        AsSegment {
            kind: Self::SEQUENCE,
            asns,
        }
    }
}

/// A large community (RFC 8092): global administrator, local data 1, local data 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity(pub u32, pub u32, pub u32);

/// MP_REACH_NLRI for IPv4/IPv6 unicast. The next hop list is one address, or for IPv6 a
/// global and a link-local address (RFC 2545).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hops: Vec<IpAddr>,
    pub nlri: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// 0 = IGP, 1 = EGP, 2 = INCOMPLETE.
    Origin(u8),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Communities(Vec<u32>),
    LargeCommunities(Vec<LargeCommunity>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    As4Path(Vec<AsSegment>),
    /// Anything else (AGGREGATOR, unknown optional attributes, MP families we do not
    /// speak), kept as received.
    Unknown {
        type_code: u8,
        data: Bytes,
    },
}

impl AttrValue {
    pub fn type_code(&self) -> u8 {
        use attr_type::*;
        match self {
            AttrValue::Origin(_) => ORIGIN,
            AttrValue::AsPath(_) => AS_PATH,
            AttrValue::NextHop(_) => NEXT_HOP,
            AttrValue::Med(_) => MED,
            AttrValue::LocalPref(_) => LOCAL_PREF,
            AttrValue::AtomicAggregate => ATOMIC_AGGREGATE,
            AttrValue::Communities(_) => COMMUNITIES,
            AttrValue::LargeCommunities(_) => LARGE_COMMUNITIES,
            AttrValue::MpReach(_) => MP_REACH,
            AttrValue::MpUnreach(_) => MP_UNREACH,
            AttrValue::As4Path(_) => AS4_PATH,
            AttrValue::Unknown { type_code, .. } => *type_code,
        }
    }

    /// The flags RFC 4271 / the defining RFC prescribes for this attribute.
    pub fn standard_flags(&self) -> u8 {
        use attr_flags::*;
        match self {
            AttrValue::Origin(_)
            | AttrValue::AsPath(_)
            | AttrValue::NextHop(_)
            | AttrValue::LocalPref(_)
            | AttrValue::AtomicAggregate => TRANSITIVE,
            AttrValue::Med(_) | AttrValue::MpReach(_) | AttrValue::MpUnreach(_) => OPTIONAL,
            AttrValue::Communities(_)
            | AttrValue::LargeCommunities(_)
            | AttrValue::As4Path(_)
            | AttrValue::Unknown { .. } => OPTIONAL | TRANSITIVE,
        }
    }
}

/// A path attribute with the flags it travels with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathAttr {
    pub flags: u8,
    pub value: AttrValue,
}

impl PathAttr {
    /// The attribute with its standard flags.
    pub fn new(value: AttrValue) -> Self {
        PathAttr {
            flags: value.standard_flags(),
            value,
        }
    }

    /// Appends the attribute. The Extended Length bit is set when the value needs it and
    /// otherwise kept as given (so received bytes re-encode identically).
    pub fn encode(&self, buf: &mut BytesMut, cxt: &Cxt) {
        let mut v = BytesMut::new();
        encode_value(&self.value, &mut v, cxt);
        let mut flags = self.flags;
        if v.len() > 255 {
            flags |= attr_flags::EXTENDED_LENGTH;
        }
        buf.put_u8(flags);
        buf.put_u8(self.value.type_code());
        if flags & attr_flags::EXTENDED_LENGTH != 0 {
            buf.put_u16(v.len() as u16);
        } else {
            buf.put_u8(v.len() as u8);
        }
        buf.put_slice(&v);
    }

    /// Encoded size in bytes.
    pub fn wire_len(&self, cxt: &Cxt) -> usize {
        let mut b = BytesMut::new();
        self.encode(&mut b, cxt);
        b.len()
    }
}

fn put_segments(v: &mut BytesMut, segs: &[AsSegment], four: bool) {
    for s in segs {
        v.put_u8(s.kind);
        v.put_u8(s.asns.len() as u8);
        for &a in &s.asns {
            if four {
                v.put_u32(a);
            } else {
                v.put_u16(u16::try_from(a).unwrap_or(AS_TRANS));
            }
        }
    }
}

fn encode_value(value: &AttrValue, v: &mut BytesMut, cxt: &Cxt) {
    match value {
        AttrValue::Origin(o) => v.put_u8(*o),
        AttrValue::AsPath(segs) => put_segments(v, segs, cxt.four_byte_asn),
        AttrValue::As4Path(segs) => put_segments(v, segs, true),
        AttrValue::NextHop(a) => v.put_slice(&a.octets()),
        AttrValue::Med(x) | AttrValue::LocalPref(x) => v.put_u32(*x),
        AttrValue::AtomicAggregate => {}
        AttrValue::Communities(c) => c.iter().for_each(|&x| v.put_u32(x)),
        AttrValue::LargeCommunities(c) => c.iter().for_each(|l| {
            v.put_u32(l.0);
            v.put_u32(l.1);
            v.put_u32(l.2);
        }),
        AttrValue::MpReach(m) => {
            let (afi, safi) = m.family.afi_safi();
            v.put_u16(afi);
            v.put_u8(safi);
            let nh: Vec<u8> = m.next_hops.iter().flat_map(super::ip_octets).collect();
            v.put_u8(nh.len() as u8);
            v.put_slice(&nh);
            v.put_u8(0);
            m.nlri.iter().for_each(|n| put_net(v, n));
        }
        AttrValue::MpUnreach(m) => {
            let (afi, safi) = m.family.afi_safi();
            v.put_u16(afi);
            v.put_u8(safi);
            m.withdrawn.iter().for_each(|n| put_net(v, n));
        }
        AttrValue::Unknown { data, .. } => v.put_slice(data),
    }
}

/// An UPDATE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attrs: Vec<PathAttr>,
    pub nlri: Vec<Ipv4Net>,
    /// Set on receive when an attribute error calls for "treat-as-withdraw" (RFC 7606 §2):
    /// the NLRI are to be handled as withdrawn, the session stays up. Never encoded.
    pub treat_as_withdraw: bool,
}

impl Update {
    /// End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an MP_UNREACH with
    /// no routes for other families.
    pub fn end_of_rib(family: Family) -> Self {
        match family {
            Family::Ipv4Unicast => Update::default(),
            f => Update {
                attrs: vec![PathAttr::new(AttrValue::MpUnreach(MpUnreach {
                    family: f,
                    withdrawn: vec![],
                }))],
                ..Default::default()
            },
        }
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attrs.as_slice() {
            [] => Some(Family::Ipv4Unicast),
            [
                PathAttr {
                    value: AttrValue::MpUnreach(m),
                    ..
                },
            ] if m.withdrawn.is_empty() => Some(m.family),
            _ => None,
        }
    }

    pub fn attr(&self, type_code: u8) -> Option<&AttrValue> {
        self.attrs
            .iter()
            .map(|a| &a.value)
            .find(|v| v.type_code() == type_code)
    }

    /// Appends the UPDATE body.
    pub(crate) fn encode(&self, buf: &mut BytesMut, cxt: &Cxt) {
        let at = buf.len();
        buf.put_u16(0);
        for n in &self.withdrawn {
            put_net(buf, &IpNet::V4(*n));
        }
        let wlen = (buf.len() - at - 2) as u16;
        buf[at..at + 2].copy_from_slice(&wlen.to_be_bytes());
        let at = buf.len();
        buf.put_u16(0);
        for a in &self.attrs {
            a.encode(buf, cxt);
        }
        let alen = (buf.len() - at - 2) as u16;
        buf[at..at + 2].copy_from_slice(&alen.to_be_bytes());
        for n in &self.nlri {
            put_net(buf, &IpNet::V4(*n));
        }
    }

    pub(crate) fn decode(buf: &mut Bytes, cxt: &Cxt) -> Result<Self, DecodeError> {
        let malformed = || DecodeError::update(1, "UPDATE attribute list");
        if buf.len() < 4 {
            return Err(malformed());
        }
        let wlen = buf.get_u16() as usize;
        if buf.len() < wlen + 2 {
            return Err(malformed());
        }
        // RFC 7606 §5.3: a withdrawn/NLRI field that cannot be parsed resets the session.
        let withdrawn = get_v4_prefixes(buf.split_to(wlen), "UPDATE withdrawn routes")?;
        let alen = buf.get_u16() as usize;
        if buf.len() < alen {
            return Err(malformed());
        }
        let attr_bytes = buf.split_to(alen);
        let nlri = get_v4_prefixes(buf.split_off(0), "UPDATE NLRI")?;
        let mut u = Update {
            withdrawn,
            attrs: Vec::new(),
            nlri,
            treat_as_withdraw: false,
        };
        decode_attrs(attr_bytes, cxt, &mut u)?;
        // RFC 7606 §3(d): missing well-known mandatory attributes -> treat-as-withdraw.
        let has_reach = !u.nlri.is_empty()
            || u.attr(attr_type::MP_REACH)
                .is_some_and(|v| matches!(v, AttrValue::MpReach(m) if !m.nlri.is_empty()));
        if has_reach
            && (u.attr(attr_type::ORIGIN).is_none()
                || u.attr(attr_type::AS_PATH).is_none()
                || (!u.nlri.is_empty() && u.attr(attr_type::NEXT_HOP).is_none()))
        {
            u.treat_as_withdraw = true;
        }
        Ok(u)
    }
}

/// What RFC 7606 says to do with an attribute that failed its checks.
enum AttrFault {
    TreatAsWithdraw,
    Discard,
}

fn decode_attrs(mut b: Bytes, cxt: &Cxt, u: &mut Update) -> Result<(), DecodeError> {
    let mut seen = [false; 256];
    while b.has_remaining() {
        if b.len() < 3 {
            u.treat_as_withdraw = true;
            return Ok(());
        }
        let flags = b.get_u8();
        let code = b.get_u8();
        let len = if flags & attr_flags::EXTENDED_LENGTH != 0 {
            if b.len() < 2 {
                u.treat_as_withdraw = true;
                return Ok(());
            }
            b.get_u16() as usize
        } else {
            b.get_u8() as usize
        };
        if b.len() < len {
            // RFC 7606 §4: the attribute overruns the attribute list -> treat-as-withdraw.
            u.treat_as_withdraw = true;
            return Ok(());
        }
        let data = b.split_to(len);
        if seen[code as usize] {
            // RFC 7606 §3(g): keep the first; repeated MP attributes would reset the session,
            // but an export-only speaker ignores received routes: treat-as-withdraw instead.
            if code == attr_type::MP_REACH || code == attr_type::MP_UNREACH {
                u.treat_as_withdraw = true;
            }
            continue;
        }
        seen[code as usize] = true;
        match decode_value(flags, code, data, cxt) {
            Ok(value) => u.attrs.push(PathAttr { flags, value }),
            Err(AttrFault::Discard) => {}
            // Includes what RFC 4271/7606 would answer with a session reset (unrecognized
            // well-known attribute, malformed MP_REACH/MP_UNREACH): we never use received
            // routes, so dropping them keeps the session up at no cost.
            Err(AttrFault::TreatAsWithdraw) => u.treat_as_withdraw = true,
        }
    }
    Ok(())
}

fn get_segments(mut d: Bytes, four: bool) -> Option<Vec<AsSegment>> {
    let w = if four { 4 } else { 2 };
    let mut segs = Vec::new();
    while d.has_remaining() {
        if d.len() < 2 {
            return None;
        }
        let kind = d.get_u8();
        let n = d.get_u8() as usize;
        if !(1..=4).contains(&kind) || n == 0 || d.len() < n * w {
            return None;
        }
        let asns = (0..n)
            .map(|_| {
                if four {
                    d.get_u32()
                } else {
                    d.get_u16() as u32
                }
            })
            .collect();
        segs.push(AsSegment { kind, asns });
    }
    Some(segs)
}

/// Decodes one attribute value; the error says what RFC 7606 action applies.
fn decode_value(flags: u8, code: u8, mut d: Bytes, cxt: &Cxt) -> Result<AttrValue, AttrFault> {
    use AttrFault::*;
    use attr_flags::{OPTIONAL, TRANSITIVE};
    use attr_type::*;
    let taw = Err(TreatAsWithdraw);
    // RFC 7606 §3(c): flags that conflict with the attribute type -> the attribute's action.
    let want = match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(TRANSITIVE),
        MED | MP_REACH | MP_UNREACH => Some(OPTIONAL),
        COMMUNITIES | LARGE_COMMUNITIES | AS4_PATH | AGGREGATOR | AS4_AGGREGATOR => {
            Some(OPTIONAL | TRANSITIVE)
        }
        _ => None,
    };
    if let Some(w) = want
        && flags & (OPTIONAL | TRANSITIVE) != w
    {
        return match code {
            ATOMIC_AGGREGATE | AGGREGATOR | AS4_AGGREGATOR | AS4_PATH => Err(Discard),
            _ => taw,
        };
    }
    Ok(match code {
        ORIGIN => {
            if d.len() != 1 || d[0] > 2 {
                return taw;
            }
            AttrValue::Origin(d[0])
        }
        AS_PATH => match get_segments(d, cxt.four_byte_asn) {
            Some(s) => AttrValue::AsPath(s),
            None => return taw,
        },
        AS4_PATH => match get_segments(d, true) {
            Some(s) => AttrValue::As4Path(s),
            None => return Err(Discard),
        },
        NEXT_HOP => {
            if d.len() != 4 {
                return taw;
            }
            AttrValue::NextHop(Ipv4Addr::from(d.get_u32()))
        }
        MED | LOCAL_PREF => {
            if d.len() != 4 {
                return taw;
            }
            let x = d.get_u32();
            if code == MED {
                AttrValue::Med(x)
            } else {
                AttrValue::LocalPref(x)
            }
        }
        ATOMIC_AGGREGATE => {
            if !d.is_empty() {
                return Err(Discard);
            }
            AttrValue::AtomicAggregate
        }
        COMMUNITIES => {
            if d.is_empty() || !d.len().is_multiple_of(4) {
                return taw;
            }
            AttrValue::Communities((0..d.len() / 4).map(|_| d.get_u32()).collect())
        }
        LARGE_COMMUNITIES => {
            if d.is_empty() || !d.len().is_multiple_of(12) {
                return taw;
            }
            AttrValue::LargeCommunities(
                (0..d.len() / 12)
                    .map(|_| LargeCommunity(d.get_u32(), d.get_u32(), d.get_u32()))
                    .collect(),
            )
        }
        MP_REACH => return mp_reach(code, d),
        MP_UNREACH => return mp_unreach(code, d),
        _ if flags & OPTIONAL == 0 => return taw,
        _ => AttrValue::Unknown {
            type_code: code,
            data: d,
        },
    })
}
