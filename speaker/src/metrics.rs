//! The speaker's Prometheus metrics (served on `/metrics` by `ferrolb-telemetry`).
//!
//! Protocol crates keep their own counters as plain numbers; [`Metrics`] turns snapshots of
//! them into Prometheus counters by adding the increase since the previous snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_bfd::BfdEvent;
use ferrolb_bgp::{PeerKey, PeerStatus, State};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// `peer` label (BGPPeer name and address).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
    pub address: String,
}

/// `peer` and `kind` labels of the BGP session errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerErrorLabel {
    pub peer: String,
    pub address: String,
    pub kind: String,
}

/// `peer`, `address` and `reason` labels of the BFD authentication failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerReasonLabel {
    pub peer: String,
    pub address: String,
    pub reason: String,
}

/// `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// `driver` label (`l2`, `bgp`, `bfd`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriverLabel {
    pub driver: String,
}

/// `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Every metric of the speaker. Cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// `ferrolb_speaker_bgp_session_up{peer,address}`: 1 while Established.
    pub session_up: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_bgp_session_flaps_total{peer,address}`.
    pub session_flaps: Family<PeerLabel, Counter>,
    /// `ferrolb_speaker_bgp_session_errors_total{peer,address,kind}`: failed connection
    /// attempts, NOTIFICATIONs and lost connections, by kind (`ferrolb_bgp::ErrorKind`).
    pub session_errors: Family<PeerErrorLabel, Counter>,
    /// `ferrolb_speaker_bgp_prefixes_advertised{peer,address}`.
    pub prefixes: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_l2_owned_ips`.
    pub l2_owned: Gauge,
    /// `ferrolb_speaker_l2_replies_total{kind}`.
    pub l2_replies: Family<KindLabel, Counter>,
    /// `ferrolb_speaker_l2_drops_total{reason}`.
    pub l2_drops: Family<ReasonLabel, Counter>,
    /// `ferrolb_speaker_l2_conflicts_total`: every frame claiming one of our IPs.
    pub l2_conflicts: Counter,
    /// `ferrolb_speaker_l2_conflicts_suppressed_total`: of those, not logged (same IP and MAC
    /// logged less than the interval ago).
    pub l2_conflicts_suppressed: Counter,
    /// `ferrolb_speaker_l2_announcements_sent_total`.
    pub l2_announcements: Counter,
    /// `ferrolb_speaker_members`: live members seen by this node (itself included).
    pub members: Gauge,
    /// `ferrolb_speaker_l2_failovers_total`: IPs this node took over from another node.
    pub failovers: Counter,
    /// `ferrolb_speaker_config_errors`: invalid objects and files now.
    pub config_errors: Gauge,
    /// `ferrolb_speaker_driver_errors_total{driver}`: failed driver calls (each retry that
    /// fails again counts once more).
    pub driver_errors: Family<DriverLabel, Counter>,
    /// `ferrolb_speaker_driver_calls_pending_retry`: failed driver calls waiting for a retry.
    pub driver_retry_pending: Gauge,
    /// `ferrolb_speaker_bgp_unnumbered_peers_waiting`: unnumbered (`interface`) peers whose
    /// neighbour has not been heard on the link yet (no session until it is).
    pub unnumbered_waiting: Gauge,
    /// `ferrolb_speaker_bgp_routes_refused_no_extended_next_hop{peer,address}`: IPv4 routes
    /// not sent because their next hop is IPv6 and the peer did not negotiate RFC 8950.
    pub refused_no_ext_next_hop: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_status_write_errors_total{kind}`: failed writes of the speaker's own
    /// objects (`speaker_state`, `configuration_state`, `event`) and events dropped from a
    /// full queue (`event_dropped`); see [`crate::writer`].
    pub status_write_errors: Family<KindLabel, Counter>,
    /// `ferrolb_speaker_bfd_session_up{peer,address}`: 1 while the BFD session is Up.
    pub bfd_up: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_bfd_session_flaps_total{peer,address}`: Up sessions that went down.
    pub bfd_flaps: Family<PeerLabel, Counter>,
    /// `ferrolb_speaker_bfd_drops_total{reason}`: received BFD packets discarded, by
    /// `ferrolb_bfd::DropReason` label (`ttl_not_255`, `ttl_below_minimum`, ...).
    pub bfd_drops: Family<ReasonLabel, Counter>,
    /// `ferrolb_speaker_bfd_auth_failures_total{peer,address,reason}`: packets from the peer
    /// that failed authentication (RFC 5880 §6.7), by `ferrolb_bfd::DropReason` label
    /// (`auth_bad_hash`, `auth_key_id_mismatch`, `auth_missing`, ...). Also counted in
    /// `bfd_drops_total`.
    pub bfd_auth_failures: Family<PeerReasonLabel, Counter>,
    /// `ferrolb_speaker_bfd_echo_packets_sent_total`, `..._received_total` (came back),
    /// `..._dropped_total` (discarded on return) and `ferrolb_speaker_bfd_echo_send_errors_total`
    /// (no neighbour entry for the peer, kernel refused),
    /// `ferrolb_speaker_bfd_echo_probes_not_returned_total`, in [`BFD_ECHO_COUNTERS`] order.
    pub bfd_echo: [Counter; 5],
    /// `ferrolb_speaker_bfd_echo_active{peer,address}`: 1 while our echo function runs.
    pub bfd_echo_active: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_bfd_echo_loop_ok{peer,address}`: 1 while this node loops the peer's
    /// echoes (IPv4 forwarding on its interface); 0: we advertise no echo receive interval.
    pub bfd_echo_loop_ok: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_bfd_echo_peer_loops{peer,address}`: 1 once the peer returned our
    /// echoes (they detect failures), 0 after a probe got nothing back (detection at the
    /// control packets' rate); absent while not known.
    pub bfd_echo_peer_loops: Family<PeerLabel, Gauge>,
    /// `ferrolb_speaker_l2_owner_changes_total`: L2 IPs whose owner node changed, as this
    /// node's election saw it (every node counts the same change).
    pub l2_owner_changes: Counter,
    /// `ferrolb_speaker_membership_NAME_total`: every membership counter, in
    /// `MEMBERSHIP_COUNTERS` order; see [`Self::observe_members`].
    pub membership: [Counter; 12],
    last: std::sync::Arc<std::sync::Mutex<Last>>,
}

