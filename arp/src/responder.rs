//! The pure decision: given one received frame, answer it, report a conflict, or drop it for
//! a named reason. No I/O, no clocks: [`crate::machine`] calls it for every received frame,
//! and the driver ([`crate::driver`]) only moves bytes.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use crate::packet::{
    ArpOp, ArpPacket, DecodeError, ETHERTYPE_ARP, ETHERTYPE_IPV6, EthernetHeader, Frame,
    Ipv6Header, MacAddr, NaFlags, NdpMessage, NdpOptions, Payload, multicast_mac, solicited_node,
    solicited_node_mac,
};

/// The all-nodes multicast address ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// What to do with a received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send `frame` back out of the interface the request came in on.
    Reply {
        frame: BytesMut,
        kind: ReplyKind,
    },
    /// Another host claims one of our owned IPs (ARP with our IP as sender, or an NA for our
    /// IP, from another MAC). Nothing is sent; the caller reports it.
    Conflict {
        ip: IpAddr,
        other_mac: MacAddr,
    },
    Drop(DropReason),
}

/// The kinds of replies, counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReplyKind {
    /// ARP reply to an ordinary request.
    Arp,
    /// ARP reply to an RFC 5227 probe (sender IP 0.0.0.0): tells the prober the IP is taken.
    ArpProbe,
    /// Solicited NA to a Neighbor Solicitation sent to the solicited-node multicast group.
    NaMulticastNs,
    /// Solicited NA to a unicast NS (neighbour unreachability detection probe).
    NaUnicastNs,
    /// NA to all-nodes answering a DAD probe (NS from the unspecified address).
    NaDad,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 5] = [
        ReplyKind::Arp,
        ReplyKind::ArpProbe,
        ReplyKind::NaMulticastNs,
        ReplyKind::NaUnicastNs,
        ReplyKind::NaDad,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Arp => "arp",
            ReplyKind::ArpProbe => "arp_probe",
            ReplyKind::NaMulticastNs => "na_multicast_ns",
            ReplyKind::NaUnicastNs => "na_unicast_ns",
            ReplyKind::NaDad => "na_dad",
        }
    }
}

/// Why a frame was not answered. Every drop is counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Shorter than its headers or its own length fields say.
    Truncated,
    /// Not Ethernet/IPv4 ARP or ICMPv6 NS/NA (other ethertype, hardware type, op, ICMP type).
    Unsupported,
    /// ICMPv6 checksum does not match.
    BadChecksum,
    /// An NDP option with length 0, running past the message, or a link-layer option that is
    /// not one Ethernet address long.
    BadOption,
    /// NDP message failing RFC 4861 §7.1 validation: hop limit not 255, code not 0,
    /// multicast target, DAD probe with a source link-layer option or to the wrong group,
    /// destination neither the target nor its solicited-node group, multicast source.
    InvalidNdp,
    /// Tagged 802.1Q frame: the responder serves the untagged traffic of its interface; bind
    /// to the VLAN interface (e.g. `eth0.100`) to serve a VLAN.
    VlanTagged,
    /// Sent by our own MAC (looped back).
    OwnFrame,
    /// Unicast to another MAC, or to a multicast group that is not the target's.
    NotForUs,
    /// The target IP is not one this interface owns (the common case on a busy segment).
    NotOwned,
    /// An ARP reply or NA that does not concern an owned IP.
    NotARequest,
    /// A request from a sender no reply may go to: IPv4 sender 255.255.255.255, multicast,
    /// loopback or in 0.0.0.0/8 (0.0.0.0 itself only in an RFC 5227 probe), IPv6 source
    /// loopback, or a multicast/broadcast sender MAC (Ethernet source or link-layer option).
    InvalidSender,
    /// The source MAC used up its token bucket (see [`crate::limit`]): a flooding host.
    RateLimited,
    /// The reply queue was full of replies to quieter sources.
    QueueFull,
}

