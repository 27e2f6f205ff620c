//! The only unsafe code of the crate: AF_PACKET sockets (socket, BPF filter, bind,
//! multicast membership, recvmsg with PACKET_AUXDATA, send) and `getifaddrs`.
//! Everything here is a thin safe wrapper; callers never see raw pointers.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// From <linux/if_packet.h> and <asm-generic/socket.h>; stable kernel ABI.
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_DROP_MEMBERSHIP: libc::c_int = 2;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_MR_MULTICAST: libc::c_ushort = 0;
const PACKET_STATISTICS: libc::c_int = 6;
const SO_ATTACH_FILTER: libc::c_int = 26;
/// Receive buffer asked for: room for a few thousand frames of an ARP storm.
const RCVBUF: libc::c_int = 4 << 20;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const ETH_P_ALL: u16 = 0x0003;
pub const PACKET_OUTGOING: u8 = 4;

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// Most source MACs the kernel filter drops (see [`program`]); keeps every jump of the
/// program within cBPF's 8-bit offsets (4 instructions per MAC + 16).
const MAX_BLOCKED: usize = crate::limit::MAX_BLOCKED_SOURCES;

// Classic BPF opcodes used by the filters below.
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The whole filter: first drop frames whose Ethernet source is in `blocked` (sources the
/// responder rate-limits, so a flood costs no wake-up and no copy while they are blocked),
/// then [`filter`].
fn program(blocked: &[[u8; 6]]) -> Vec<libc::sock_filter> {
    let blocked = &blocked[..blocked.len().min(MAX_BLOCKED)];
    let base = filter();
    let total = 4 * blocked.len() + base.len();
    let drop = total - 1; // `filter()` ends with its drop instruction
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut out = Vec::with_capacity(total);
    for m in blocked {
        let hi = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
        let lo = u32::from(u16::from_be_bytes([m[4], m[5]]));
        out.push(ins(LD_W_ABS, 0, 0, 6)); // source MAC, first 4 bytes
        out.push(ins(JEQ, 0, 2, hi)); // no -> next MAC
        out.push(ins(LD_H_ABS, 0, 0, 10)); // last 2 bytes
        let to_drop = (drop - (out.len() + 1)) as u8;
        out.push(ins(JEQ, to_drop, 0, lo)); // yes -> drop
    }
    out.extend_from_slice(&base);
    out
}

/// Replaces the socket's filter (the kernel swaps it atomically) with one that also drops
/// frames from the `blocked` source MACs (at most [`MAX_BLOCKED`]).
pub fn set_filter(fd: &OwnedFd, blocked: &[[u8; 6]]) -> io::Result<()> {
    attach(fd, &mut program(blocked))
}

fn attach(fd: &OwnedFd, insns: &mut [libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `insns` outlives it.
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, SO_ATTACH_FILTER, &prog)
}

/// Classic BPF: accept ARP, ICMPv6 Neighbor Solicitation/Advertisement, IPv6 packets whose
/// first next header is an extension header (Hop-by-Hop, Routing, Destination Options: the
/// codec walks the chain, bounded, and finds out whether NDP follows) and frames still
/// carrying an 802.1Q tag; drop our own outgoing frames and everything else in the kernel.
fn filter() -> [libc::sock_filter; 16] {
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // Jumps are relative to the next instruction. accept = 14, drop = 15.
    [
        /* 0 */
        ins(
            LD_W_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        /* 1 */ ins(JEQ, 13, 0, u32::from(PACKET_OUTGOING)), // -> drop
        /* 2 */ ins(LD_H_ABS, 0, 0, 12),
        /* 3 */ ins(JEQ, 10, 0, 0x0806), // ARP -> accept
        /* 4 */ ins(JEQ, 9, 0, 0x8100), // tagged -> accept (responder counts it)
        /* 5 */ ins(JEQ, 0, 9, 0x86dd), // not IPv6 -> drop
        /* 6 */ ins(LD_B_ABS, 0, 0, 14 + 6), // next header
        /* 7 */ ins(JEQ, 0, 3, 58), // not ICMPv6 -> 11 (extension headers?)
        /* 8 */ ins(LD_B_ABS, 0, 0, 14 + 40), // ICMPv6 type
        /* 9 */ ins(JEQ, 4, 0, 135), // NS -> accept
        /* 10 */ ins(JEQ, 3, 4, 136), // NA -> accept, else drop
        /* 11 */ ins(JEQ, 2, 0, 0), // Hop-by-Hop -> accept
        /* 12 */ ins(JEQ, 1, 0, 60), // Destination Options -> accept
        /* 13 */ ins(JEQ, 0, 1, 43), // Routing -> accept, else drop
        /* 14 accept */ ins(RET, 0, 0, 0x0004_0000),
        /* 15 drop */ ins(RET, 0, 0, 0),
    ]
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a valid reference for the duration of the call and the length passed
    // is exactly its size; the kernel only reads from it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Opens a non-blocking AF_PACKET raw socket bound to `ifindex` with the ARP/NDP filter
/// attached (before the bind, so no unfiltered frame is ever queued) and PACKET_AUXDATA on
/// (so VLAN tags the kernel moved into metadata are seen).
pub fn open_packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    open_filtered(ifindex, &mut program(&[]))
}

/// Classic BPF: accept untagged IPv6 ICMPv6 Router Advertisements (no extension headers:
/// routers send them plain) that we did not send; drop everything else in the kernel.
fn router_advert_filter() -> [libc::sock_filter; 10] {
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // Jumps are relative to the next instruction. accept = 8, drop = 9.
    [
        /* 0 */
        ins(
            LD_W_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        /* 1 */ ins(JEQ, 7, 0, u32::from(PACKET_OUTGOING)), // -> drop
        /* 2 */ ins(LD_H_ABS, 0, 0, 12),
        /* 3 */ ins(JEQ, 0, 5, 0x86dd), // not IPv6 -> drop
        /* 4 */ ins(LD_B_ABS, 0, 0, 14 + 6), // next header
        /* 5 */ ins(JEQ, 0, 3, 58), // not ICMPv6 -> drop
        /* 6 */ ins(LD_B_ABS, 0, 0, 14 + 40), // ICMPv6 type
        /* 7 */ ins(JEQ, 0, 1, 134), // not RA -> drop
        /* 8 accept */ ins(RET, 0, 0, 0x0004_0000),
        /* 9 drop */ ins(RET, 0, 0, 0),
    ]
}

/// Opens a non-blocking AF_PACKET raw socket bound to `ifindex` that receives only Router
/// Advertisements (see [`router_advert_filter`]); sending works as on the ARP/NDP socket.
pub fn open_router_advert_socket(ifindex: u32) -> io::Result<OwnedFd> {
    open_filtered(ifindex, &mut router_advert_filter())
}

fn open_filtered(ifindex: u32, filter: &mut [libc::sock_filter]) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; protocol 0 receives nothing until bind.
    let raw = cvt(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    attach(&fd, filter)?;
    let one: libc::c_int = 1;
    setsockopt(fd.as_raw_fd(), SOL_PACKET, PACKET_AUXDATA, &one)?;
    // SO_RCVBUFFORCE (CAP_NET_ADMIN) goes past net.core.rmem_max; otherwise take what
    // SO_RCVBUF gives (capped by rmem_max). Neither failing is fatal.
    if setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &RCVBUF,
    )
    .is_err()
    {
        let _ = setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
    }
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

/// Joins (`join = true`) or leaves a link-layer multicast group on the socket's interface.
/// Memberships belong to the socket and are released when it is closed.
pub fn multicast_membership(
    fd: &OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
    join: bool,
) -> io::Result<()> {
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&mac);
    let mreq = PacketMreq {
        mr_ifindex: ifindex as i32,
        mr_type: PACKET_MR_MULTICAST,
        mr_alen: 6,
        mr_address: addr,
    };
    let opt = if join {
        PACKET_ADD_MEMBERSHIP
    } else {
        PACKET_DROP_MEMBERSHIP
    };
    setsockopt(fd.as_raw_fd(), SOL_PACKET, opt, &mreq)
}

/// Frames the kernel dropped for this socket (receive buffer full) since the last call;
/// reading resets the kernel's counter (packet(7), PACKET_STATISTICS).
pub fn dropped_since_last(fd: &OwnedFd) -> io::Result<u32> {
    #[repr(C)]
    struct TpacketStats {
        tp_packets: u32,
        tp_drops: u32,
    }
    let mut st = TpacketStats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are valid, writable and sized for the option being read.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut st as *mut TpacketStats).cast(),
            &mut len,
        )
    })?;
    let _ = st.tp_packets;
    Ok(st.tp_drops)
}

