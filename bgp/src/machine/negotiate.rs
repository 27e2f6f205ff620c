//! What two OPENs agree on (RFC 4271 §4.2, RFC 4760, RFC 6793, RFC 8654, RFC 8950), as a pure
//! function.

use super::{FsmConfig, Negotiated};
use crate::packet::{Capability, Cxt, EXT_MAX_LEN, Family, MAX_LEN, NextHopTuple, Open};

/// The session parameters for our `cfg` and the peer's OPEN `o` (already checked: AS and
/// identifier).
pub(super) fn negotiate(cfg: &FsmConfig, o: &Open) -> Negotiated {
    let hold_time = cfg.hold_time.min(o.hold_time);
    let keepalive = cfg.keepalive_for(hold_time);
    let mut peer_mp = Vec::new();
    let mut four = false;
    let mut rr = false;
    let mut gr = false;
    let mut ext = false;
    let mut v4_over_v6 = false;
    for c in o.capabilities() {
        match c {
            Capability::MultiProtocol { afi, safi } => {
                if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                    peer_mp.push(f);
                }
            }
            Capability::FourOctetAsn(_) => four = true,
            Capability::RouteRefresh | Capability::EnhancedRouteRefresh => rr = true,
            Capability::GracefulRestart { .. } => gr = true,
            Capability::ExtendedMessage => ext = true,
            Capability::ExtendedNextHop(tuples) => {
                v4_over_v6 |= tuples.contains(&NextHopTuple::IPV4_UNICAST_OVER_IPV6);
            }
            _ => {}
        }
    }
    let has_mp = o
        .capabilities()
        .any(|c| matches!(c, Capability::MultiProtocol { .. }));
    if !has_mp {
        peer_mp.push(Family::Ipv4Unicast); // RFC 4760 §8 default
    }
    let families = cfg
        .families
        .iter()
        .copied()
        .filter(|f| peer_mp.contains(f))
        .collect();
    Negotiated {
        peer_id: o.bgp_id,
        peer_asn: o.asn(),
        hold_time,
        keepalive,
        cxt: Cxt {
            four_byte_asn: four,
            max_len: if ext && cfg.extended_messages {
                EXT_MAX_LEN
            } else {
                MAX_LEN
            },
        },
        families,
        peer_route_refresh: rr,
        peer_graceful_restart: gr,
        // RFC 8950 §3: usable only when both sides advertised the tuple.
        ipv4_over_ipv6_next_hop: v4_over_v6
            && cfg.extended_next_hop
            && cfg.families.contains(&Family::Ipv4Unicast),
    }
}
