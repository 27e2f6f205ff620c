//! The socket side of a peer task: connecting with the peer's options, reading whole
//! frames, closing politely. Bytes only; no decisions.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Conn, ConnectFuture, Event};
use crate::machine::ConnectError;
use crate::packet::{Cxt, DecodeError, Message, Notification, frame_len};
use crate::peer_config::PeerConfig;

/// What a failed `connect()` means for the FSM.
pub(super) fn connect_error(e: &io::Error) -> ConnectError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        io::ErrorKind::TimedOut => ConnectError::NoAnswer,
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => ConnectError::Unreachable(e.to_string()),
        _ => ConnectError::Other(e.to_string()),
    }
}

/// IPv4-mapped IPv6 addresses become plain IPv4.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Reads until one whole frame is buffered. Cancel-safe: bytes stay in `buf`.
pub(super) async fn read_frame(conn: &mut Option<Conn>, cxt: Cxt) -> Event {
    let Some(c) = conn.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        match frame_len(&c.buf, &cxt) {
            Err(e) => return Event::BadFrame(e),
            Ok(Some(n)) => return Event::Frame(c.buf.split_to(n).freeze()),
            Ok(None) => {}
        }
        match c.rd.read_buf(&mut c.buf).await {
            Ok(0) | Err(_) => return Event::Closed,
            Ok(_) => {}
        }
    }
}

/// Reads exactly one message from a fresh stream (collision handling).
pub(super) async fn read_one(stream: &mut TcpStream) -> Result<Message, DecodeError> {
    let cxt = Cxt::default();
    let mut buf = BytesMut::with_capacity(4096);
    for _ in 0..64 {
        if let Some(n) = frame_len(&buf, &cxt)? {
            return Message::decode(&mut buf.split_to(n).freeze(), &cxt);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Err(DecodeError::new(
        0,
        0,
        Bytes::new(),
        "collision OPEN (closed)",
    ))
}

pub(super) async fn send_and_close(
    mut stream: TcpStream,
    n: Notification,
    cxt: Cxt,
) -> io::Result<()> {
    stream
        .write_all(&Message::Notification(n).to_bytes(&cxt))
        .await?;
    stream.shutdown().await
}

/// Closes a connection after what was written has gone out: FIN first, then drain what the
/// peer still sends for a moment so the kernel does not answer with RST and drop our
/// NOTIFICATION.
pub(super) fn close(c: Conn) {
    let Conn { mut rd, mut wr, .. } = c;
    tokio::spawn(async move {
        let _ = wr.shutdown().await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            for _ in 0..256 {
                match rd.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    });
}

/// Starts an outbound connection with the peer's socket options (VRF, source address, TTL
/// for eBGP multihop, TCP MD5).
pub(super) fn connect(cfg: &PeerConfig) -> ConnectFuture {
    let setup = || -> io::Result<(TcpSocket, SocketAddr)> {
        let peer = match (cfg.peer_addr, &cfg.interface) {
            // A link-local peer (unnumbered) is reached through its interface.
            (IpAddr::V6(a), Some(iface)) => {
                let scope = crate::sys::interface_index(iface)?;
                SocketAddr::V6(SocketAddrV6::new(a, cfg.peer_port, 0, scope))
            }
            (ip, _) => SocketAddr::new(ip, cfg.peer_port),
        };
        let sock = match cfg.peer_addr {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        let sref = socket2::SockRef::from(&sock);
        if let Some(vrf) = &cfg.vrf {
            // Before bind/connect: the VRF's table picks the source address and the route.
            sref.bind_device(Some(vrf.as_bytes())).map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(libc::ENODEV) => "no such VRF device on this node".to_string(),
                    _ => e.to_string(),
                };
                io::Error::new(e.kind(), format!("binding to VRF {vrf}: {why}"))
            })?;
        }
        if let Some(src) = cfg.source_addr {
            sock.bind(SocketAddr::new(src, 0))?;
        }
        if let Some(ttl) = cfg.ttl() {
            match cfg.peer_addr {
                IpAddr::V4(_) => sref.set_ttl_v4(ttl as u32)?,
                IpAddr::V6(_) => sref.set_unicast_hops_v6(ttl as u32)?,
            }
        }
        if let Some(pw) = &cfg.md5_password {
            crate::sys::set_tcp_md5(sock.as_raw_fd(), cfg.peer_addr, pw.as_bytes())?;
        }
        Ok((sock, peer))
    };
    match setup() {
        Ok((sock, peer)) => Box::pin(async move { sock.connect(peer).await }),
        Err(e) => Box::pin(async move { Err(e) }),
    }
}