/// The BFD echo counters, by metric name (`ferrolb_speaker_NAME_total`).
const BFD_ECHO_COUNTERS: [(&str, &str); 5] = [
    ("bfd_echo_packets_sent", "BFD echo packets sent"),
    (
        "bfd_echo_packets_received",
        "BFD echo packets that came back",
    ),
    (
        "bfd_echo_packets_dropped",
        "Returned BFD echo packets discarded (discriminator, TTL, stale sequence)",
    ),
    (
        "bfd_echo_send_errors",
        "BFD echo packets not sent (peer not in the neighbour table, kernel refused)",
    ),
    (
        "bfd_echo_probes_not_returned",
        "Probes of our BFD echo function that got nothing back (the peer does not loop them; the session stays up)",
    ),
];

/// The membership counters, by metric name (`ferrolb_speaker_membership_NAME_total`).
const MEMBERSHIP_COUNTERS: [(&str, &str); 12] = [
    ("member_up", "Peers that became live (joined or came back)"),
    (
        "member_down",
        "Peers removed from the live set (crashed or left): failover triggers",
    ),
    ("leaves_received", "Authenticated leave notices received"),
    (
        "rejoins",
        "Times this speaker found itself declared down and rejoined",
    ),
    (
        "auth_failures",
        "Datagrams dropped: HMAC tag missing or wrong (wrong or rotated key?)",
    ),
    (
        "malformed",
        "Authenticated datagrams that could not be decoded",
    ),
    ("messages_in", "Membership datagrams received"),
    ("messages_out", "Membership datagrams sent"),
    (
        "bytes_in",
        "Membership UDP payload bytes received (IP/UDP headers not included)",
    ),
    ("bytes_out", "Membership UDP payload bytes sent"),
    (
        "declared_dead",
        "Members this speaker's ring monitor declared down (silent and unreachable)",
    ),
    (
        "death_notices_received",
        "Death notices received from other members' ring monitors",
    ),
];

