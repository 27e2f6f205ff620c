//! [`PacketSocket`]: the safe face of `sys.rs` for one interface.

use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

use crate::packet::MacAddr;
use crate::{Error, sys};

/// A non-blocking AF_PACKET socket bound to one interface, filtered in the kernel to ARP and
/// ICMPv6 NS/NA. Public so tools (the benchmark's request blaster) can use it too.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// Room for a VLAN tag to be put back in front of a received frame.
pub(crate) const TAG_ROOM: usize = 4;

impl PacketSocket {
    /// Opens the socket on the interface called `iface` in the current network namespace.
    pub fn open(iface: &str) -> Result<PacketSocket, Error> {
        let links = crate::link::poll_links()?;
        let l = links.get(iface).ok_or_else(|| Error::NoSuchInterface {
            iface: iface.to_string(),
        })?;
        Self::open_index(iface, l.ifindex)
    }

    pub(crate) fn open_index(iface: &str, ifindex: u32) -> Result<PacketSocket, Error> {
        let fd = sys::open_packet_socket(ifindex).map_err(|source| Error::OpenSocket {
            iface: iface.to_string(),
            source,
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Opens a socket on `iface` (index `ifindex`) that receives only ICMPv6 Router
    /// Advertisements (unnumbered BGP neighbour discovery).
    pub fn open_router_advert(iface: &str, ifindex: u32) -> Result<PacketSocket, Error> {
        let fd = sys::open_router_advert_socket(ifindex).map_err(|source| Error::OpenSocket {
            iface: iface.to_string(),
            source,
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Registers the socket with the current tokio runtime for readability.
    pub fn into_async(self) -> std::io::Result<AsyncFd<PacketSocket>> {
        sys::register_async(self)
    }

    pub fn send(&self, frame: &[u8]) -> std::io::Result<usize> {
        sys::send_frame(&self.fd, frame)
    }

    /// Receives one frame without blocking. `buf` must have 4 spare bytes in front: the
    /// returned range is where the frame is, with any VLAN tag the kernel moved into packet
    /// metadata put back after the MAC addresses, so the frame reads as it was on the wire.
    pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<std::ops::Range<usize>> {
        if buf.len() <= TAG_ROOM + 14 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "receive buffer must hold 4 spare bytes and an Ethernet header",
            ));
        }
        let meta = sys::recv_frame(&self.fd, &mut buf[TAG_ROOM..])?;
        match meta.vlan {
            Some((tpid, tci)) if meta.len >= 12 => {
                buf.copy_within(TAG_ROOM..TAG_ROOM + 12, 0);
                buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                buf[14..16].copy_from_slice(&tci.to_be_bytes());
                Ok(0..meta.len + TAG_ROOM)
            }
            _ => Ok(TAG_ROOM..TAG_ROOM + meta.len),
        }
    }

    /// Frames the kernel dropped for this socket since the last call.
    pub fn kernel_drops(&self) -> std::io::Result<u32> {
        sys::dropped_since_last(&self.fd)
    }

    /// Makes the kernel drop frames from these source MACs (at most
    /// [`crate::limit::MAX_BLOCKED_SOURCES`]) before they reach the socket, from now on.
    pub fn block_sources(&self, macs: &[MacAddr]) -> std::io::Result<()> {
        let raw: Vec<[u8; 6]> = macs.iter().map(|m| m.0).collect();
        sys::set_filter(&self.fd, &raw)
    }

    pub(crate) fn membership(&self, mac: MacAddr, join: bool) -> std::io::Result<()> {
        sys::multicast_membership(&self.fd, self.ifindex, mac.0, join)
    }
}

impl std::os::fd::AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}
