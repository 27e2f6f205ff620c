//! The multiprotocol attributes (RFC 4760): MP_REACH_NLRI and MP_UNREACH_NLRI.

use bytes::{Buf, Bytes};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{AttrFault, AttrValue, MpReach, MpUnreach};
use crate::packet::{AFI_IPV4, AFI_IPV6, DecodeError, Family, get_v4_prefixes, get_v6_prefixes};

/// The AFI/SAFI that opens MP_REACH/MP_UNREACH (RFC 4760), read from `d`. `Err`: an
/// attribute too short for it (treat-as-withdraw); `Ok(None)`: a family we do not speak (the
/// attribute is kept as unknown).
fn mp_family(d: &mut Bytes, min_len: usize) -> Result<Option<(u16, Family)>, AttrFault> {
    if d.len() < min_len {
        return Err(AttrFault::TreatAsWithdraw);
    }
    let afi = d.get_u16();
    let safi = d.get_u8();
    Ok(Family::from_afi_safi(afi, safi).map(|f| (afi, f)))
}

/// MP_REACH_NLRI (RFC 4760 §3): family, next hops, announced prefixes.
pub(super) fn mp_reach(code: u8, mut d: Bytes) -> Result<AttrValue, AttrFault> {
    let taw = Err(AttrFault::TreatAsWithdraw);
    let raw = d.clone();
    let Some((afi, family)) = mp_family(&mut d, 5)? else {
        return Ok(AttrValue::Unknown {
            type_code: code,
            data: raw,
        });
    };
    let nhl = d.get_u8() as usize;
    if d.len() < nhl + 1 {
        return taw;
    }
    let mut nh = d.split_to(nhl);
    d.advance(1); // reserved
    let next_hops = match (afi, nhl) {
        (AFI_IPV4, 4) => vec![IpAddr::V4(Ipv4Addr::from(nh.get_u32()))],
        (AFI_IPV6, 16) => vec![IpAddr::V6(Ipv6Addr::from(nh.get_u128()))],
        (AFI_IPV6, 32) => vec![
            IpAddr::V6(Ipv6Addr::from(nh.get_u128())),
            IpAddr::V6(Ipv6Addr::from(nh.get_u128())),
        ],
        // RFC 8950 §4: IPv4 NLRI with an IPv6 next hop, global (16) or global and
        // link-local (32; FRR's unnumbered sessions put their link-local address in both).
        (AFI_IPV4, 16) => vec![IpAddr::V6(Ipv6Addr::from(nh.get_u128()))],
        (AFI_IPV4, 32) => vec![
            IpAddr::V6(Ipv6Addr::from(nh.get_u128())),
            IpAddr::V6(Ipv6Addr::from(nh.get_u128())),
        ],
        _ => return taw,
    };
    let nlri = mp_prefixes(afi, d).map_err(|_| AttrFault::TreatAsWithdraw)?;
    Ok(AttrValue::MpReach(MpReach {
        family,
        next_hops,
        nlri,
    }))
}

/// MP_UNREACH_NLRI (RFC 4760 §4): family and withdrawn prefixes.
pub(super) fn mp_unreach(code: u8, mut d: Bytes) -> Result<AttrValue, AttrFault> {
    let raw = d.clone();
    let Some((afi, family)) = mp_family(&mut d, 3)? else {
        return Ok(AttrValue::Unknown {
            type_code: code,
            data: raw,
        });
    };
    let withdrawn = mp_prefixes(afi, d).map_err(|_| AttrFault::TreatAsWithdraw)?;
    Ok(AttrValue::MpUnreach(MpUnreach { family, withdrawn }))
}

fn mp_prefixes(afi: u16, d: Bytes) -> Result<Vec<IpNet>, DecodeError> {
    Ok(if afi == AFI_IPV4 {
        get_v4_prefixes(d, "MP NLRI")?
            .into_iter()
            .map(IpNet::V4)
            .collect()
    } else {
        get_v6_prefixes(d, "MP NLRI")?
            .into_iter()
            .map(IpNet::V6)
            .collect()
    })
}
