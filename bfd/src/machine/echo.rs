//! The machine's echo rules: which sessions may run echo, which echo-port datagrams are our
//! returned echoes, and the driver's report on whether the node loops the peer's echoes.

use std::net::IpAddr;
use std::time::Instant;

use super::{Machine, Output};
use crate::BfdError;
use crate::echo::{ECHO_RETURN_TTL, EchoDropReason, EchoPacket};
use crate::profile::BfdProfile;
use crate::session;

/// Echo runs on IPv4 single-hop sessions only: RFC 5883 §3 forbids it on multihop sessions;
/// IPv6 echo is not implemented (MetalLB refuses echo with IPv6 too).
pub(super) fn check_echo(
    peer: IpAddr,
    multihop: bool,
    profile: &BfdProfile,
) -> Result<(), BfdError> {
    if !profile.echo_mode {
        return Ok(());
    }
    let reason = if multihop {
        "echo mode is not allowed on a multihop session (RFC 5883 §3)"
    } else if peer.is_ipv6() {
        "echo mode is supported for IPv4 peers only"
    } else {
        return Ok(());
    };
    Err(BfdError::InvalidProfile {
        field: "echoMode",
        reason: format!("peer {peer}: {reason}"),
    })
}

impl Machine {
    /// The driver's finding on whether this node forwards (loops back) the echo packets of
    /// `peer`; the session advertises its echo interval only while it does.
    pub fn set_echo_loop(
        &mut self,
        peer: IpAddr,
        ok: bool,
        now: Instant,
    ) -> Result<Vec<Output>, BfdError> {
        if !self.sessions.contains_key(&peer) {
            return Err(BfdError::NoSession { peer });
        }
        let mut out = Vec::new();
        self.feed(peer, session::Input::SetEchoLoop(ok), now, &mut out);
        Ok(out)
    }

    /// The sessions running the Echo function (echoMode in their profile).
    pub fn echo_peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.sessions
            .iter()
            .filter(|(_, p)| p.session.profile().echo_mode)
            .map(|(a, _)| *a)
    }

    /// A datagram from the echo port: ours when source and destination are both the local
    /// address of an echo session; then its discriminator must name that session and it must
    /// have come back with TTL 254.
    pub(super) fn on_echo(
        &mut self,
        payload: &[u8],
        (src, dst, ttl): (IpAddr, IpAddr, u8),
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let ours = src == dst && self.sessions.values().any(|p| p.local == src);
        if !ours {
            // The peer's echoes on their way back through this node, or someone else's.
            return;
        }
        let mut drop = |peer, reason| out.push(Output::EchoDrop { peer, reason });
        let pkt = match EchoPacket::decode(payload) {
            Ok(p) => p,
            Err(reason) => return drop(None, reason),
        };
        let peer = match self.by_discr.get(&pkt.my_discr) {
            Some(peer) if self.sessions.get(peer).is_some_and(|p| p.local == src) => *peer,
            _ => return drop(None, EchoDropReason::NoSession),
        };
        if ttl != ECHO_RETURN_TTL {
            return drop(Some(peer), EchoDropReason::BadTtl);
        }
        self.feed(peer, session::Input::EchoReturned(pkt), now, out);
    }
}