impl DropReason {
    pub const ALL: [DropReason; 13] = [
        DropReason::Truncated,
        DropReason::Unsupported,
        DropReason::BadChecksum,
        DropReason::BadOption,
        DropReason::InvalidNdp,
        DropReason::VlanTagged,
        DropReason::OwnFrame,
        DropReason::NotForUs,
        DropReason::NotOwned,
        DropReason::NotARequest,
        DropReason::InvalidSender,
        DropReason::RateLimited,
        DropReason::QueueFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Unsupported => "unsupported",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadOption => "bad_option",
            DropReason::InvalidNdp => "invalid_ndp",
            DropReason::VlanTagged => "vlan_tagged",
            DropReason::OwnFrame => "own_frame",
            DropReason::NotForUs => "not_for_us",
            DropReason::NotOwned => "not_owned",
            DropReason::NotARequest => "not_a_request",
            DropReason::InvalidSender => "invalid_sender",
            DropReason::RateLimited => "rate_limited",
            DropReason::QueueFull => "queue_full",
        }
    }
}

impl From<&DecodeError> for DropReason {
    fn from(e: &DecodeError) -> Self {
        match e {
            DecodeError::Truncated { .. } => DropReason::Truncated,
            DecodeError::BadChecksum { .. } => DropReason::BadChecksum,
            DecodeError::BadOptionLength { .. } | DecodeError::BadLinkLayerOption(_) => {
                DropReason::BadOption
            }
            DecodeError::BadIcmpCode(_) | DecodeError::RouterAdvertNotOnLink => {
                DropReason::InvalidNdp
            }
            DecodeError::UnsupportedEtherType(_)
            | DecodeError::UnsupportedArp { .. }
            | DecodeError::UnsupportedArpOp(_)
            | DecodeError::NotIpv6(_)
            | DecodeError::NotIcmpv6(_)
            | DecodeError::BadExtensionHeader { .. }
            | DecodeError::NotNdp(_)
            | DecodeError::NotRouterAdvert(_)
            | DecodeError::BadMacText => DropReason::Unsupported,
        }
    }
}

/// The responder of one interface: its MAC and the IPs it answers for.
#[derive(Debug, Clone)]
pub struct Responder {
    mac: MacAddr,
    v4: HashSet<Ipv4Addr>,
    v6: HashSet<Ipv6Addr>,
}