/// The counters of one membership snapshot, in [`MEMBERSHIP_COUNTERS`] order.
fn membership_values(m: &MembershipSnapshot) -> [u64; 12] {
    [
        m.member_up,
        m.member_down,
        m.leaves_received,
        m.rejoins,
        m.auth_failures,
        m.malformed,
        m.messages_in,
        m.messages_out,
        m.bytes_in,
        m.bytes_out,
        m.declared_dead,
        m.death_notices_received,
    ]
}

use crate::membership::MetricsSnapshot as MembershipSnapshot;

#[derive(Debug, Default)]
struct Last {
    flaps: BTreeMap<PeerKey, u64>,
    errors: BTreeMap<(PeerKey, ferrolb_bgp::ErrorKind), u64>,
    replies: BTreeMap<String, u64>,
    drops: BTreeMap<String, u64>,
    bfd_drops: BTreeMap<String, u64>,
    bfd_auth: BTreeMap<(IpAddr, ferrolb_bfd::DropReason), u64>,
    bfd_echo: [u64; 5],
    conflicts: u64,
    conflicts_suppressed: u64,
    announcements: u64,
    membership: [u64; 12],
    /// The `peer`/`address` label each BGP peer's gauges carry now.
    labels: BTreeMap<PeerKey, PeerLabel>,
}

mod register;

impl Metrics {
    /// Updates `members` and every `membership_*_total` counter from a snapshot.
    pub fn observe_members(&self, snap: &MembershipSnapshot) {
        self.members
            .set(i64::try_from(snap.members).unwrap_or(i64::MAX));
        let mut last = self.last.lock().expect("metrics lock");
        let now = membership_values(snap);
        for ((n, prev), c) in now.iter().zip(&mut last.membership).zip(&self.membership) {
            c.inc_by(n.saturating_sub(*prev));
            *prev = (*prev).max(*n);
        }
    }

    /// Updates the BFD gauges from one session state change (`names` maps address to peer
    /// name).
    pub fn observe_bfd(&self, names: &BTreeMap<IpAddr, String>, ev: &BfdEvent) {
        let label = PeerLabel {
            peer: names.get(&ev.peer).cloned().unwrap_or_default(),
            address: ev.peer.to_string(),
        };
        let up = ev.new == ferrolb_bfd::State::Up;
        self.bfd_up.get_or_create(&label).set(i64::from(up));
        if ev.old == ferrolb_bfd::State::Up && !up {
            self.bfd_flaps.get_or_create(&label).inc();
        }
    }

    /// Sets the BFD gauges from the manager's session list (every configured session, also
    /// one that never came up), so `bfd_session_up` is 0 for a session stuck Down.
    pub fn observe_bfd_sessions(
        &self,
        names: &BTreeMap<IpAddr, String>,
        sessions: &[ferrolb_bfd::SessionStatus],
    ) {
        for s in sessions {
            let label = PeerLabel {
                peer: names.get(&s.peer).cloned().unwrap_or_default(),
                address: s.peer.to_string(),
            };
            self.bfd_up
                .get_or_create(&label)
                .set(i64::from(s.info.state == ferrolb_bfd::State::Up));
            drop(self.bfd_flaps.get_or_create(&label));
            self.observe_bfd_auth(&label, s);
            let e = &s.info.echo;
            if e.enabled {
                let active = i64::from(e.tx_interval.is_some());
                self.bfd_echo_active.get_or_create(&label).set(active);
                self.bfd_echo_loop_ok
                    .get_or_create(&label)
                    .set(i64::from(e.loop_ok));
                if let Some(l) = e.peer_loops {
                    self.bfd_echo_peer_loops
                        .get_or_create(&label)
                        .set(i64::from(l));
                } else {
                    self.bfd_echo_peer_loops.remove(&label);
                }
            } else {
                self.forget_bfd_echo(&label);
            }
        }
    }

