//! The driver's sockets: the receive sockets of each address family on port 3784 and, once a
//! multihop session needs them, 4784 (TTL / hop limit and destination address delivered as
//! control messages), and the per-session send socket.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::packet::{SINGLE_HOP_TTL, SOURCE_PORTS};
use crate::{BfdError, sys};

pub(super) fn bind_receive(addr: SocketAddr) -> Result<UdpSocket, BfdError> {
    let err = |source| BfdError::BindReceive { addr, source };
    let sock =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true).map_err(err)?;
    }
    sys::enable_recv_info(&sock, addr.is_ipv6()).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(sock.into()).map_err(err)
}

/// Opens the per-session send socket: bound to `local` and a free source port in
/// 49152-65535 (RFC 5881 §4, RFC 5883 §4), TTL / hop limit 255 (required for single-hop; for
/// multihop it lets the peer's minimum TTL count the hops, as FRR does), DSCP CS6 like FRR,
/// optionally bound to `ifname`. Returns the socket, its source port and the scope id of `ifname` (0 without).
pub(super) fn open_send_socket(
    peer: IpAddr,
    local: IpAddr,
    ifname: Option<&str>,
) -> Result<(StdUdpSocket, u16, u32), BfdError> {
    let err = |source| BfdError::SendSocket {
        peer,
        local,
        source,
    };
    let sock = Socket::new(
        Domain::for_address(SocketAddr::new(peer, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(err)?;
    let ttl = u32::from(SINGLE_HOP_TTL);
    let mut scope = 0;
    // FREEBIND: the local address may not exist yet (interface still being configured, IPv6
    // DAD in progress); sends fail and are counted until it appears, then the session
    // proceeds without the caller having to retry.
    if peer.is_ipv6() {
        sock.set_unicast_hops_v6(ttl).map_err(err)?;
        sock.set_tclass_v6(0xc0).map_err(err)?;
        sock.set_freebind_v6(true).map_err(err)?;
    } else {
        sock.set_ttl_v4(ttl).map_err(err)?;
        sock.set_tos_v4(0xc0).map_err(err)?;
        sock.set_freebind_v4(true).map_err(err)?;
    }
    if let Some(name) = ifname {
        sock.bind_device(Some(name.as_bytes())).map_err(err)?;
        scope = sys::if_nametoindex(name).map_err(err)?;
    }
    sock.set_nonblocking(true).map_err(err)?;
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let start = rand::random::<u32>() % span;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + u16::try_from((start + i) % span).unwrap_or(0);
        let addr = match local {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope)),
            IpAddr::V4(_) => SocketAddr::new(local, port),
        };
        match sock.bind(&addr.into()) {
            Ok(()) => return Ok((sock.into(), port, scope)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(last))
}

/// Receives one datagram with its TTL / hop limit; never returns without a socket.
pub(super) async fn recv(sock: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<sys::Received> {
    let Some(sock) = sock else {
        return std::future::pending().await;
    };
    loop {
        sock.readable().await?;
        match sock.try_io(Interest::READABLE, || {
            sys::recv_with_ttl(sock.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}
