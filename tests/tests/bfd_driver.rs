//! The tokio driver (`BfdManager`) in-process, one per namespace: two of ours over IPv6
//! link-local (interface-bound sockets), events, state query, counters, `remove_session`
//! sending AdminDown; GTSM / malformed-packet drops counted by reason; the multihop receive
//! rules (port, destination, minimum TTL) through real sockets.

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use ferrolb_bfd::packet::{ControlPacket, Diag, DropReason, State};
use ferrolb_bfd::{BfdError, BfdEvent, BfdManager, BfdProfile, ManagerConfig};
use ferrolb_tests::bfd_peers::bfd_pair;
use ferrolb_tests::require_root;
use tokio::sync::oneshot;

fn fast() -> BfdProfile {
    BfdProfile::with_timers(Duration::from_millis(100), Duration::from_millis(100), 3)
}

async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<BfdEvent>,
    want: impl Fn(&BfdEvent) -> bool,
) -> Option<BfdEvent> {
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(ev) = rx.recv().await {
            if want(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn two_managers_link_local_up_then_remove_sends_admin_down() {
    if !require_root("two_managers_link_local_up_then_remove_sends_admin_down") {
        return;
    }
    let (a, b) = bfd_pair("bdr");
    a.ip(&["addr", "add", "fe80::a/64", "dev", "eth0", "nodad"])
        .unwrap();
    b.ip(&["addr", "add", "fe80::b/64", "dev", "eth0", "nodad"])
        .unwrap();
    let la: IpAddr = "fe80::a".parse().unwrap();
    let lb: IpAddr = "fe80::b".parse().unwrap();
    let (go_tx, go_rx) = oneshot::channel::<()>();

    // A: adds the session, reports when Up, removes it on `go`.
    let ta = a.spawn_thread(move || {
        runtime().block_on(async move {
            let cfg = ManagerConfig {
                ipv4: false,
                ..ManagerConfig::default()
            };
            let mgr = BfdManager::start(cfg).await.expect("start A");
            let mut ev = mgr.subscribe();
            mgr.add_session(lb, la, Some("eth0".into()), fast())
                .await
                .expect("add A");
            let dup = mgr.add_session(lb, la, Some("eth0".into()), fast()).await;
            assert!(
                matches!(dup, Err(BfdError::SessionExists { .. })),
                "duplicate session: {dup:?}"
            );
            // This manager has no IPv4 socket: an IPv4 session is refused, as are mixed
            // families and a profile asking for echo mode (IPv4 only).
            let v4 = mgr
                .add_session(
                    "192.0.2.2".parse().unwrap(),
                    "192.0.2.1".parse().unwrap(),
                    None,
                    fast(),
                )
                .await;
            assert!(matches!(v4, Err(BfdError::BadSession { .. })), "{v4:?}");
            let mixed = mgr
                .add_session(
                    "2001:db8::2".parse().unwrap(),
                    "192.0.2.1".parse().unwrap(),
                    None,
                    fast(),
                )
                .await;
            assert!(
                matches!(mixed, Err(BfdError::BadSession { .. })),
                "{mixed:?}"
            );
            let echo = BfdProfile {
                echo_mode: true,
                ..fast()
            };
            let echo = mgr
                .add_session(
                    "2001:db8::2".parse().unwrap(),
                    "2001:db8::1".parse().unwrap(),
                    None,
                    echo,
                )
                .await;
            assert!(
                matches!(
                    echo,
                    Err(BfdError::InvalidProfile {
                        field: "echoMode",
                        ..
                    })
                ),
                "{echo:?}"
            );
            let up = next_event(&mut ev, |e| e.new == State::Up).await;
            let status = mgr.session(lb).await.unwrap();
            let _ = go_rx.await;
            mgr.remove_session(lb).await.expect("remove");
            let admin = next_event(&mut ev, |e| e.new == State::AdminDown).await;
            let gone = mgr.session(lb).await.unwrap();
            (up, status, admin, gone, mgr.counters())
        })
    });
    // B: adds the session, waits for Up then for the Down caused by A's AdminDown.
    let tb = b.spawn_thread(move || {
        runtime().block_on(async move {
            let cfg = ManagerConfig {
                ipv4: false,
                ..ManagerConfig::default()
            };
            let mgr = BfdManager::start(cfg).await.expect("start B");
            let mut ev = mgr.subscribe();
            mgr.add_session(la, lb, Some("eth0".into()), fast())
                .await
                .expect("add B");
            let up = next_event(&mut ev, |e| e.new == State::Up).await;
            let _ = go_tx.send(());
            let down = next_event(&mut ev, |e| e.new == State::Down).await;
            let status = mgr.session(la).await.unwrap();
            mgr.shutdown().await.unwrap();
            (up, down, status, mgr.counters())
        })
    });
    let (a_up, a_status, a_admin, a_gone, a_counters) = ta.join().expect("thread A");
    let (b_up, b_down, b_status, b_counters) = tb.join().expect("thread B");

    assert_eq!(a_up.map(|e| e.peer), Some(lb));
    assert_eq!(b_up.map(|e| e.peer), Some(la));
    let st = a_status.expect("A has the session");
    assert_eq!(st.info.state, State::Up);
    assert_eq!(st.ifname.as_deref(), Some("eth0"));
    assert!(
        (49152..=65535).contains(&st.source_port),
        "{}",
        st.source_port
    );
    assert_eq!(st.info.remote_detect_mult, 3);
    // (remote_state is not checked here: B's last packet may still say Init.)
    let a_admin = a_admin.expect("A reported AdminDown");
    assert_eq!(
        (a_admin.peer, a_admin.old, a_admin.new, a_admin.diag),
        (lb, State::Up, State::AdminDown, Diag::AdministrativelyDown)
    );
    assert!(a_gone.is_none(), "session still listed after remove");
    assert_eq!(
        b_down,
        Some(BfdEvent {
            peer: la,
            old: State::Up,
            new: State::Down,
            diag: Diag::NeighborSignaledSessionDown,
            remote_state: State::AdminDown,
        })
    );
    assert!(
        !b_down.unwrap().is_failure(),
        "peer AdminDown is not a path failure"
    );
    let bs = b_status.expect("B has the session");
    assert_eq!(bs.info.remote_state, State::AdminDown);
    for c in [&a_counters, &b_counters] {
        assert!(c.packets_in > 0 && c.packets_out > 0, "{c:?}");
        assert!(c.state_changes >= 2, "{c:?}");
        // A forgets the session while B still talks to it: those packets have no session.
        let other: u64 = c
            .drops
            .iter()
            .filter(|(r, _)| **r != DropReason::NoSession)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(other, 0, "{c:?}");
    }
    assert_eq!(b_counters.drops(DropReason::NoSession), 0, "{b_counters:?}");
}

/// A valid Down packet from a peer we do not know.
fn stray_packet() -> Vec<u8> {
    ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: 7,
        your_discr: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
        auth: None,
    }
    .to_bytes()
    .to_vec()
}

#[test]
fn gtsm_and_malformed_packets_are_dropped_and_counted() {
    if !require_root("gtsm_and_malformed_packets_are_dropped_and_counted") {
        return;
    }
    let (a, _b) = bfd_pair("bdg");
    let counters = a.run_in(|| {
        runtime().block_on(async {
            let mgr = BfdManager::start(ManagerConfig::default())
                .await
                .expect("start");
            // A session for 192.0.2.2, so a packet from 192.0.2.1 (ourselves) has none.
            mgr.add_session(
                "192.0.2.2".parse().unwrap(),
                "192.0.2.1".parse().unwrap(),
                None,
                BfdProfile::default(),
            )
            .await
            .unwrap();
            let tx = UdpSocket::bind("192.0.2.1:0").unwrap();
            let to = "192.0.2.1:3784";
            // TTL 64: GTSM drop, whatever the content.
            tx.set_ttl(64).unwrap();
            tx.send_to(&stray_packet(), to).unwrap();
            tx.set_ttl(255).unwrap();
            // Version 2 / length 20 / multipoint / zero detect mult / unknown peer.
            let mut v2 = stray_packet();
            v2[0] = 0x40;
            tx.send_to(&v2, to).unwrap();
            let mut len = stray_packet();
            len[3] = 20;
            tx.send_to(&len, to).unwrap();
            let mut m = stray_packet();
            m[1] |= 1;
            tx.send_to(&m, to).unwrap();
            let mut mult = stray_packet();
            mult[2] = 0;
            tx.send_to(&mult, to).unwrap();
            tx.send_to(&stray_packet(), to).unwrap();
            tx.send_to(&[0x20], to).unwrap();
            // The session's own discriminator, but from the wrong source address.
            let discr = mgr
                .session("192.0.2.2".parse().unwrap())
                .await
                .unwrap()
                .expect("session")
                .info
                .local_discr;
            let mut spoof = stray_packet();
            spoof[8..12].copy_from_slice(&discr.to_be_bytes());
            tx.send_to(&spoof, to).unwrap();
            // IPv6 with hop limit 64.
            let tx6 = UdpSocket::bind("[2001:db8::1]:0").unwrap();
            socket2::SockRef::from(&tx6)
                .set_unicast_hops_v6(64)
                .unwrap();
            tx6.send_to(&stray_packet(), "[2001:db8::1]:3784").unwrap();
            let want = 9;
            for _ in 0..100 {
                if mgr.counters().packets_in >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let c = mgr.counters();
            mgr.shutdown().await.unwrap();
            c
        })
    });
    assert_eq!(counters.packets_in, 9, "{counters:?}");
    assert_eq!(
        counters.drops(DropReason::SourceMismatch),
        1,
        "{counters:?}"
    );
    assert_eq!(counters.drops(DropReason::TtlNot255), 2, "{counters:?}");
    assert_eq!(counters.drops(DropReason::BadVersion), 1, "{counters:?}");
    assert_eq!(counters.drops(DropReason::BadLength), 1, "{counters:?}");
    assert_eq!(counters.drops(DropReason::Multipoint), 1, "{counters:?}");
    assert_eq!(
        counters.drops(DropReason::ZeroDetectMult),
        1,
        "{counters:?}"
    );
    assert_eq!(counters.drops(DropReason::NoSession), 1, "{counters:?}");
    assert_eq!(counters.drops(DropReason::Short), 1, "{counters:?}");
}

/// Multihop (RFC 5883) receive rules through real sockets: the destination comes from
/// IP_PKTINFO / IPV6_PKTINFO, the TTL from the control messages, the port from the socket.
#[test]
fn multihop_packets_need_port_destination_and_minimum_ttl() {
    if !require_root("multihop_packets_need_port_destination_and_minimum_ttl") {
        return;
    }
    let (a, _b) = bfd_pair("bdm");
    // Our sessions' local addresses; the packets come from the pair's .1 / ::1 (loopback:
    // the TTL arrives as sent).
    a.ip(&["addr", "add", "192.0.2.11/24", "dev", "eth0"])
        .unwrap();
    a.ip(&["addr", "add", "2001:db8::11/64", "dev", "eth0", "nodad"])
        .unwrap();
    let (counters, v4_state) = a.run_in(|| {
        runtime().block_on(async {
            let mgr = BfdManager::start(ManagerConfig::default())
                .await
                .expect("start");
            for (peer, local) in [("192.0.2.1", "192.0.2.11"), ("2001:db8::1", "2001:db8::11")] {
                mgr.add_multihop_session(peer.parse().unwrap(), local.parse().unwrap(), fast())
                    .await
                    .unwrap();
            }
            let tx = UdpSocket::bind("192.0.2.1:0").unwrap();
            let tx6 = UdpSocket::bind("[2001:db8::1]:0").unwrap();
            let hops = |h: u32| {
                tx.set_ttl(h).unwrap();
                socket2::SockRef::from(&tx6).set_unicast_hops_v6(h).unwrap();
            };
            hops(200);
            tx.send_to(&stray_packet(), "192.0.2.11:4784").unwrap();
            tx6.send_to(&stray_packet(), "[2001:db8::11]:4784").unwrap();
            hops(255);
            // Not to the session's local address.
            tx.send_to(&stray_packet(), "192.0.2.1:4784").unwrap();
            tx6.send_to(&stray_packet(), "[2001:db8::1]:4784").unwrap();
            // The single-hop port.
            tx.send_to(&stray_packet(), "192.0.2.11:3784").unwrap();
            // Right port, address and TTL: the session takes it (Down -> Init).
            tx.send_to(&stray_packet(), "192.0.2.11:4784").unwrap();
            let peer: IpAddr = "192.0.2.1".parse().unwrap();
            let mut state = None;
            for _ in 0..100 {
                let c = mgr.counters();
                state = mgr.session(peer).await.unwrap().map(|s| s.info.state);
                if c.drops(DropReason::TtlBelowMinimum) >= 2
                    && c.drops(DropReason::DestinationMismatch) >= 2
                    && c.drops(DropReason::HopModeMismatch) >= 1
                    && state == Some(State::Init)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let c = mgr.counters();
            mgr.shutdown().await.unwrap();
            (c, state)
        })
    });
    assert_eq!(
        counters.drops(DropReason::TtlBelowMinimum),
        2,
        "{counters:?}"
    );
    assert_eq!(
        counters.drops(DropReason::DestinationMismatch),
        2,
        "{counters:?}"
    );
    assert_eq!(
        counters.drops(DropReason::HopModeMismatch),
        1,
        "{counters:?}"
    );
    assert_eq!(v4_state, Some(State::Init), "{counters:?}");
}

/// A session may be added before its local address exists (interface still being set up):
/// sends fail and are counted, and the session comes Up once the address appears.
#[test]
fn session_added_before_local_address_exists_comes_up_later() {
    if !require_root("session_added_before_local_address_exists_comes_up_later") {
        return;
    }
    let (a, b) = bfd_pair("bdf");
    b.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])
        .unwrap();
    let la: IpAddr = "198.51.100.1".parse().unwrap();
    let lb: IpAddr = "198.51.100.2".parse().unwrap();
    let (added_tx, added_rx) = std::sync::mpsc::channel::<()>();
    let ta = a.spawn_thread(move || {
        runtime().block_on(async move {
            let cfg = ManagerConfig {
                ipv6: false,
                ..ManagerConfig::default()
            };
            let mgr = BfdManager::start(cfg).await.expect("start A");
            let mut ev = mgr.subscribe();
            mgr.add_session(lb, la, None, fast())
                .await
                .expect("add before the address exists");
            let _ = added_tx.send(());
            let up = next_event(&mut ev, |e| e.new == State::Up).await;
            let c = mgr.counters();
            mgr.shutdown().await.unwrap();
            (up, c)
        })
    });
    let tb = b.spawn_thread(move || {
        runtime().block_on(async move {
            let cfg = ManagerConfig {
                ipv6: false,
                ..ManagerConfig::default()
            };
            let mgr = BfdManager::start(cfg).await.expect("start B");
            let mut ev = mgr.subscribe();
            mgr.add_session(la, lb, None, fast()).await.expect("add B");
            let up = next_event(&mut ev, |e| e.new == State::Up).await;
            // Stay until A has seen Up too (A's shutdown then reaches us as AdminDown).
            let _ = next_event(&mut ev, |e| e.new == State::Down).await;
            mgr.shutdown().await.unwrap();
            up
        })
    });
    added_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("A added its session");
    // Let A try (and fail) to send from the missing address first.
    std::thread::sleep(Duration::from_millis(300));
    a.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"])
        .unwrap();
    let (a_up, a_counters) = ta.join().expect("thread A");
    let b_up = tb.join().expect("thread B");
    assert_eq!(a_up.map(|e| e.peer), Some(lb), "{a_counters:?}");
    assert_eq!(b_up.map(|e| e.peer), Some(la));
    assert!(
        a_counters.send_errors > 0,
        "the first send from the missing address should have failed: {a_counters:?}"
    );
}
