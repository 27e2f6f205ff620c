//! The only unsafe code of the BFD crate: asking the kernel for the received TTL / hop limit
//! (IP_RECVTTL, IPV6_RECVHOPLIMIT) and destination address (IP_PKTINFO, IPV6_RECVPKTINFO),
//! reading them from `recvmsg` control messages, and mapping an interface name to its index.
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
