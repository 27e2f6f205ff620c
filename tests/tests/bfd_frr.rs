//! ferrolb BFD against FRR 8.4 `bfdd` in network namespaces: sessions come up with the
//! configured timers (v4 and v6), FRR sees Down when our process freezes or the link is cut,
//! and our shutdown reaches FRR as AdminDown. Assertions are on states, never on timing.

use std::time::Duration;

use ferrolb_tests::bfd_peers::{FrrBfdd, OurBfdPeer, bfd_pair};
use ferrolb_tests::require_root;

const UP_WAIT: Duration = Duration::from_secs(15);

fn frr_conf(timers: (u32, u32, u32)) -> String {
    let (rx, tx, mult) = timers;
    format!(
        "bfd\n peer 192.0.2.2 interface eth0\n  receive-interval {rx}\n  transmit-interval {tx}\n  detect-multiplier {mult}\n exit\n peer 2001:db8::2 interface eth0\n  receive-interval {rx}\n  transmit-interval {tx}\n  detect-multiplier {mult}\n exit\nexit\n"
    )
}

#[test]
fn frr_session_up_with_negotiated_timers_v4_and_v6() {
    if !require_root("frr_session_up_with_negotiated_timers_v4_and_v6") {
        return;
    }
    let (r, n) = bfd_pair("bfr");
    let frr = FrrBfdd::start(&r, &frr_conf((300, 300, 3)));
    let ours4 = OurBfdPeer::spawn(
        &n,
        "192.0.2.2",
        "192.0.2.1",
        &["--rx", "200", "--tx", "250", "--mult", "4"],
    );
    let ours6 = OurBfdPeer::spawn(
        &n,
        "2001:db8::2",
        "2001:db8::1",
        &[
            "--rx", "200", "--tx", "250", "--mult", "4", "--ifname", "eth0",
        ],
    );
    for (addr, ours) in [("192.0.2.2", &ours4), ("2001:db8::2", &ours6)] {
        let p = frr.wait_status(addr, "up", UP_WAIT).unwrap_or_else(|| {
            panic!(
                "FRR never saw {addr} up: {:?}\n{}\nours: {}",
                frr.peer(addr),
                frr.log(),
                ours.output()
            )
        });
        // FRR shows the timers we advertise once Up (after our Poll Sequence)...
        let p = if p.remote_transmit_interval == 250 {
            p
        } else {
            ferrolb_tests::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
                frr.peer(addr).filter(|p| p.remote_transmit_interval == 250)
            })
            .unwrap_or_else(|| panic!("FRR never learnt our 250 ms TX: {p:?}"))
        };
        assert_eq!(p.remote_receive_interval, 200, "{p:?}");
        assert_eq!(p.remote_detect_multiplier, 4, "{p:?}");
        // ...and keeps its own.
        assert_eq!(
            (p.receive_interval, p.transmit_interval, p.detect_multiplier),
            (300, 300, 3)
        );
        assert!(
            ours.wait_event("new=Up", Duration::from_secs(2)),
            "our side: {}",
            ours.output()
        );
    }
}

#[test]
fn frr_sees_down_when_our_process_freezes() {
    if !require_root("frr_sees_down_when_our_process_freezes") {
        return;
    }
    let (r, n) = bfd_pair("bfz");
    let frr = FrrBfdd::start(&r, &frr_conf((100, 100, 3)));
    let ours = OurBfdPeer::spawn(
        &n,
        "192.0.2.2",
        "192.0.2.1",
        &["--rx", "100", "--tx", "100", "--mult", "3"],
    );
    frr.wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "not up: {:?} ours: {}",
                frr.peer("192.0.2.2"),
                ours.output()
            )
        });
    ours.signal("STOP");
    let p = frr
        .wait_status("192.0.2.2", "down", Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "FRR did not see the frozen peer down: {:?}",
                frr.peer("192.0.2.2")
            )
        });
    assert_eq!(p.diagnostic, "control detection time expired", "{p:?}");
    // Thawed, the session recovers.
    ours.signal("CONT");
    frr.wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| panic!("no recovery after SIGCONT: {:?}", frr.peer("192.0.2.2")));
}

#[test]
fn link_cut_takes_both_sides_down() {
    if !require_root("link_cut_takes_both_sides_down") {
        return;
    }
    let (r, n) = bfd_pair("bfl");
    let frr = FrrBfdd::start(&r, &frr_conf((100, 100, 3)));
    let ours = OurBfdPeer::spawn(
        &n,
        "192.0.2.2",
        "192.0.2.1",
        &["--rx", "100", "--tx", "100", "--mult", "3"],
    );
    frr.wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "not up: {:?} ours: {}",
                frr.peer("192.0.2.2"),
                ours.output()
            )
        });
    assert!(ours.wait_event("new=Up", Duration::from_secs(2)));
    n.ip(&["link", "set", "eth0", "down"]).unwrap();
    frr.wait_status("192.0.2.2", "down", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("FRR did not see the link cut: {:?}", frr.peer("192.0.2.2")));
    assert!(
        ours.wait_event(
            "old=Up new=Down diag=ControlDetectionTimeExpired",
            Duration::from_secs(10)
        ),
        "our side did not detect FRR's silence: {}",
        ours.output()
    );
    assert!(
        ours.events()
            .iter()
            .any(|e| e.contains("new=Down") && e.contains("failure=true")),
        "a detection timeout must be reported as a path failure: {}",
        ours.output()
    );
    n.ip(&["link", "set", "eth0", "up"]).unwrap();
    frr.wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| panic!("no recovery after link up: {:?}", frr.peer("192.0.2.2")));
}

