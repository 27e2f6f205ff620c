//! The BFD Echo function (RFC 5880 §6.4, RFC 5881 §4) between our BFD (the `bfd_peer`
//! example, `--echo 50`) and FRR 8.4 `bfdd` (`echo-mode`), one veth apart:
//!
//! ```text
//!   FRR 192.0.2.1 (ns "r") -- eth0 == eth0 -- 192.0.2.2 ours (ns "n")
//! ```
//!
//! - both directions run: FRR's echoes are looped by our node's kernel (IP forwarding on) and
//!   come back to FRR (its echo counters rise), ours are looped by FRR's kernel and come back
//!   to us (our counters rise); while our echo runs we ask FRR for control packets once a
//!   second (RFC 5880 §6.8.3), which FRR shows as our receive interval;
//! - forwarding off in FRR's namespace: our echoes stop coming back and we declare the session
//!   Down with diagnostic 2 (Echo Function Failed), which FRR hears over the still working
//!   control path; back Up, our echo only probes (nothing comes back, the session stays Up,
//!   we report that the peer does not loop) until FRR forwards again;
//! - our node stops looping FRR's echoes: with an iptables FORWARD drop (our forwarding
//!   check still sees forwarding on) FRR declares the session down ("echo function failed");
//!   with forwarding switched off, our once-a-second check withdraws our echo receive
//!   interval (FRR stops echoing; FRR may have declared the session down first, depending on
//!   which of its 150 ms detection and our check comes first) and we report it;
//! - the whole speaker (BGPPeer + BFDProfile `echoMode: true`) runs echo with FRR and shows
//!   it in SpeakerState (`bfdEcho`) and its metrics, forwarding off included.
//!
//! Assertions are on states, counters and FRR's `debug bfd peer` log, never on timing.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_tests::bfd_peers::{FrrBfdd, OurBfdPeer, bfd_pair};
use ferrolb_tests::{Netns, require_root, wait_until};

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
const FRR: &str = "192.0.2.1";
const OURS: &str = "192.0.2.2";

/// bfdd with `debug bfd peer`: its log says why a session went down
/// (`state-change: [...] up -> down reason:echo-failed`).
fn frr_conf() -> String {
    format!(
        "debug bfd peer\nbfd\n peer {OURS} interface eth0\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n  echo-mode\n  echo transmit-interval 50\n  echo receive-interval 50\n exit\nexit\n"
    )
}

/// FRR (ns r) and ours (ns n) with IP forwarding on in both.
fn lab(tag: &str) -> (Netns, Netns, FrrBfdd, OurBfdPeer) {
    let (r, n) = bfd_pair(tag);
    for ns in [&r, &n] {
        ns.sysctl("net.ipv4.ip_forward=1").unwrap();
    }
    let frr = FrrBfdd::start(&r, &frr_conf());
    let ours = OurBfdPeer::spawn(
        &n,
        OURS,
        FRR,
        &["--rx", "100", "--tx", "100", "--mult", "3", "--echo", "50"],
    );
    (r, n, frr, ours)
}