    /// Turns a session's authentication drop counts (totals since the session was added)
    /// into increments of `bfd_auth_failures_total`; every reason has a series, 0 or not
    /// (as `bfd_drops_total`), so alerts and dashboards see the peer before its first failure.
    fn observe_bfd_auth(&self, label: &PeerLabel, s: &ferrolb_bfd::SessionStatus) {
        let mut last = self.last.lock().expect("metrics lock");
        for reason in ferrolb_bfd::DropReason::ALL.iter().filter(|r| r.is_auth()) {
            let n = s.drops.get(reason).copied().unwrap_or(0);
            let prev = last.bfd_auth.insert((s.peer, *reason), n).unwrap_or(0);
            self.bfd_auth_failures
                .get_or_create(&PeerReasonLabel {
                    peer: label.peer.clone(),
                    address: label.address.clone(),
                    reason: reason.as_str().to_string(),
                })
                .inc_by(n.saturating_sub(prev));
        }
    }

    /// Counts L2 owner changes between two elections: IPs of a Service whose owner was a
    /// node and is now another node.
    pub fn observe_owners(
        &self,
        old: &BTreeMap<String, BTreeMap<IpAddr, crate::decide::L2Owner>>,
        new: &BTreeMap<String, BTreeMap<IpAddr, crate::decide::L2Owner>>,
    ) {
        let changes = new
            .iter()
            .flat_map(|(svc, ips)| ips.iter().map(move |(ip, o)| (svc, ip, o)))
            .filter(|(svc, ip, o)| {
                let before = old.get(*svc).and_then(|m| m.get(*ip));
                before.is_some_and(|b| b.node.is_some() && o.node.is_some() && b.node != o.node)
            })
            .count();
        self.l2_owner_changes.inc_by(changes as u64);
    }

