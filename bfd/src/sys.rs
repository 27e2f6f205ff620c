//! The only unsafe code of the BFD crate: asking the kernel for the received TTL / hop limit
//! (IP_RECVTTL, IPV6_RECVHOPLIMIT) and destination address (IP_PKTINFO, IPV6_RECVPKTINFO),
//! reading them from `recvmsg` control messages, mapping an interface name to its index, and
//! the echo function's AF_PACKET socket (open with a kernel filter, send to a MAC, receive).
#![allow(unsafe_code)]

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int on our stack and the length passed is its size; the
    // kernel only reads it. An invalid fd yields an error, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to attach to every datagram the TTL (IPv4) or hop limit (IPv6) it arrived
/// with and its destination address (multihop sessions are selected by source and
/// destination, RFC 5883 §3).
pub(crate) fn enable_recv_info(sock: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let opts = if ipv6 {
        [
            (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT),
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO),
        ]
    } else {
        [
            (libc::IPPROTO_IP, libc::IP_RECVTTL),
            (libc::IPPROTO_IP, libc::IP_PKTINFO),
        ]
    };
    for (level, name) in opts {
        setsockopt_int(sock.as_raw_fd(), level, name, 1)?;
    }
    Ok(())
}

/// One received datagram: payload length, source, TTL / hop limit and destination address if
/// the kernel gave them.
pub(crate) struct Received {
    pub len: usize,
    pub src: SocketAddr,
    pub dst: Option<IpAddr>,
    pub ttl: Option<u8>,
}

/// `recvmsg` on a non-blocking UDP socket, returning the TTL / hop limit from the control
/// messages enabled by [`enable_recv_info`]. `WouldBlock` when nothing is queued.
pub(crate) fn recv_with_ttl(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // u64 array keeps the control buffer aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; an all-zero value is valid and every pointer field we use
    // is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: every pointer in `msg` points to a live buffer of the stated length (`buf`,
    // `addr`, `cbuf`), all outliving the call; the kernel writes at most those lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    let mut dst = None;
    // SAFETY: `msg` was filled by a successful recvmsg, so CMSG_FIRSTHDR/NXTHDR walk the
    // control buffer within `msg_controllen`, and CMSG_DATA points inside the same message;
    // read_unaligned copes with any alignment of the payload, whose size is checked against
    // cmsg_len before each read.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let is_ttl = (h.cmsg_level == libc::IPPROTO_IP && h.cmsg_type == libc::IP_TTL)
                || (h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT);
            if is_ttl
                && h.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                ttl = u8::try_from(v).ok();
            }
            let fits = |n: usize| h.cmsg_len as usize >= libc::CMSG_LEN(n as u32) as usize;
            if h.cmsg_level == libc::IPPROTO_IP
                && h.cmsg_type == libc::IP_PKTINFO
                && fits(size_of::<libc::in_pktinfo>())
            {
                let i = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr))));
            }
            if h.cmsg_level == libc::IPPROTO_IPV6
                && h.cmsg_type == libc::IPV6_PKTINFO
                && fits(size_of::<libc::in6_pktinfo>())
            {
                let i = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>());
                dst = Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    // SAFETY: recvmsg succeeded, so the kernel wrote a socket address of `msg_namelen` bytes
    // into `addr` (zero-initialised beforehand, so reading the family is defined either way).
    let storage = unsafe { addr.assume_init() };
    let src = sockaddr_to_std(&storage)?;
    Ok(Received {
        len: n as usize,
        src,
        dst,
        ttl,
    })
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // and layout-compatible with the start of sockaddr_storage.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        f => Err(io::Error::other(format!(
            "unexpected address family {f} from recvmsg"
        ))),
    }
}

/// Index of the interface called `name`.
pub(crate) fn if_nametoindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated string alive for the call; the function only
    // reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(idx)
    }
}

/// `tcpdump -dd`-style classic BPF for a cooked (SOCK_DGRAM) IPv4 packet socket: accept
/// unfragmented UDP to port 3785, drop the rest. Offsets are from the IP header.
const ECHO_FILTER: [libc::sock_filter; 9] = [
    bpf(0x30, 0, 0, 9),      // ldb [9]            protocol
    bpf(0x15, 0, 6, 17),     // jeq #17 (UDP)      else drop
    bpf(0x28, 0, 0, 6),      // ldh [6]            flags + fragment offset
    bpf(0x45, 4, 0, 0x1fff), // jset #0x1fff       fragment: drop
    bpf(0xb1, 0, 0, 0),      // ldxb 4*([0]&0xf)   header length
    bpf(0x48, 0, 0, 2),      // ldh [x+2]          UDP destination port
    bpf(0x15, 0, 1, 3785),   // jeq #3785          else drop
    bpf(0x06, 0, 0, 0xffff), // ret #65535         accept
    bpf(0x06, 0, 0, 0),      // ret #0             drop
];

const fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Opens the echo socket: AF_PACKET, cooked (the kernel adds and strips the link-layer
/// header), IPv4, all interfaces, filtered to UDP port 3785 in the kernel. Sends go to a
/// given interface and MAC address; receives say the interface and packet type. Needs
/// CAP_NET_RAW.
pub(crate) fn echo_socket() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2) call with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let prog = libc::sock_fprog {
        len: ECHO_FILTER.len() as u16,
        filter: ECHO_FILTER.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at a static filter of `len` instructions, alive for the call;
    // the kernel copies it and never writes through the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// One packet read from the echo socket.
pub(crate) struct PacketRx {
    pub len: usize,
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ... (linux/if_packet.h).
    pub pkttype: u8,
}

/// `PACKET_OUTGOING`: a packet this host sent, seen on its way out.
pub(crate) const PACKET_OUTGOING: u8 = 4;

/// Reads one packet (the IP datagram) from the echo socket; `WouldBlock` when none.
pub(crate) fn packet_recv(fd: RawFd, buf: &mut [u8]) -> io::Result<PacketRx> {
    let mut sll = MaybeUninit::<libc::sockaddr_ll>::zeroed();
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `sll` are live buffers of the stated lengths for the call; the
    // kernel writes at most those lengths.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            sll.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised before the call and possibly filled by it: valid either way.
    let sll = unsafe { sll.assume_init() };
    Ok(PacketRx {
        len: n as usize,
        pkttype: sll.sll_pkttype,
    })
}

/// Sends one IPv4 datagram out of interface `ifindex` to link-layer address `mac`.
pub(crate) fn packet_send(fd: RawFd, ifindex: u32, mac: [u8; 6], data: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value, the used fields are set
    // below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: `data` and `sll` are live for the call with the lengths given; the kernel only
    // reads them.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// [`echo_socket`] registered with the tokio reactor for readiness.
pub(crate) fn async_echo_socket() -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    let fd = echo_socket()?;
    // SAFETY: the AsyncFd takes the OwnedFd by value and owns it for its whole life, so the
    // registered descriptor cannot be closed or reused behind the reactor's back (the I/O
    // safety condition of `register_with_interest`).
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}