/// One received frame's metadata.
#[derive(Debug, Clone, Copy)]
pub struct RecvMeta {
    pub len: usize,
    /// VLAN tag the kernel took off the frame (TPID, TCI), if any.
    pub vlan: Option<(u16, u16)>,
}

/// Receives one frame into `buf` (non-blocking: `WouldBlock` when the queue is empty).
pub fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<RecvMeta> {
    // SAFETY: plain old data, all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 array keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: plain old data, all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // glibc declares msg_controllen as size_t, musl as socklen_t: `as _` fits both (128 fits).
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: every pointer in `msg` points to live, writable buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut vlan = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, bounded by
    // msg_controllen; the auxdata payload is read unaligned into a local copy.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == SOL_PACKET && (*cmsg).cmsg_type == PACKET_AUXDATA {
                let aux: TpacketAuxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<TpacketAuxdata>());
                if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    vlan = Some((tpid, aux.tp_vlan_tci));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(RecvMeta {
        len: (n as usize).min(buf.len()),
        vlan,
    })
}

/// Sends one whole Ethernet frame out of the interface the socket is bound to.
pub fn send_frame(fd: &OwnedFd, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: `frame` is a valid readable buffer of the given length.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One interface as `getifaddrs` reports it.
#[derive(Debug, Clone, Default)]
pub struct RawInterface {
    pub name: String,
    pub ifindex: u32,
    pub flags: u32,
    pub mac: Option<[u8; 6]>,
    pub addrs: Vec<(IpAddr, u8)>,
}

impl RawInterface {
    /// Administratively up and operationally running (carrier present).
    pub fn is_up(&self) -> bool {
        let f = self.flags as libc::c_int;
        f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0
    }
}

/// All interfaces of the current network namespace with their MAC and addresses.
pub fn interfaces() -> io::Result<Vec<RawInterface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid out-pointer; on success it is freed below with freeifaddrs.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out: Vec<RawInterface> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs;
        // ifa_name is a NUL-terminated string and ifa_addr/ifa_netmask, when not null, point
        // to sockaddrs whose family field says which struct they are.
        unsafe {
            let ifa = &*cur;
            let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            let idx = match index.get(&name) {
                Some(i) => *i,
                None => {
                    index.insert(name.clone(), out.len());
                    out.push(RawInterface {
                        name,
                        ..RawInterface::default()
                    });
                    out.len() - 1
                }
            };
            let entry = &mut out[idx];
            entry.flags = ifa.ifa_flags;
            if !ifa.ifa_addr.is_null() {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_PACKET => {
                        let sll = &*(ifa.ifa_addr.cast::<libc::sockaddr_ll>());
                        entry.ifindex = sll.sll_ifindex as u32;
                        if sll.sll_halen == 6 {
                            let mut m = [0u8; 6];
                            m.copy_from_slice(&sll.sll_addr[..6]);
                            entry.mac = Some(m);
                        }
                    }
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr.cast::<libc::sockaddr_in>());
                        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                        let prefix = if ifa.ifa_netmask.is_null() {
                            32
                        } else {
                            let m = &*(ifa.ifa_netmask.cast::<libc::sockaddr_in>());
                            u32::from_be(m.sin_addr.s_addr).count_ones() as u8
                        };
                        entry.addrs.push((IpAddr::V4(ip), prefix));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr.cast::<libc::sockaddr_in6>());
                        let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        let prefix = if ifa.ifa_netmask.is_null() {
                            128
                        } else {
                            let m = &*(ifa.ifa_netmask.cast::<libc::sockaddr_in6>());
                            m.sin6_addr
                                .s6_addr
                                .iter()
                                .map(|b| b.count_ones())
                                .sum::<u32>() as u8
                        };
                        entry.addrs.push((IpAddr::V6(ip), prefix));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Registers a packet socket with the tokio reactor for readability.
pub fn register_async(
    sock: crate::socket::PacketSocket,
) -> io::Result<tokio::io::unix::AsyncFd<crate::socket::PacketSocket>> {
    // SAFETY: `PacketSocket` owns its `OwnedFd`, never replaces or closes it before being
    // dropped, and `as_raw_fd` always returns that descriptor; so the descriptor stays open
    // and the same for the whole life of the AsyncFd, which owns the socket.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}