    /// Updates the BGP metrics from the session board (`names` maps VRF and address to peer
    /// name: the `peer` label, unique also when two VRFs have a peer at the same address).
    pub fn observe_bgp(
        &self,
        names: &BTreeMap<PeerKey, String>,
        sessions: &BTreeMap<PeerKey, PeerStatus>,
    ) {
        let mut last = self.last.lock().expect("metrics lock");
        // Peers that are gone (BGPPeer deleted, node no longer selected) leave no stale
        // "down" series behind for the alerts.
        let gone: Vec<PeerKey> = last
            .labels
            .keys()
            .filter(|a| !sessions.contains_key(*a))
            .cloned()
            .collect();
        for addr in gone {
            if let Some(l) = last.labels.remove(&addr) {
                self.forget_peer(&l);
            }
            // A session to this address later starts its drop totals from 0 again.
            last.bfd_auth.retain(|(a, _), _| *a != addr.addr);
        }
        for (addr, s) in sessions {
            let label = PeerLabel {
                peer: names.get(addr).cloned().unwrap_or_default(),
                address: addr.addr.to_string(),
            };
            if let Some(old) = last.labels.insert(addr.clone(), label.clone())
                && old != label
            {
                // Renamed peer: its old series go.
                self.forget_peer(&old);
            }
            self.session_up
                .get_or_create(&label)
                .set(i64::from(s.state == State::Established));
            self.prefixes
                .get_or_create(&label)
                .set(i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX));
            self.refused_no_ext_next_hop
                .get_or_create(&label)
                .set(i64::try_from(s.needs_extended_next_hop).unwrap_or(i64::MAX));
            let prev = last.flaps.insert(addr.clone(), s.flaps).unwrap_or(0);
            self.session_flaps
                .get_or_create(&label)
                .inc_by(s.flaps.saturating_sub(prev));
            for (kind, n) in &s.errors {
                let prev = last.errors.insert((addr.clone(), *kind), *n).unwrap_or(0);
                self.session_errors
                    .get_or_create(&PeerErrorLabel {
                        peer: label.peer.clone(),
                        address: label.address.clone(),
                        kind: kind.as_str().to_string(),
                    })
                    .inc_by(n.saturating_sub(prev));
            }
        }
    }

    /// Updates the L2 counters from the responder's snapshot.
    /// Drops every per-peer series of a peer that is gone or renamed.
    fn forget_peer(&self, l: &PeerLabel) {
        self.session_up.remove(l);
        self.prefixes.remove(l);
        self.refused_no_ext_next_hop.remove(l);
        self.bfd_up.remove(l);
        self.forget_bfd_echo(l);
        for reason in ferrolb_bfd::DropReason::ALL.iter().filter(|r| r.is_auth()) {
            self.bfd_auth_failures.remove(&PeerReasonLabel {
                peer: l.peer.clone(),
                address: l.address.clone(),
                reason: reason.as_str().to_string(),
            });
        }
    }

    /// Drops the echo series of a peer whose profile has no echo (any more).
    fn forget_bfd_echo(&self, l: &PeerLabel) {
        self.bfd_echo_active.remove(l);
        self.bfd_echo_loop_ok.remove(l);
        self.bfd_echo_peer_loops.remove(l);
    }

    /// Turns the BFD manager's drop counts (totals since it started) into counter increments.
    pub fn observe_bfd_counters(&self, c: &ferrolb_bfd::BfdCounters) {
        let mut last = self.last.lock().expect("metrics lock");
        for (reason, n) in &c.drops {
            let k = reason.as_str().to_string();
            let prev = last.bfd_drops.insert(k.clone(), *n).unwrap_or(0);
            self.bfd_drops
                .get_or_create(&ReasonLabel { reason: k })
                .inc_by(n.saturating_sub(prev));
        }
        let now = [
            c.echo_out,
            c.echo_in,
            c.echo_drops,
            c.echo_send_errors,
            c.echo_not_returned,
        ];
        for ((counter, prev), n) in self.bfd_echo.iter().zip(&mut last.bfd_echo).zip(now) {
            counter.inc_by(n.saturating_sub(*prev));
            *prev = n;
        }
    }

    pub fn observe_l2(&self, c: &ferrolb_arp::Counters) {
        let mut last = self.last.lock().expect("metrics lock");
        for (kind, n) in &c.replies {
            let k = format!("{kind:?}");
            let prev = last.replies.insert(k.clone(), *n).unwrap_or(0);
            self.l2_replies
                .get_or_create(&KindLabel { kind: k })
                .inc_by(n.saturating_sub(prev));
        }
        for (reason, n) in &c.drops {
            let k = format!("{reason:?}");
            let prev = last.drops.insert(k.clone(), *n).unwrap_or(0);
            self.l2_drops
                .get_or_create(&ReasonLabel { reason: k })
                .inc_by(n.saturating_sub(prev));
        }
        self.l2_conflicts
            .inc_by(c.conflicts.saturating_sub(last.conflicts));
        last.conflicts = last.conflicts.max(c.conflicts);
        self.l2_conflicts_suppressed.inc_by(
            c.conflicts_suppressed
                .saturating_sub(last.conflicts_suppressed),
        );
        last.conflicts_suppressed = last.conflicts_suppressed.max(c.conflicts_suppressed);
        self.l2_announcements
            .inc_by(c.announcements_sent.saturating_sub(last.announcements));
        last.announcements = last.announcements.max(c.announcements_sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn snapshots_become_monotonic_counters() {
        let m = Metrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        let mut c = ferrolb_arp::Counters {
            conflicts: 2,
            ..Default::default()
        };
        m.observe_l2(&c);
        c.conflicts = 5;
        m.observe_l2(&c);
        m.observe_l2(&c);
        assert_eq!(m.l2_conflicts.get(), 5);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let addr = PeerKey::from(ip);
        let names = BTreeMap::from([(addr.clone(), "tor".to_string())]);
        let st = PeerStatus {
            flaps: 3,
            errors: BTreeMap::from([(ferrolb_bgp::ErrorKind::NoAnswer, 4)]),
            ..Default::default()
        };
        m.observe_bgp(&names, &BTreeMap::from([(addr.clone(), st.clone())]));
        m.observe_bgp(&names, &BTreeMap::from([(addr, st)]));
        let label = PeerLabel {
            peer: "tor".into(),
            address: ip.to_string(),
        };
        assert_eq!(m.session_flaps.get_or_create(&label).get(), 3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains("ferrolb_speaker_l2_conflicts_total 5"),
            "{text}"
        );
        assert!(
            text.contains(
                "ferrolb_speaker_bgp_session_flaps_total{peer=\"tor\",address=\"192.0.2.1\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ferrolb_speaker_bgp_session_errors_total{peer=\"tor\",address=\"192.0.2.1\",kind=\"no_answer\"} 4"
            ),
            "{text}"
        );
    }
}
