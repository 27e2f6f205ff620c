//! The BFD Echo packet (RFC 5880 §6.4, RFC 5881 §4) and the IPv4/UDP datagram that carries
//! it, pure: no sockets.
//!
//! An echo packet is ours alone: the peer's forwarding plane sends it back without reading
//! it (RFC 5880 §6.4: "the payload is a local matter"). We use the layout FRR's bfdd uses, so
//! a capture reads the same on both sides:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Version (1)  |  Length (24)  |           Reserved            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Sequence number (64 bits)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Reserved (64 bits)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! (FRR puts its send time, seconds and microseconds, where we put the sequence number and
//! zero.) The datagram goes to the peer's MAC address with IP source and destination both
//! our own address, UDP ports 3785 -> 3785, TTL 255; the peer routes it back to us, so it
//! returns with TTL 254.

use std::net::Ipv4Addr;

/// UDP port of BFD Echo packets (RFC 5881 §4).
pub const ECHO_PORT: u16 = 3785;
/// Echo payload version.
pub const ECHO_VERSION: u8 = 1;
/// Echo payload length.
pub const ECHO_LEN: usize = 24;
/// TTL our echoes leave with.
pub const ECHO_TTL: u8 = 255;
/// TTL our echoes come back with: one router (the peer) forwarded them.
pub const ECHO_RETURN_TTL: u8 = 254;

const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Our echo payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoPacket {
    /// The sending session's local discriminator.
    pub my_discr: u32,
    /// Per-session sequence number, to tell a return of this run from a stale one.
    pub seq: u64,
}

/// Why a datagram on the echo port was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EchoDropReason {
    /// Shorter than 24 bytes.
    Short,
    /// Version is not 1 or Length is not 24.
    BadFormat,
    /// The discriminator names no session of ours, or a session with another local address.
    NoSession,
    /// Did not come back with TTL 254 (one forwarding hop).
    BadTtl,
    /// The session is not running echo, or the sequence number is not one it sent in this run.
    Stale,
}

impl EchoDropReason {
    /// A stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            EchoDropReason::Short => "short",
            EchoDropReason::BadFormat => "bad_format",
            EchoDropReason::NoSession => "no_session",
            EchoDropReason::BadTtl => "bad_ttl",
            EchoDropReason::Stale => "stale",
        }
    }
}

impl std::fmt::Display for EchoDropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EchoPacket {
    pub fn encode(&self) -> [u8; ECHO_LEN] {
        let mut b = [0u8; ECHO_LEN];
        b[0] = ECHO_VERSION;
        b[1] = ECHO_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..16].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<EchoPacket, EchoDropReason> {
        if b.len() < ECHO_LEN {
            return Err(EchoDropReason::Short);
        }
        if b[0] != ECHO_VERSION || usize::from(b[1]) != ECHO_LEN {
            return Err(EchoDropReason::BadFormat);
        }
        let my_discr = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[8..16]);
        Ok(EchoPacket {
            my_discr,
            seq: u64::from_be_bytes(seq),
        })
    }
}

/// An IPv4/UDP datagram read from the echo socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Udp<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Builds the IPv4 datagram (header + UDP + payload) of an echo packet from and to `addr`:
/// TOS 0xc0 (CS6, as our control packets), don't fragment, TTL [`ECHO_TTL`], both
/// checksums set.
pub fn ipv4_echo_datagram(addr: Ipv4Addr, id: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HEADER + payload.len();
    let total = IPV4_HEADER + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0xc0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0x00, ECHO_TTL, 17, 0, 0]);
    p.extend_from_slice(&addr.octets());
    p.extend_from_slice(&addr.octets());
    let csum = fold(sum16(&p[..IPV4_HEADER], 0));
    p[10..12].copy_from_slice(&csum.to_be_bytes());
    p.extend_from_slice(&ECHO_PORT.to_be_bytes());
    p.extend_from_slice(&ECHO_PORT.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    // RFC 768: checksum over the pseudo header (addresses, protocol, UDP length) and the
    // UDP header and data; zero is sent as all ones.
    let mut acc = sum16(&p[12..20], 0) + 17 + udp_len as u32;
    acc = sum16(&p[IPV4_HEADER..], acc);
    let c = match fold(acc) {
        0 => 0xffff,
        c => c,
    };
    p[IPV4_HEADER + 6..IPV4_HEADER + 8].copy_from_slice(&c.to_be_bytes());
    p
}

