//! The echo function's I/O: the AF_PACKET socket (opened by the first echo session), the
//! peer's MAC address and interface from the kernel's neighbour table (`/proc/net/arp`), and
//! the node's IP forwarding setting for that interface (`/proc/sys/net/ipv4/conf/<if>/
//! forwarding`), which decides whether the node can loop the peer's echoes. No policy: the
//! machine decides what to advertise and when to send.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::echo::{ECHO_PORT, EchoPacket, ipv4_echo_datagram, parse_ipv4_udp};
use crate::sys;

/// The kernel's neighbour entry for a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Neighbour {
    pub mac: [u8; 6],
    pub dev: String,
    pub ifindex: u32,
}

/// The entry for `peer` in `/proc/net/arp` text: complete (flag 0x2) and not all-zero.
pub(super) fn parse_proc_arp(text: &str, peer: Ipv4Addr) -> Option<([u8; 6], String)> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw, flags, mac, _mask, dev] = f.as_slice() else {
            return None;
        };
        if ip.parse::<Ipv4Addr>().ok()? != peer {
            return None;
        }
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        let mut m = [0u8; 6];
        let mut parts = mac.split(':');
        for b in &mut m {
            *b = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        (flags & 0x2 != 0 && m != [0; 6]).then(|| (m, (*dev).to_string()))
    })
}

/// Looks `peer` up in the kernel's neighbour table.
pub(super) fn neighbour(peer: IpAddr) -> Option<Neighbour> {
    let IpAddr::V4(v4) = peer else {
        return None;
    };
    // thread-self: /proc/net follows the process's first thread, which may sit in another
    // network namespace than this one (tests run the driver on a thread moved into one).
    let text = std::fs::read_to_string("/proc/thread-self/net/arp").ok()?;
    let (mac, dev) = parse_proc_arp(&text, v4)?;
    let ifindex = sys::if_nametoindex(&dev).ok()?;
    Some(Neighbour { mac, dev, ifindex })
}

/// Whether the node forwards IPv4 packets arriving on `dev` (what looping the peer's echoes
/// needs).
pub(super) fn forwarding(dev: &str) -> io::Result<bool> {
    let v = std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{dev}/forwarding"))?;
    Ok(v.trim() == "1")
}

/// The echo socket and the neighbours it sends to.
pub(super) struct EchoIo {
    sock: AsyncFd<OwnedFd>,
    pub neighbours: HashMap<IpAddr, Neighbour>,
    next_id: u16,
}

/// What one receive returned: an IPv4 UDP datagram to the echo port that this host did not
/// send (looped back, or passing through).
pub(super) struct EchoRx {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload_at: std::ops::Range<usize>,
}

impl EchoIo {
    pub(super) fn open() -> io::Result<EchoIo> {
        Ok(EchoIo {
            sock: sys::async_echo_socket()?,
            neighbours: HashMap::new(),
            next_id: rand::random(),
        })
    }

    /// Sends our echo from and to `local` out of the neighbour's interface to its MAC.
    pub(super) fn send(&mut self, peer: IpAddr, local: IpAddr, p: &EchoPacket) -> io::Result<()> {
        let IpAddr::V4(local) = local else {
            return Err(io::Error::other("echo is IPv4-only"));
        };
        // Not cached yet (echo can start before the first periodic check found the peer):
        // look it up now rather than lose the first echoes.
        if !self.neighbours.contains_key(&peer)
            && let Some(n) = neighbour(peer)
        {
            self.neighbours.insert(peer, n);
        }
        let Some(n) = self.neighbours.get(&peer) else {
            return Err(io::Error::other(
                "peer's MAC address not in the neighbour table",
            ));
        };
        self.next_id = self.next_id.wrapping_add(1);
        let d = ipv4_echo_datagram(local, self.next_id, &p.encode());
        sys::packet_send(self.sock.as_raw_fd(), n.ifindex, n.mac, &d)
    }

    /// Waits for the next incoming echo-port datagram in `buf`; packets this host sends
    /// and anything that does not parse are skipped here.
    pub(super) async fn recv(io: Option<&EchoIo>, buf: &mut [u8]) -> io::Result<EchoRx> {
        let Some(io) = io else {
            return std::future::pending().await;
        };
        loop {
            let mut guard = io.sock.readable().await?;
            let r = guard.try_io(|s| sys::packet_recv(s.as_raw_fd(), buf));
            let rx = match r {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(rx)) => rx,
            };
            if rx.pkttype == sys::PACKET_OUTGOING {
                continue;
            }
            let data = &buf[..rx.len.min(buf.len())];
            let Some(u) = parse_ipv4_udp(data) else {
                continue;
            };
            if u.dst_port != ECHO_PORT {
                continue;
            }
            let start = u.payload.as_ptr() as usize - data.as_ptr() as usize;
            return Ok(EchoRx {
                src: u.src,
                dst: u.dst,
                ttl: u.ttl,
                payload_at: start..start + u.payload.len(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_arp_entries() {
        // As the kernel prints it (linux net/ipv4/arp.c arp_format_neigh_entry).
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    192.0.2.1        0x1         0x2         6a:1f:0c:aa:bb:01     *        eth0\n\
                    192.0.2.7        0x1         0x0         00:00:00:00:00:00     *        eth0\n\
                    198.51.100.2     0x1         0x6         02:00:00:00:00:02     *        eth1\n";
        assert_eq!(
            parse_proc_arp(text, Ipv4Addr::new(192, 0, 2, 1)),
            Some(([0x6a, 0x1f, 0x0c, 0xaa, 0xbb, 0x01], "eth0".into()))
        );
        assert_eq!(
            parse_proc_arp(text, Ipv4Addr::new(192, 0, 2, 7)),
            None,
            "incomplete"
        );
        assert_eq!(
            parse_proc_arp(text, Ipv4Addr::new(198, 51, 100, 2)).map(|(_, d)| d),
            Some("eth1".into()),
            "permanent (0x4) and complete"
        );
        assert_eq!(parse_proc_arp(text, Ipv4Addr::new(192, 0, 2, 9)), None);
    }
}