impl Responder {
    pub fn new(mac: MacAddr) -> Responder {
        Responder {
            mac,
            v4: HashSet::new(),
            v6: HashSet::new(),
        }
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Replaces the owned set. From the next call to [`Responder::handle`] on, IPs no longer
    /// in the set are not answered.
    pub fn set_owned(&mut self, ips: &BTreeSet<IpAddr>) {
        self.v4.clear();
        self.v6.clear();
        for ip in ips {
            match ip {
                IpAddr::V4(a) => {
                    self.v4.insert(*a);
                }
                IpAddr::V6(a) => {
                    self.v6.insert(*a);
                }
            }
        }
    }

    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(&a),
            IpAddr::V6(a) => self.v6.contains(&a),
        }
    }

    /// Decides what to do with one received Ethernet frame.
    pub fn handle(&self, frame: &[u8]) -> Verdict {
        let frame = match Frame::decode(frame) {
            Ok(f) => f,
            Err(e) => return Verdict::Drop(DropReason::from(&e)),
        };
        if frame.eth.vlan.is_some() {
            return Verdict::Drop(DropReason::VlanTagged);
        }
        if frame.eth.src == self.mac {
            return Verdict::Drop(DropReason::OwnFrame);
        }
        match &frame.payload {
            Payload::Arp(arp) => self.on_arp(&frame.eth, arp),
            Payload::Ndp { ip, msg } => self.on_ndp(&frame.eth, ip, msg),
        }
    }

    fn on_arp(&self, eth: &EthernetHeader, arp: &ArpPacket) -> Verdict {
        if arp.sha == self.mac {
            return Verdict::Drop(DropReason::OwnFrame);
        }
        // RFC 5227 §2.4: a packet with our IP as sender IP from another hardware address is
        // a conflict (reply, gratuitous request or ordinary request alike).
        if !arp.spa.is_unspecified() && self.v4.contains(&arp.spa) {
            return Verdict::Conflict {
                ip: IpAddr::V4(arp.spa),
                other_mac: arp.sha,
            };
        }
        if arp.op != ArpOp::Request {
            return Verdict::Drop(DropReason::NotARequest);
        }
        if !valid_arp_sender(eth, arp) {
            return Verdict::Drop(DropReason::InvalidSender);
        }
        if !(eth.dst.is_broadcast() || eth.dst == self.mac) {
            return Verdict::Drop(DropReason::NotForUs);
        }
        if !self.v4.contains(&arp.tpa) {
            return Verdict::Drop(DropReason::NotOwned);
        }
        // RFC 826: swap sender and target, fill in our hardware address, op = reply; sent to
        // the requester's hardware address. For a probe (RFC 5227 §2.1.1) the target IP stays
        // 0.0.0.0, as Linux does, and the prober sees the address is in use.
        let reply = Frame {
            eth: EthernetHeader {
                dst: arp.sha,
                src: self.mac,
                vlan: eth.vlan,
                ethertype: ETHERTYPE_ARP,
            },
            payload: Payload::Arp(ArpPacket {
                op: ArpOp::Reply,
                sha: self.mac,
                spa: arp.tpa,
                tha: arp.sha,
                tpa: arp.spa,
            }),
        };
        let kind = if arp.is_probe() {
            ReplyKind::ArpProbe
        } else {
            ReplyKind::Arp
        };
        Verdict::Reply {
            frame: reply.to_bytes(),
            kind,
        }
    }

    fn on_ndp(&self, eth: &EthernetHeader, ip: &Ipv6Header, msg: &NdpMessage) -> Verdict {
        // RFC 4861 §7.1.1 / §7.1.2: hop limit 255 proves the message was not forwarded.
        if ip.hop_limit != 255 {
            return Verdict::Drop(DropReason::InvalidNdp);
        }
        match msg {
            NdpMessage::NeighborAdvert {
                target, options, ..
            } => {
                let their = options.target_lla.unwrap_or(eth.src);
                if self.v6.contains(target) && their != self.mac {
                    Verdict::Conflict {
                        ip: IpAddr::V6(*target),
                        other_mac: their,
                    }
                } else {
                    Verdict::Drop(DropReason::NotARequest)
                }
            }
            NdpMessage::NeighborSolicit { target, options } => {
                // Another host sending from one of our addresses: the IPv6 counterpart of
                // RFC 5227 §2.4 (a). (From ::, a DAD probe, is answered below instead.)
                if self.v6.contains(&ip.src) {
                    return Verdict::Conflict {
                        ip: IpAddr::V6(ip.src),
                        other_mac: options.source_lla.unwrap_or(eth.src),
                    };
                }
                self.on_ns(eth, ip, *target, options)
            }
        }
    }

    fn on_ns(
        &self,
        eth: &EthernetHeader,
        ip: &Ipv6Header,
        target: Ipv6Addr,
        options: &NdpOptions,
    ) -> Verdict {
        if target.is_multicast() || ip.src.is_multicast() {
            return Verdict::Drop(DropReason::InvalidNdp);
        }
        // A reply to a loopback source or to a group MAC would go nowhere or everywhere.
        if ip.src.is_loopback()
            || eth.src.is_multicast()
            || options.source_lla.is_some_and(|m| m.is_multicast())
        {
            return Verdict::Drop(DropReason::InvalidSender);
        }
        let group = solicited_node(&target);
        let dad = ip.src.is_unspecified();
        // RFC 4861 §7.1.1: from the unspecified address, the destination is a solicited-node
        // group and there is no source link-layer address option.
        if dad && (ip.dst != group || options.source_lla.is_some()) {
            return Verdict::Drop(DropReason::InvalidNdp);
        }
        let kind = if ip.dst == group {
            if eth.dst != solicited_node_mac(&target) {
                return Verdict::Drop(DropReason::NotForUs);
            }
            if dad {
                ReplyKind::NaDad
            } else {
                ReplyKind::NaMulticastNs
            }
        } else if ip.dst == target {
            // A unicast NS is a neighbour unreachability probe (RFC 4861 §7.3.1). It must be
            // answered too, or the asker's entry goes stale and traffic stops (MetalLB #2920).
            if eth.dst != self.mac {
                return Verdict::Drop(DropReason::NotForUs);
            }
            ReplyKind::NaUnicastNs
        } else {
            return Verdict::Drop(DropReason::InvalidNdp);
        };
        if !self.v6.contains(&target) {
            return Verdict::Drop(DropReason::NotOwned);
        }
        // RFC 4861 §7.2.4: to a DAD probe answer all-nodes with S=0; otherwise unicast to the
        // solicitor with S=1. O=1: the address is ours, not anycast or proxied, and a
        // failover must replace cached entries. R=0: we are not a router for it. The source
        // address is the target itself and the target link-layer option is included.
        let (dst_ip, dst_mac, solicited) = if dad {
            (ALL_NODES, multicast_mac(&ALL_NODES), false)
        } else {
            (ip.src, options.source_lla.unwrap_or(eth.src), true)
        };
        let reply = Frame {
            eth: EthernetHeader {
                dst: dst_mac,
                src: self.mac,
                vlan: eth.vlan,
                ethertype: ETHERTYPE_IPV6,
            },
            payload: Payload::Ndp {
                ip: Ipv6Header::ndp(target, dst_ip),
                msg: NdpMessage::NeighborAdvert {
                    flags: NaFlags {
                        router: false,
                        solicited,
                        override_: true,
                    },
                    target,
                    options: NdpOptions {
                        target_lla: Some(self.mac),
                        ..NdpOptions::default()
                    },
                },
            },
        };
        Verdict::Reply {
            frame: reply.to_bytes(),
            kind,
        }
    }
}