#[test]
fn our_shutdown_reaches_frr_as_admin_down() {
    if !require_root("our_shutdown_reaches_frr_as_admin_down") {
        return;
    }
    let (r, n) = bfd_pair("bfs");
    let frr = FrrBfdd::start(&r, &frr_conf((100, 100, 3)));
    let mut ours = OurBfdPeer::spawn(
        &n,
        "192.0.2.2",
        "192.0.2.1",
        &["--rx", "100", "--tx", "100", "--mult", "3"],
    );
    frr.wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "not up: {:?} ours: {}",
                frr.peer("192.0.2.2"),
                ours.output()
            )
        });
    let out = ours.stop();
    assert!(out.contains("new=AdminDown"), "{out}");
    let p = frr
        .wait_status("192.0.2.2", "down", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("FRR still {:?}", frr.peer("192.0.2.2")));
    // RFC 5880 §6.8.6: AdminDown received -> Down with diag 3; FRR shows our diag 7.
    assert_eq!(p.diagnostic, "neighbor signaled session down", "{p:?}");
    assert_eq!(p.remote_diagnostic, "administratively down", "{p:?}");
}

/// In-process `BfdManager` (the speaker's way of using it) against FRR: timers changed with
/// `set_profile` while Up reach FRR through a Poll Sequence, without a flap.
#[test]
fn set_profile_while_up_reaches_frr_without_flap() {
    if !require_root("set_profile_while_up_reaches_frr_without_flap") {
        return;
    }
    use ferrolb_bfd::{BfdManager, BfdProfile, ManagerConfig, State};
    use std::sync::mpsc;

    let (r, n) = bfd_pair("bfp");
    let frr = FrrBfdd::start(&r, &frr_conf((100, 100, 3)));
    let (to_test, from_ours) = mpsc::channel::<&'static str>();
    let (to_ours, from_test) = mpsc::channel::<()>();
    let ours = n.spawn_thread(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mgr = BfdManager::start(ManagerConfig {
                ipv6: false,
                ..ManagerConfig::default()
            })
            .await
            .unwrap();
            let mut events = mgr.subscribe();
            let peer = "192.0.2.1".parse().unwrap();
            let slow =
                BfdProfile::with_timers(Duration::from_millis(300), Duration::from_millis(300), 3);
            mgr.add_session(
                peer,
                "192.0.2.2".parse().unwrap(),
                Some("eth0".into()),
                slow,
            )
            .await
            .unwrap();
            let _ = to_test.send("added");
            // Wait for the test to see FRR Up with our first timers.
            tokio::task::spawn_blocking(move || from_test.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .expect("test never answered");
            let fast =
                BfdProfile::with_timers(Duration::from_millis(150), Duration::from_millis(120), 4);
            mgr.set_profile(peer, fast).await.unwrap();
            let st = mgr.session(peer).await.unwrap().unwrap();
            let _ = to_test.send(if st.info.state == State::Up {
                "changed"
            } else {
                "not up"
            });
            // Keep running until the test has checked FRR, then report any flap.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut downs = 0;
            while let Ok(ev) = events.try_recv() {
                if ev.new == State::Down {
                    downs += 1;
                }
            }
            mgr.shutdown().await.unwrap();
            downs
        })
    });
    assert_eq!(from_ours.recv_timeout(Duration::from_secs(10)), Ok("added"));
    let p = frr
        .wait_status("192.0.2.2", "up", UP_WAIT)
        .unwrap_or_else(|| panic!("not up: {:?}\n{}", frr.peer("192.0.2.2"), frr.log()));
    let p = if p.remote_transmit_interval == 300 {
        p
    } else {
        ferrolb_tests::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            frr.peer("192.0.2.2")
                .filter(|p| p.remote_transmit_interval == 300)
        })
        .expect("FRR never saw 300 ms")
    };
    assert_eq!(p.remote_receive_interval, 300);
    to_ours.send(()).unwrap();
    assert_eq!(
        from_ours.recv_timeout(Duration::from_secs(10)),
        Ok("changed")
    );
    let p = ferrolb_tests::wait_until(Duration::from_secs(2), Duration::from_millis(50), || {
        frr.peer("192.0.2.2")
            .filter(|p| p.remote_transmit_interval == 120)
    })
    .unwrap_or_else(|| {
        panic!(
            "FRR did not learn the new timers: {:?}",
            frr.peer("192.0.2.2")
        )
    });
    assert_eq!(
        (
            p.status.as_str(),
            p.remote_receive_interval,
            p.remote_detect_multiplier
        ),
        ("up", 150, 4),
        "{p:?}"
    );
    let downs = ours.join().expect("our thread");
    assert_eq!(downs, 0, "session flapped on a timer change");
}
