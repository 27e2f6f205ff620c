//! BFD coupling: a BGPPeer with a bfdProfile gets a BFD session (FRR bfdd on the router);
//! when BFD fails (bfdd killed: no AdminDown, path silent) the speaker resets the BGP session
//! at once, though TCP and keepalives are still fine.

use std::time::Duration;

use ferrolb_speaker::metrics::PeerLabel;
use ferrolb_tests::bfd_peers::FrrBfdd;
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, gobgp_router_toml, link_lab};
use ferrolb_tests::peers_gobgp::Gobgp;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{require_root, run as run_cmd, wait_until};

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

const MANIFESTS: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec: {addresses: [203.0.113.0/28]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec: {ipAddressPools: [bgp-pool]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: 30s, connectTime: 1s, bfdProfile: fast}
";

#[test]
fn bfd_failure_resets_the_bgp_session() {
    if !require_root("bfd_failure_resets_the_bgp_session") {
        return;
    }
    let (r, n) = link_lab("spkbfd");
    let gobgp = Gobgp::start(&r, &gobgp_router_toml());
    let frr = FrrBfdd::start(
        &r,
        &format!(
            "bfd\n peer {NODE_V4} interface eth0\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n exit\nexit\n"
        ),
    );
    let speaker = RunningSpeaker::start(&n, &[("all.yaml", MANIFESTS), ("web.yaml", WEB_SERVICE)]);
    let seen = speaker.metrics.clone();

    assert!(
        wait_until(WAIT, POLL, || gobgp
            .has_route("203.0.113.5/32")
            .then_some(()))
        .is_some(),
        "route never announced"
    );
    assert!(
        frr.wait_status(NODE_V4, "up", WAIT).is_some(),
        "BFD session with FRR never came up"
    );
    // The node's SpeakerState shows the BFD session next to the BGP one (`kubectl ferrolb
    // status` reads it), and its fall after bfdd dies below.
    let bfd_in_state = |want: &'static str| {
        wait_until(WAIT, POLL, || {
            let text = std::fs::read_to_string(speaker.state_path()).ok()?;
            text.contains(&format!("bfd: {want}")).then_some(())
        })
        .is_some()
    };
    assert!(
        bfd_in_state("Up"),
        "SpeakerState never showed bfd: Up: {:?}",
        std::fs::read_to_string(speaker.state_path())
    );
    let label = PeerLabel {
        peer: "tor".into(),
        address: ROUTER_V4.into(),
    };
    assert_eq!(seen.session_flaps.get_or_create(&label).get(), 0);

    // bfdd dies without a word: our BFD times out (remote was Up, not AdminDown) and the BGP
    // session is reset although its TCP connection and keepalives are healthy.
    let pids = run_cmd("ip", &["netns", "pids", r.name()]).unwrap();
    let bfdd = pids
        .split_whitespace()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "bfdd")
        })
        .expect("bfdd pid in the router namespace")
        .to_string();
    run_cmd("kill", &["-9", &bfdd]).unwrap();
    assert!(
        wait_until(WAIT, POLL, || (seen
            .session_flaps
            .get_or_create(&label)
            .get()
            >= 1)
            .then_some(()))
        .is_some(),
        "BGP session not reset after BFD went down"
    );
    assert!(
        bfd_in_state("Down"),
        "SpeakerState never showed bfd: Down after bfdd died: {:?}",
        std::fs::read_to_string(speaker.state_path())
    );
    // And it comes back (BGP does not depend on BFD being up to reconnect).
    assert!(
        wait_until(WAIT, POLL, || gobgp
            .has_route("203.0.113.5/32")
            .then_some(()))
        .is_some(),
        "route not announced again after the reset"
    );

    speaker.stop().expect("speaker run");
    drop(frr);
}
