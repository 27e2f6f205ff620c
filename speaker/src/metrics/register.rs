//! The registration of every speaker metric, grouped by what it watches.

use prometheus_client::registry::Registry;

use super::{BFD_ECHO_COUNTERS, KindLabel, MEMBERSHIP_COUNTERS, Metrics};

impl Metrics {
    fn register_bfd_echo(&self, r: &mut Registry) {
        for ((name, help), c) in BFD_ECHO_COUNTERS.iter().zip(&self.bfd_echo) {
            r.register(*name, *help, c.clone());
        }
        r.register(
            "bfd_echo_active",
            "1 while the BFD echo function runs on the session",
            self.bfd_echo_active.clone(),
        );
        r.register(
            "bfd_echo_loop_ok",
            "1 while this node loops the peer's BFD echo packets (IP forwarding on)",
            self.bfd_echo_loop_ok.clone(),
        );
        r.register(
            "bfd_echo_peer_loops",
            "1 once the peer returned our BFD echo packets, 0 after a probe got nothing back",
            self.bfd_echo_peer_loops.clone(),
        );
    }

    /// Registers every metric under `ferrolb_speaker_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("ferrolb_speaker");
        self.register_bgp(r);
        self.register_l2(r);
        self.register_bfd(r);
        self.register_bfd_echo(r);
        self.register_run(r);
        // One counter per membership number: each has its own help text and no label.
        let m = r.sub_registry_with_prefix("membership");
        for ((name, help), c) in MEMBERSHIP_COUNTERS.iter().zip(&self.membership) {
            m.register(*name, *help, c.clone());
        }
    }

    /// BGP sessions and routes.
    fn register_bgp(&self, r: &mut Registry) {
        r.register(
            "bgp_session_up",
            "1 while the BGP session is Established",
            self.session_up.clone(),
        );
        r.register(
            "bgp_session_flaps",
            "Established BGP sessions that went down",
            self.session_flaps.clone(),
        );
        r.register(
            "bgp_session_errors",
            "BGP session errors (failed attempts, NOTIFICATIONs, lost connections) by kind",
            self.session_errors.clone(),
        );
        r.register(
            "bgp_prefixes_advertised",
            "Prefixes the peer has from this node",
            self.prefixes.clone(),
        );
        r.register(
            "bgp_unnumbered_peers_waiting",
            "Unnumbered (interface) peers whose neighbour has not been heard on the link yet",
            self.unnumbered_waiting.clone(),
        );
        r.register(
            "bgp_routes_refused_no_extended_next_hop",
            "IPv4 routes not sent: their next hop is IPv6 and the peer did not negotiate extended next hop (RFC 8950)",
            self.refused_no_ext_next_hop.clone(),
        );
    }

    /// ARP/NDP answers, announcements and L2 ownership.
    fn register_l2(&self, r: &mut Registry) {
        r.register(
            "l2_owned_ips",
            "IPs this node answers ARP/NDP for",
            self.l2_owned.clone(),
        );
        r.register(
            "l2_replies",
            "ARP replies and neighbor advertisements sent",
            self.l2_replies.clone(),
        );
        r.register(
            "l2_drops",
            "ARP/NDP frames dropped, by reason",
            self.l2_drops.clone(),
        );
        r.register(
            "l2_conflicts",
            "Other hosts claiming an IP this node owns",
            self.l2_conflicts.clone(),
        );
        r.register(
            "l2_conflicts_suppressed",
            "Conflicting frames not logged: same IP and MAC logged within the interval",
            self.l2_conflicts_suppressed.clone(),
        );
        r.register(
            "l2_announcements_sent",
            "Gratuitous ARP and unsolicited NA frames sent",
            self.l2_announcements.clone(),
        );
        r.register(
            "l2_failovers",
            "L2 IPs this node took over from another node",
            self.failovers.clone(),
        );
        r.register(
            "l2_owner_changes",
            "L2 IPs whose owner node changed (as this node's election saw it)",
            self.l2_owner_changes.clone(),
        );
    }

    /// BFD sessions (the echo function: `register_bfd_echo`).
    fn register_bfd(&self, r: &mut Registry) {
        r.register(
            "bfd_session_up",
            "1 while the BFD session is Up",
            self.bfd_up.clone(),
        );
        r.register(
            "bfd_session_flaps",
            "Up BFD sessions that went down",
            self.bfd_flaps.clone(),
        );
        r.register(
            "bfd_drops",
            "Received BFD packets discarded, by reason",
            self.bfd_drops.clone(),
        );
        r.register(
            "bfd_auth_failures",
            "Received BFD packets that failed authentication (RFC 5880 6.7), by peer and reason",
            self.bfd_auth_failures.clone(),
        );
    }

    /// Membership size, configuration, drivers and the speaker's own writes.
    fn register_run(&self, r: &mut Registry) {
        r.register(
            "members",
            "Live speakers seen by this node, itself included",
            self.members.clone(),
        );
        r.register(
            "config_errors",
            "Invalid objects and files now",
            self.config_errors.clone(),
        );
        r.register(
            "driver_errors",
            "Failed driver calls (retried with backoff until they succeed)",
            self.driver_errors.clone(),
        );
        r.register(
            "driver_calls_pending_retry",
            "Failed driver calls waiting for a retry",
            self.driver_retry_pending.clone(),
        );
        r.register(
            "status_write_errors",
            "Failed writes of the speaker's own objects and events, by kind (retried or dropped)",
            self.status_write_errors.clone(),
        );
        for kind in crate::writer::KINDS {
            let _ = self.status_write_errors.get_or_create(&KindLabel {
                kind: kind.to_string(),
            });
        }
    }
}
