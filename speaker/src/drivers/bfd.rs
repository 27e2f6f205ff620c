//! The BFD part of the drivers: a BFDProfile as the BFD manager's profile, and where each
//! session runs from (multihop, unnumbered, single-hop).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrolb_bfd::{AuthKey, AuthMethod, BfdAuth, BfdManager, BfdProfile, ManagerConfig};
use ferrolb_crds::config::{BFDAuthenticationType, Bfd};
use tracing::warn;

use super::{Drivers, local_address_for};
use crate::Error;
use crate::links::Link;

/// The BFD driver's profile for `b`. The key was checked by `Config::build` (1 to 20
/// bytes); a refusal here is an error of the session, never a session without
/// authentication.
fn bfd_profile(b: &Bfd) -> Result<BfdProfile, String> {
    let auth = match &b.authentication {
        None => None,
        Some(a) => Some(BfdAuth {
            method: match a.method {
                BFDAuthenticationType::KeyedSha1 => AuthMethod::KeyedSha1,
                BFDAuthenticationType::MeticulousKeyedSha1 => AuthMethod::MeticulousKeyedSha1,
            },
            key_id: a.key_id,
            key: AuthKey::new(a.key.as_bytes())
                .map_err(|e| format!("BFDProfile {}: key from Secret {}: {e}", b.name, a.secret))?,
        }),
    };
    Ok(BfdProfile {
        receive_interval: Duration::from_millis(u64::from(b.receive_interval_ms)),
        transmit_interval: Duration::from_millis(u64::from(b.transmit_interval_ms)),
        detect_multiplier: b.detect_multiplier,
        echo_interval: Duration::from_millis(u64::from(b.echo_interval_ms)),
        echo_mode: b.echo_mode,
        passive_mode: b.passive_mode,
        minimum_ttl: b.minimum_ttl,
        auth,
    })
}

/// Where a BFD session runs from (see [`crate::plan::Action::AddBfd`]).
pub(super) struct BfdAt {
    pub(super) multihop: bool,
    pub(super) source: Option<IpAddr>,
    pub(super) interface: Option<String>,
}

/// The source address the kernel picks for `peer` (a route lookup: a connected UDP socket
/// sends nothing), or `None` when there is no route.
fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = std::net::UdpSocket::bind(any).ok()?;
    sock.connect((peer, ferrolb_bfd::packet::MULTIHOP_PORT))
        .ok()?;
    Some(sock.local_addr().ok()?.ip())
}

impl Drivers {
    /// New settings (timers, authentication) for the BFD session to `peer`.
    pub(super) async fn set_bfd_profile(&self, peer: IpAddr, profile: &Bfd) -> Result<(), String> {
        let profile = bfd_profile(profile)?;
        if let Some(bfd) = &self.bfd
            && let Err(error) = bfd.set_profile(peer, profile).await
        {
            warn!(%peer, %error, "failed to change the BFD settings");
            return Err(error.to_string());
        }
        Ok(())
    }

    /// Starts a BFD session to `peer` (starting the BFD manager first). The inner error is
    /// the refusal (logged here, retried by the caller). A single-hop peer outside every
    /// connected subnet gets no session (logged, not retried: no link will change that); an
    /// unnumbered peer's session runs from our link-local address on its interface.
    pub(super) async fn add_bfd(
        &mut self,
        peer: IpAddr,
        profile: &Bfd,
        at: BfdAt,
        links: &[Link],
    ) -> Result<Result<(), String>, Error> {
        if self.bfd.is_none() {
            self.bfd = Some(
                BfdManager::start(ManagerConfig::default())
                    .await
                    .map_err(Error::Bfd)?,
            );
        }
        let bfd = self.bfd.as_ref().expect("started above");
        let profile = match bfd_profile(profile) {
            Ok(p) => p,
            Err(error) => return Ok(Err(error)),
        };
        let added = if at.multihop {
            // RFC 5883: from `sourceAddress`, else the address the kernel would send from
            // (what the BGP session uses too).
            let Some(local) = at.source.or_else(|| route_source(peer)) else {
                warn!(%peer, "no route to the peer; multihop BFD session not started");
                return Ok(Err(format!("no route to {peer}")));
            };
            bfd.add_multihop_session(peer, local, profile).await
        } else if let Some(iface) = at.interface {
            // Unnumbered: the neighbour is known, so is our link-local address (the BGP
            // session runs from it); without one yet, retried.
            let Some(local) = crate::unnumbered::link_local_on(links, &iface) else {
                warn!(%peer, %iface, "no link-local address on the interface; BFD session not started");
                return Ok(Err(format!("no link-local address on {iface}")));
            };
            bfd.add_session(peer, local, Some(iface), profile).await
        } else {
            let Some(local) = local_address_for(links, peer) else {
                warn!(%peer, "no local address in the peer's subnet; BFD session not started");
                return Ok(Ok(()));
            };
            bfd.add_session(peer, local, None, profile).await
        };
        if let Err(error) = added {
            warn!(%peer, %error, "failed to add BFD session");
            return Ok(Err(error.to_string()));
        }
        Ok(Ok(()))
    }
}
