//! The speaker's metrics, through their public API and the Prometheus text they encode to:
//! every membership counter exported, BFD state and flaps, L2 owner changes, and no stale
//! per-peer series after a peer is gone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_bfd::{BfdEvent, Diag, State as BfdState};
use ferrolb_bgp::{PeerKey, PeerStatus, State};
use ferrolb_speaker::decide::L2Owner;
use ferrolb_speaker::membership::MetricsSnapshot;
use ferrolb_speaker::metrics::Metrics;
use prometheus_client::registry::Registry;

fn setup() -> (Metrics, Registry) {
    let m = Metrics::default();
    let mut reg = Registry::default();
    m.register(&mut reg);
    (m, reg)
}

fn text(reg: &Registry) -> String {
    let mut t = String::new();
    prometheus_client::encoding::text::encode(&mut t, reg).unwrap();
    t
}

#[track_caller]
fn has(t: &str, line: &str) {
    assert!(t.lines().any(|l| l == line), "want {line:?} in\n{t}");
}

#[test]
fn every_membership_counter_is_exported() {
    let (m, reg) = setup();
    let mut s = MetricsSnapshot {
        members: 3,
        member_up: 2,
        member_down: 1,
        leaves_received: 1,
        rejoins: 1,
        auth_failures: 7,
        malformed: 2,
        messages_in: 100,
        messages_out: 90,
        bytes_in: 6400,
        bytes_out: 5000,
        declared_dead: 1,
        death_notices_received: 2,
    };
    m.observe_members(&s);
    s.auth_failures = 9;
    m.observe_members(&s);
    m.observe_members(&s);
    let t = text(&reg);
    has(&t, "ferrolb_speaker_members 3");
    for line in [
        "ferrolb_speaker_membership_member_up_total 2",
        "ferrolb_speaker_membership_member_down_total 1",
        "ferrolb_speaker_membership_leaves_received_total 1",
        "ferrolb_speaker_membership_rejoins_total 1",
        "ferrolb_speaker_membership_auth_failures_total 9",
        "ferrolb_speaker_membership_malformed_total 2",
        "ferrolb_speaker_membership_messages_in_total 100",
        "ferrolb_speaker_membership_messages_out_total 90",
        "ferrolb_speaker_membership_bytes_in_total 6400",
        "ferrolb_speaker_membership_bytes_out_total 5000",
        "ferrolb_speaker_membership_declared_dead_total 1",
        "ferrolb_speaker_membership_death_notices_received_total 2",
    ] {
        has(&t, line);
    }
    // Every field of the snapshot has its counter (a new field must be exported too).
    let fields = format!("{s:?}").matches(": ").count() - 1; // minus `members`, a gauge
    assert_eq!(
        t.matches("# TYPE ferrolb_speaker_membership_").count(),
        fields
    );
}

fn bfd(peer: IpAddr, old: BfdState, new: BfdState) -> BfdEvent {
    BfdEvent {
        peer,
        old,
        new,
        diag: Diag::ControlDetectionTimeExpired,
        remote_state: BfdState::Up,
    }
}

#[test]
fn bfd_state_and_flaps_and_no_stale_series() {
    let (m, reg) = setup();
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let names = BTreeMap::from([(a, "tor".to_string())]);
    let up = PeerStatus {
        state: State::Established,
        ..Default::default()
    };
    let keys = BTreeMap::from([(PeerKey::from(a), "tor".to_string())]);
    m.observe_bgp(&keys, &BTreeMap::from([(PeerKey::from(a), up)]));
    m.observe_bfd(&names, &bfd(a, BfdState::Down, BfdState::Init));
    m.observe_bfd(&names, &bfd(a, BfdState::Init, BfdState::Up));
    let t = text(&reg);
    has(
        &t,
        r#"ferrolb_speaker_bfd_session_up{peer="tor",address="192.0.2.1"} 1"#,
    );
    m.observe_bfd(&names, &bfd(a, BfdState::Up, BfdState::Down));
    m.observe_bfd(&names, &bfd(a, BfdState::Down, BfdState::Init));
    let t = text(&reg);
    has(
        &t,
        r#"ferrolb_speaker_bfd_session_up{peer="tor",address="192.0.2.1"} 0"#,
    );
    has(
        &t,
        r#"ferrolb_speaker_bfd_session_flaps_total{peer="tor",address="192.0.2.1"} 1"#,
    );
    has(
        &t,
        r#"ferrolb_speaker_bgp_session_up{peer="tor",address="192.0.2.1"} 1"#,
    );
    // The peer is deleted: its up/down gauges go (an alert must not fire for it).
    m.observe_bgp(&BTreeMap::new(), &BTreeMap::new());
    let t = text(&reg);
    assert!(!t.contains("ferrolb_speaker_bfd_session_up{"), "{t}");
    assert!(!t.contains("ferrolb_speaker_bgp_session_up{"), "{t}");
}