/// Parses an IPv4 datagram carrying UDP (no fragments, header checksum valid, lengths
/// consistent). `None` for anything else.
pub fn parse_ipv4_udp(p: &[u8]) -> Option<Ipv4Udp<'_>> {
    if p.len() < IPV4_HEADER || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < IPV4_HEADER || total < ihl + UDP_HEADER || total > p.len() || p[9] != 17 {
        return None;
    }
    // More fragments or a fragment offset: not a whole datagram.
    if u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0 || fold(sum16(&p[..ihl], 0)) != 0 {
        return None;
    }
    let u = &p[ihl..total];
    let udp_len = usize::from(u16::from_be_bytes([u[4], u[5]]));
    if udp_len < UDP_HEADER || udp_len > u.len() {
        return None;
    }
    Some(Ipv4Udp {
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        ttl: p[8],
        src_port: u16::from_be_bytes([u[0], u[1]]),
        dst_port: u16::from_be_bytes([u[2], u[3]]),
        payload: &u[UDP_HEADER..udp_len],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_payload_both_ways() {
        // Layout of FRR 8.4 bfdd's struct bfd_echo_pkt (ver 1, len 24, discr), with our
        // sequence number where FRR writes its send time.
        let bytes: [u8; 24] = [
            1, 24, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let p = EchoPacket {
            my_discr: 0x1234_5678,
            seq: 0x0102,
        };
        assert_eq!(p.encode(), bytes);
        assert_eq!(EchoPacket::decode(&bytes), Ok(p));
        assert_eq!(EchoPacket::decode(&bytes[..23]), Err(EchoDropReason::Short));
        let mut bad = bytes;
        bad[0] = 2;
        assert_eq!(EchoPacket::decode(&bad), Err(EchoDropReason::BadFormat));
    }

    #[test]
    fn datagram_checksums_verify() {
        let a = Ipv4Addr::new(192, 0, 2, 10);
        let payload = EchoPacket {
            my_discr: 7,
            seq: 1,
        }
        .encode();
        let d = ipv4_echo_datagram(a, 0x1c46, &payload);
        assert_eq!(d.len(), 20 + 8 + 24);
        // The header checksums to zero, and the UDP checksum over the pseudo header too.
        assert_eq!(fold(sum16(&d[..20], 0)), 0);
        let acc = sum16(&d[12..20], 0) + 17 + 32;
        assert_eq!(fold(sum16(&d[20..], acc)), 0);
        let p = parse_ipv4_udp(&d).unwrap();
        assert_eq!((p.src, p.dst, p.ttl), (a, a, ECHO_TTL));
        assert_eq!((p.src_port, p.dst_port), (ECHO_PORT, ECHO_PORT));
        assert_eq!(p.payload, &payload);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The worked example of RFC 1071 style header checksums (Wikipedia "IPv4 header
        // checksum"): 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let h: [u8; 20] = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        assert_eq!(fold(sum16(&h, 0)), 0xb861);
    }

    #[test]
    fn parse_rejects_what_is_not_whole_udp() {
        let a = Ipv4Addr::new(192, 0, 2, 10);
        let d = ipv4_echo_datagram(a, 1, &[0; 24]);
        assert!(parse_ipv4_udp(&d[..27]).is_none(), "truncated");
        let mut frag = d.clone();
        frag[6] = 0x20; // more fragments
        assert!(parse_ipv4_udp(&frag).is_none());
        let mut tcp = d.clone();
        tcp[9] = 6;
        assert!(parse_ipv4_udp(&tcp).is_none());
        let mut bad_sum = d;
        bad_sum[8] = 254; // TTL changed, checksum not updated
        assert!(parse_ipv4_udp(&bad_sum).is_none());
        assert!(parse_ipv4_udp(&[0x60; 40]).is_none(), "IPv6");
    }
}