/// Whether an ARP request comes from a sender a reply can go to. RFC 1122 §3.2.1.3 and
/// RFC 5227: 0.0.0.0 is only a sender in a probe (a request from a unicast MAC, answered so
/// the prober backs off); broadcast, multicast, loopback and the rest of 0.0.0.0/8 are never
/// a host's own address. A group MAC (Ethernet source or sender hardware address) is no
/// host either.
fn valid_arp_sender(eth: &EthernetHeader, arp: &ArpPacket) -> bool {
    let spa = arp.spa;
    let bad_ip = spa.is_broadcast()
        || spa.is_multicast()
        || spa.is_loopback()
        || (spa.octets()[0] == 0 && !spa.is_unspecified());
    !(bad_ip || eth.src.is_multicast() || arp.sha.is_multicast())
}

/// The frames that announce that `mac` now owns `ip`: for IPv4 a gratuitous ARP in request
/// form (RFC 5227 §2.3 announcement) and in reply form (for hosts that only update on
/// replies), both broadcast; for IPv6 one unsolicited NA to all-nodes with Override set and
/// Solicited clear (RFC 4861 §7.2.6).
pub fn announcements(mac: MacAddr, ip: IpAddr) -> Vec<BytesMut> {
    match ip {
        IpAddr::V4(a) => {
            let garp = |op, tha| Frame::arp_broadcast(mac, op, a, tha, a);
            vec![
                garp(ArpOp::Request, MacAddr::ZERO).to_bytes(),
                garp(ArpOp::Reply, MacAddr::BROADCAST).to_bytes(),
            ]
        }
        IpAddr::V6(a) => {
            let na = Frame {
                eth: EthernetHeader {
                    dst: multicast_mac(&ALL_NODES),
                    src: mac,
                    vlan: None,
                    ethertype: ETHERTYPE_IPV6,
                },
                payload: Payload::Ndp {
                    ip: Ipv6Header::ndp(a, ALL_NODES),
                    msg: NdpMessage::NeighborAdvert {
                        flags: NaFlags {
                            router: false,
                            solicited: false,
                            override_: true,
                        },
                        target: a,
                        options: NdpOptions {
                            target_lla: Some(mac),
                            ..NdpOptions::default()
                        },
                    },
                },
            };
            vec![na.to_bytes()]
        }
    }
}