/// The same address in two VRFs is two peers: two series, told apart by the `peer` label
/// (the BGPPeer name); one going takes only its gauges.
#[test]
fn peers_at_one_address_in_two_vrfs_have_their_own_series() {
    let (m, reg) = setup();
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let (red, blue) = (PeerKey::new(Some("red"), a), PeerKey::new(Some("blue"), a));
    let names = BTreeMap::from([
        (red.clone(), "tor-red".to_string()),
        (blue.clone(), "tor-blue".to_string()),
    ]);
    let up = PeerStatus {
        state: State::Established,
        ..Default::default()
    };
    let down = PeerStatus::default();
    m.observe_bgp(
        &names,
        &BTreeMap::from([(red.clone(), up.clone()), (blue, down)]),
    );
    let t = text(&reg);
    has(
        &t,
        r#"ferrolb_speaker_bgp_session_up{peer="tor-red",address="192.0.2.1"} 1"#,
    );
    has(
        &t,
        r#"ferrolb_speaker_bgp_session_up{peer="tor-blue",address="192.0.2.1"} 0"#,
    );
    m.observe_bgp(&names, &BTreeMap::from([(red, up)]));
    let t = text(&reg);
    assert!(
        !t.contains(r#"ferrolb_speaker_bgp_session_up{peer="tor-blue""#),
        "{t}"
    );
    has(
        &t,
        r#"ferrolb_speaker_bgp_session_up{peer="tor-red",address="192.0.2.1"} 1"#,
    );
}

fn owners(list: &[(&str, &str, Option<&str>)]) -> BTreeMap<String, BTreeMap<IpAddr, L2Owner>> {
    let mut out: BTreeMap<String, BTreeMap<IpAddr, L2Owner>> = BTreeMap::new();
    for (svc, ip, node) in list {
        out.entry(svc.to_string()).or_default().insert(
            ip.parse().unwrap(),
            L2Owner {
                node: node.map(str::to_string),
                interfaces: Default::default(),
            },
        );
    }
    out
}

#[test]
fn l2_owner_changes_count_moves_only() {
    let (m, reg) = setup();
    let before = owners(&[
        ("default/a", "192.0.2.10", Some("n1")),
        ("default/b", "192.0.2.11", Some("n2")),
        ("default/c", "192.0.2.12", None),
    ]);
    let after = owners(&[
        ("default/a", "192.0.2.10", Some("n2")), // moved: counted
        ("default/b", "192.0.2.11", Some("n2")), // same owner
        ("default/c", "192.0.2.12", Some("n1")), // first owner: not a change
        ("default/d", "192.0.2.13", Some("n1")), // new Service
    ]);
    m.observe_owners(&before, &after);
    m.observe_owners(&after, &after);
    has(&text(&reg), "ferrolb_speaker_l2_owner_changes_total 1");
}

fn echo_session(peer: IpAddr, echo: ferrolb_bfd::EchoInfo) -> ferrolb_bfd::SessionStatus {
    use std::time::Duration;
    let ms = Duration::from_millis;
    ferrolb_bfd::SessionStatus {
        peer,
        local: "192.0.2.10".parse().unwrap(),
        ifname: None,
        source_port: 49152,
        multihop: false,
        drops: Default::default(),
        last_auth_failure: None,
        info: ferrolb_bfd::SessionInfo {
            state: BfdState::Up,
            remote_state: BfdState::Up,
            local_discr: 1,
            remote_discr: 2,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            desired_min_tx: ms(300),
            required_min_rx: ms(1000),
            remote_desired_min_tx: ms(300),
            remote_min_rx: ms(300),
            remote_detect_mult: 3,
            detect_mult: 3,
            tx_interval: ms(300),
            detection_time: ms(3000),
            poll_active: false,
            echo,
        },
        packets_in: 0,
        packets_out: 0,
        state_changes: 0,
    }
}

#[test]
fn bfd_echo_counters_and_gauges() {
    let (m, reg) = setup();
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let names = BTreeMap::from([(a, "tor".to_string())]);
    let mut c = ferrolb_bfd::BfdCounters {
        echo_out: 10,
        echo_in: 8,
        echo_drops: 1,
        echo_send_errors: 2,
        ..Default::default()
    };
    m.observe_bfd_counters(&c);
    c.echo_out = 15;
    m.observe_bfd_counters(&c);
    let running = ferrolb_bfd::EchoInfo {
        enabled: true,
        loop_ok: false,
        tx_interval: Some(std::time::Duration::from_millis(50)),
        ..Default::default()
    };
    m.observe_bfd_sessions(&names, &[echo_session(a, running)]);
    let t = text(&reg);
    has(&t, "ferrolb_speaker_bfd_echo_packets_sent_total 15");
    has(&t, "ferrolb_speaker_bfd_echo_packets_received_total 8");
    has(&t, "ferrolb_speaker_bfd_echo_packets_dropped_total 1");
    has(&t, "ferrolb_speaker_bfd_echo_send_errors_total 2");
    has(
        &t,
        r#"ferrolb_speaker_bfd_echo_active{peer="tor",address="192.0.2.1"} 1"#,
    );
    has(
        &t,
        r#"ferrolb_speaker_bfd_echo_loop_ok{peer="tor",address="192.0.2.1"} 0"#,
    );
    // echoMode switched off: the per-peer echo series go.
    m.observe_bfd_sessions(&names, &[echo_session(a, Default::default())]);
    let t = text(&reg);
    assert!(!t.contains("ferrolb_speaker_bfd_echo_active{"), "{t}");
    assert!(!t.contains("ferrolb_speaker_bfd_echo_loop_ok{"), "{t}");
}

#[test]
fn bfd_auth_failures_per_peer_and_reason() {
    let (m, reg) = setup();
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let names = BTreeMap::from([(a, "tor".to_string())]);
    let mut s = echo_session(a, Default::default());
    s.drops = BTreeMap::from([
        (ferrolb_bfd::DropReason::AuthKeyIdMismatch, 4),
        (ferrolb_bfd::DropReason::NoSession, 9),
    ]);
    m.observe_bfd_sessions(&names, std::slice::from_ref(&s));
    s.drops
        .insert(ferrolb_bfd::DropReason::AuthKeyIdMismatch, 6);
    s.drops.insert(ferrolb_bfd::DropReason::AuthBadHash, 1);
    m.observe_bfd_sessions(&names, std::slice::from_ref(&s));
    let t = text(&reg);
    has(
        &t,
        r#"ferrolb_speaker_bfd_auth_failures_total{peer="tor",address="192.0.2.1",reason="auth_key_id_mismatch"} 6"#,
    );
    has(
        &t,
        r#"ferrolb_speaker_bfd_auth_failures_total{peer="tor",address="192.0.2.1",reason="auth_bad_hash"} 1"#,
    );
    assert!(
        !t.contains(r#"reason="no_session"} 9"#),
        "not an auth failure: {t}"
    );
    // Every authentication reason has its series, 0 until it happens.
    has(
        &t,
        r#"ferrolb_speaker_bfd_auth_failures_total{peer="tor",address="192.0.2.1",reason="auth_missing"} 0"#,
    );
    // The peer is deleted: its authentication series go with its other series.
    let keys = BTreeMap::from([(PeerKey::from(a), "tor".to_string())]);
    m.observe_bgp(
        &keys,
        &BTreeMap::from([(PeerKey::from(a), PeerStatus::default())]),
    );
    m.observe_bgp(&BTreeMap::new(), &BTreeMap::new());
    let t = text(&reg);
    assert!(
        !t.contains("ferrolb_speaker_bfd_auth_failures_total{"),
        "{t}"
    );
    // Added again, its new session's failures count from 0.
    s.drops = BTreeMap::from([(ferrolb_bfd::DropReason::AuthBadHash, 2)]);
    m.observe_bfd_sessions(&names, std::slice::from_ref(&s));
    has(
        &text(&reg),
        r#"ferrolb_speaker_bfd_auth_failures_total{peer="tor",address="192.0.2.1",reason="auth_bad_hash"} 2"#,
    );
}