/// The last `echo k=v ...` line of our process, as a map.
fn our_echo(ours: &OurBfdPeer) -> BTreeMap<String, String> {
    let out = ours.output();
    let Some(line) = out.lines().rev().find(|l| l.starts_with("echo ")) else {
        return BTreeMap::new();
    };
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn our_n(ours: &OurBfdPeer, key: &str) -> u64 {
    our_echo(ours)
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// FRR's JSON for our session: `show bfd peers json` merged with the counters.
fn frr_json(frr: &FrrBfdd) -> serde_json::Value {
    let find = |cmd: &str| -> serde_json::Value {
        frr.vtysh(&[cmd])
            .ok()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
            .and_then(|v| v.as_array()?.iter().find(|p| p["peer"] == OURS).cloned())
            .unwrap_or_default()
    };
    let mut v = find("show bfd peers json");
    if let (Some(o), serde_json::Value::Object(c)) =
        (v.as_object_mut(), find("show bfd peers counters json"))
    {
        o.extend(c);
    }
    v
}

fn frr_n(frr: &FrrBfdd, key: &str) -> u64 {
    frr_json(frr)[key].as_u64().unwrap_or(0)
}

fn diag(frr: &FrrBfdd, ours: &OurBfdPeer) -> String {
    let log = frr.log();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    format!(
        "frr: {}\nours: {}\nbfdd log (last lines, newest first):\n{}",
        frr_json(frr),
        ours.output()
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
        tail.join("\n")
    )
}

/// Waits until `f` grows by at least `by` from its value now.
fn rises(by: u64, f: impl Fn() -> u64) -> bool {
    let start = f();
    wait_until(WAIT, POLL, || (f() >= start + by).then_some(())).is_some()
}

/// Both echo functions running: FRR up, both sides' echo counters rising.
fn both_echoes_running(frr: &FrrBfdd, ours: &OurBfdPeer) {
    assert!(
        frr.wait_status(OURS, "up", WAIT).is_some(),
        "FRR never saw the session up: {}",
        diag(frr, ours)
    );
    assert!(
        rises(20, || our_n(ours, "returned")),
        "our echoes do not come back: {}",
        diag(frr, ours)
    );
    assert!(
        rises(20, || frr_n(frr, "echo-packet-input")),
        "FRR's echoes do not come back through our node: {}",
        diag(frr, ours)
    );
}

#[test]
fn echo_runs_both_ways_with_frr() {
    if !require_root("echo_runs_both_ways_with_frr") {
        return;
    }
    let (_r, _n, frr, ours) = lab("bec1");
    both_echoes_running(&frr, &ours);
    let e = our_echo(&ours);
    assert_eq!(e["active"], "true", "{e:?}");
    assert_eq!(e["tx_ms"], "50", "max(our 50, FRR's 50): {e:?}");
    assert_eq!(e["adv_us"], "50000", "{e:?}");
    assert_eq!(e["remote_us"], "50000", "{e:?}");
    let n = |k: &str| e[k].parse::<u64>().unwrap();
    assert!(n("out") >= n("in") && n("in") >= n("returned"), "{e:?}");
    let j = frr_json(&frr);
    assert_eq!(j["remote-echo-receive-interval"], 50, "{j}");
    let n = |k: &str| j[k].as_u64().unwrap();
    assert!(n("echo-packet-output") >= n("echo-packet-input"), "{j}");
    // While our echo runs we want FRR's control packets once a second (RFC 5880 §6.8.3).
    let slow = wait_until(WAIT, POLL, || {
        (frr_n(&frr, "remote-receive-interval") == 1000).then_some(())
    });
    assert!(slow.is_some(), "{}", diag(&frr, &ours));
    assert!(
        !ours.events().iter().any(|e| e.contains("new=Down")),
        "no flap while both loops work: {:?}",
        ours.events()
    );
}

#[test]
fn router_not_forwarding_fails_our_echo() {
    if !require_root("router_not_forwarding_fails_our_echo") {
        return;
    }
    let (r, _n, frr, ours) = lab("bec2");
    both_echoes_running(&frr, &ours);
    let frr_downs = frr_n(&frr, "session-down");
    r.sysctl("net.ipv4.conf.eth0.forwarding=0").unwrap();
    assert!(
        ours.wait_event("diag=EchoFunctionFailed", WAIT),
        "our side never declared the echo failure: {}",
        diag(&frr, &ours)
    );
    let ev = ours
        .events()
        .into_iter()
        .find(|e| e.contains("diag=EchoFunctionFailed"))
        .unwrap();
    assert!(ev.contains("old=Up new=Down"), "{ev}");
    assert!(
        !frr.log().contains("reason:echo-failed"),
        "FRR's own echo failed, but our node still loops it: {}",
        diag(&frr, &ours)
    );
    // Control packets still flow: FRR hears our Down over them (its session goes down
    // without its own echo failing: our node still loops FRR's echoes) and the session comes
    // back Up over them. Our echo then only probes: with FRR still not forwarding, the probes
    // get nothing back, and the session stays Up (FRR itself would fail its echo again and
    // again in our place).
    assert!(
        wait_until(WAIT, POLL, || (frr_n(&frr, "session-down") > frr_downs)
            .then_some(()))
        .is_some(),
        "FRR did not hear our Down: {}",
        diag(&frr, &ours)
    );
    assert!(
        wait_until(WAIT, POLL, || (our_n(&ours, "not_returned") >= 2)
            .then_some(()))
        .is_some(),
        "two probes never failed: {}",
        diag(&frr, &ours)
    );
    let e = our_echo(&ours);
    assert_eq!(e["state"], "Up", "{e:?}");
    assert_eq!(e["peer_loops"], "no", "{e:?}");
    let failures = ours
        .events()
        .iter()
        .filter(|e| e.contains("diag=EchoFunctionFailed"))
        .count();
    assert_eq!(
        failures,
        1,
        "a probe took the session down: {}",
        diag(&frr, &ours)
    );
    let downs = frr_n(&frr, "session-down");
    assert!(
        rises(5, || frr_n(&frr, "control-packet-input")),
        "{}",
        diag(&frr, &ours)
    );
    assert!(
        rises(5, || frr_n(&frr, "echo-packet-input")),
        "FRR's echoes stopped coming back through our node: {}",
        diag(&frr, &ours)
    );
    // FRR forwards again: the next probe (its hold is at most 4 s by now) comes back and our
    // echo detects failures again, without the session ever going down.
    r.sysctl("net.ipv4.conf.eth0.forwarding=1").unwrap();
    assert!(
        wait_until(WAIT, POLL, || (our_echo(&ours).get("peer_loops")
            == Some(&"yes".to_string()))
        .then_some(()))
        .is_some(),
        "our echo never came back after forwarding was restored: {}",
        diag(&frr, &ours)
    );
    assert!(
        rises(5, || our_n(&ours, "returned")),
        "{}",
        diag(&frr, &ours)
    );
    assert_eq!(frr_n(&frr, "session-down"), downs, "{}", diag(&frr, &ours));
}

#[test]
fn node_not_looping_fails_frrs_echo() {
    if !require_root("node_not_looping_fails_frrs_echo") {
        return;
    }
    let (_r, n, frr, ours) = lab("bec3");
    both_echoes_running(&frr, &ours);
    // 1. The node drops forwarded traffic (forwarding itself still on): FRR's echoes are lost.
    n.exec(
        "iptables",
        &[
            "-A", "FORWARD", "-p", "udp", "--dport", "3785", "-j", "DROP",
        ],
    )
    .unwrap();
    // FRR's session is Down only until control packets bring it back (then its echo fails
    // again), too short to poll reliably: its log says it.
    let down = wait_until(WAIT, POLL, || {
        frr.log()
            .contains("up -> down reason:echo-failed")
            .then_some(())
    });
    assert!(
        down.is_some(),
        "FRR never declared its echo failed: {}",
        diag(&frr, &ours)
    );
    n.exec("iptables", &["-F", "FORWARD"]).unwrap();
    both_echoes_running(&frr, &ours);
    // 2. Forwarding off: our check reports it and withdraws our echo receive interval.
    let failures_before = frr.log().matches("reason:echo-failed").count();
    n.sysctl("net.ipv4.conf.eth0.forwarding=0").unwrap();
    let withdrawn = wait_until(WAIT, POLL, || {
        let e = our_echo(&ours);
        (e.get("loop_ok").is_some_and(|v| v == "false") && e["adv_us"] == "0").then_some(())
    });
    assert!(withdrawn.is_some(), "{}", diag(&frr, &ours));
    let frr_stopped = wait_until(WAIT, POLL, || {
        (frr_json(&frr)["remote-echo-receive-interval"] == 0).then_some(())
    });
    assert!(frr_stopped.is_some(), "{}", diag(&frr, &ours));
    // Which came first is a race (shown, not asserted): FRR's 150 ms echo detection, or our
    // check (once a second) withdrawing the echo receive interval.
    let failures = frr.log().matches("reason:echo-failed").count() - failures_before;
    eprintln!(
        "forwarding off on the node: FRR declared its echo failed {failures} time(s) before we withdrew echo"
    );
    // FRR's session is (back) up without its echo, ours keeps echoing through FRR.
    assert!(
        frr.wait_status(OURS, "up", WAIT).is_some(),
        "{}",
        diag(&frr, &ours)
    );
    let frr_out = frr_n(&frr, "echo-packet-output");
    assert!(
        rises(20, || our_n(&ours, "returned")),
        "{}",
        diag(&frr, &ours)
    );
    assert_eq!(
        frr_n(&frr, "echo-packet-output"),
        frr_out,
        "FRR keeps sending echoes we said we cannot loop: {}",
        diag(&frr, &ours)
    );
}

/// The speaker (a BGPPeer with an `echoMode` BFDProfile; FRR runs bfdd only, so BGP never
/// comes up, BFD does): echo runs both ways, SpeakerState and the metrics show it, and
/// forwarding switched off on the node shows as `loopsPeerEchoes: false` /
/// `bfd_echo_loop_ok 0`.
#[test]
fn speaker_runs_echo_and_reports_it() {
    if !require_root("speaker_runs_echo_and_reports_it") {
        return;
    }
    use ferrolb_tests::speaker_run::RunningSpeaker;
    let (r, n) = bfd_pair("bec4");
    for ns in [&r, &n] {
        ns.sysctl("net.ipv4.ip_forward=1").unwrap();
    }
    let frr = FrrBfdd::start(&r, &frr_conf());
    let yaml = format!(
        "apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {{name: echo, namespace: ferrolb-system}}
spec: {{receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3, echoMode: true, echoInterval: 50}}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {{name: tor, namespace: ferrolb-system}}
spec: {{myASN: 64512, peerASN: 64513, peerAddress: {FRR}, connectTime: 1s, bfdProfile: echo}}
"
    );
    let speaker = RunningSpeaker::start(&n, &[("all.yaml", &yaml)]);
    let state = || std::fs::read_to_string(speaker.state_path()).unwrap_or_default();
    let show = |frr: &FrrBfdd| {
        let c: Vec<u64> = speaker.metrics.bfd_echo.iter().map(|c| c.get()).collect();
        format!(
            "frr: {}\nour echo sent/received/dropped/send errors: {c:?}\nstate:\n{}",
            frr_json(frr),
            state()
        )
    };
    assert!(
        frr.wait_status(OURS, "up", WAIT).is_some(),
        "FRR never saw the speaker's session up: {}",
        show(&frr)
    );
    let received = || speaker.metrics.bfd_echo[1].get();
    assert!(rises(20, received), "our echoes: {}", show(&frr));
    assert!(
        rises(20, || frr_n(&frr, "echo-packet-input")),
        "FRR's echoes through the node: {}",
        show(&frr)
    );
    let echo_shown = wait_until(WAIT, POLL, || {
        let s = state();
        (s.contains("bfdEcho:")
            && s.contains("active: true")
            && s.contains("intervalMs: 50")
            && s.contains("loopsPeerEchoes: true")
            && s.contains("peerLoopsOurEchoes: true"))
        .then_some(())
    });
    assert!(echo_shown.is_some(), "{}", show(&frr));
    assert!(speaker.metrics.bfd_echo[0].get() >= received());
    let label = ferrolb_speaker::metrics::PeerLabel {
        peer: "tor".into(),
        address: FRR.into(),
    };
    let peer_loops = || {
        speaker
            .metrics
            .bfd_echo_peer_loops
            .get_or_create(&label)
            .get()
    };
    assert!(
        wait_until(WAIT, POLL, || (peer_loops() == 1).then_some(())).is_some(),
        "ferrolb_speaker_bfd_echo_peer_loops {}",
        peer_loops()
    );
    n.sysctl("net.ipv4.conf.eth0.forwarding=0").unwrap();
    let reported = wait_until(WAIT, POLL, || {
        state().contains("loopsPeerEchoes: false").then_some(())
    });
    assert!(reported.is_some(), "{}", show(&frr));
    assert_eq!(
        speaker.metrics.bfd_echo_loop_ok.get_or_create(&label).get(),
        0
    );
}
