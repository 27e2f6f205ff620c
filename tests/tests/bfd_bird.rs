//! ferrolb BFD against BIRD 2.0.12's `protocol bfd` (sessions requested with `neighbor`
//! entries) in network namespaces: Up with the negotiated interval and detection time BIRD
//! computes from our advertised timers, Down when our process freezes, and our passive mode.

use std::time::Duration;

use ferrolb_tests::bfd_peers::{Bird, OurBfdPeer, bfd_pair};
use ferrolb_tests::require_root;

const UP_WAIT: Duration = Duration::from_secs(15);

fn bird_conf() -> &'static str {
    "router id 192.0.2.1;\n\
     protocol device { }\n\
     protocol bfd {\n\
       interface \"eth0\" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };\n\
       neighbor 192.0.2.2;\n\
       neighbor 2001:db8::2;\n\
     }\n"
}

#[test]
fn bird_session_up_with_negotiated_timers_then_down_when_frozen() {
    if !require_root("bird_session_up_with_negotiated_timers_then_down_when_frozen") {
        return;
    }
    let (r, n) = bfd_pair("bbi");
    let bird = Bird::start(&r, bird_conf());
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
        bird.wait_state(addr, "Up", UP_WAIT).unwrap_or_else(|| {
            panic!(
                "BIRD never saw {addr} up: {:?} ours: {}",
                bird.bfd_sessions(),
                ours.output()
            )
        });
        // BIRD's TX interval = max(its 100 ms, our Required Min RX 200 ms); its detection
        // time = our mult 4 x max(its RX 100 ms, our TX 250 ms) = 1 s. Wait out our Poll.
        let s =
            ferrolb_tests::wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
                bird.bfd_sessions()
                    .into_iter()
                    .find(|s| s.addr == addr && s.state == "Up" && (s.timeout - 1.0).abs() < 1e-6)
            })
            .unwrap_or_else(|| panic!("timers not negotiated: {:?}", bird.bfd_sessions()));
        assert!((s.interval - 0.2).abs() < 1e-6, "{s:?}");
        assert!(
            ours.wait_event("new=Up", Duration::from_secs(2)),
            "{}",
            ours.output()
        );
    }
    ours4.signal("STOP");
    bird.wait_state("192.0.2.2", "Down", Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "BIRD did not see the frozen peer down: {:?}",
                bird.bfd_sessions()
            )
        });
    // The other session is unaffected.
    assert!(
        bird.bfd_sessions()
            .iter()
            .any(|s| s.addr == "2001:db8::2" && s.state == "Up")
    );
}

#[test]
fn passive_mode_waits_for_bird_and_comes_up() {
    if !require_root("passive_mode_waits_for_bird_and_comes_up") {
        return;
    }
    let (r, n) = bfd_pair("bbp");
    let ours = OurBfdPeer::spawn(
        &n,
        "192.0.2.2",
        "192.0.2.1",
        &["--rx", "100", "--tx", "100", "--passive"],
    );
    // Nobody talks to us yet: a passive session stays silent and Down.
    std::thread::sleep(Duration::from_millis(1500));
    let tcpdump = n.exec_output(
        "timeout",
        &[
            "2", "tcpdump", "-c", "1", "-i", "eth0", "-n", "udp", "dst", "port", "3784",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&tcpdump.stdout).contains("3784"),
        "passive session transmitted before hearing the peer: {}",
        String::from_utf8_lossy(&tcpdump.stdout)
    );
    let bird = Bird::start(&r, bird_conf());
    bird.wait_state("192.0.2.2", "Up", UP_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "passive session never came up: {:?} ours: {}",
                bird.bfd_sessions(),
                ours.output()
            )
        });
    assert!(
        ours.wait_event("new=Up", Duration::from_secs(2)),
        "{}",
        ours.output()
    );
}
