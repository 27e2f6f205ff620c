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
