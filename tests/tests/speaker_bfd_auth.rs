//! BFD authentication through the speaker (standalone mode: BFDProfile + Secret documents in
//! the manifests directory), against BIRD 2's `protocol bfd` with Meticulous Keyed SHA1 on
//! the router (GoBGP does the BGP side, as in `speaker_bfd.rs`):
//! the right key brings the session Up; a wrong key in the Secret takes it Down with
//! `bfd_auth_failures_total{reason="auth_bad_hash"}` rising and the peer's `lastError`
//! naming the router; a deleted Secret is a config error and the last good profile stays
//! (still authenticated: the reason stays `auth_bad_hash`, never `auth_not_in_use`); the
//! right key again brings it back Up.

use std::time::Duration;

use ferrolb_speaker::metrics::PeerReasonLabel;
use ferrolb_tests::bfd_peers::Bird;
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, gobgp_router_toml, link_lab};
use ferrolb_tests::peers_gobgp::Gobgp;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{require_root, wait_until};

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
spec:
  receiveInterval: 100
  transmitInterval: 100
  detectMultiplier: 3
  authentication: {type: MeticulousKeyedSHA1, keyID: 7, passwordSecret: {name: bfd-key}}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: 30s, connectTime: 1s, bfdProfile: fast}
";

fn secret(key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bfd-key, namespace: ferrolb-system}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: \"{key}\"}}\n"
    )
}

fn bird_conf() -> String {
    format!(
        "router id {ROUTER_V4};\n\
         protocol device {{ }}\n\
         protocol bfd {{\n\
           interface \"eth0\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3;\n\
             authentication meticulous keyed sha1; password \"rack-7-secret\" {{ id 7; }}; }};\n\
           neighbor {NODE_V4};\n\
         }}\n"
    )
}

#[test]
fn speaker_bfd_authentication_follows_the_secret() {
    if !require_root("speaker_bfd_authentication_follows_the_secret") {
        return;
    }
    let (r, n) = link_lab("spkbauth");
    let _gobgp = Gobgp::start(&r, &gobgp_router_toml());
    let bird = Bird::start(&r, &bird_conf());
    let speaker = RunningSpeaker::start(
        &n,
        &[
            ("all.yaml", MANIFESTS),
            ("web.yaml", WEB_SERVICE),
            ("secret.yaml", &secret("rack-7-secret")),
        ],
    );
    let state = || std::fs::read_to_string(speaker.state_path()).unwrap_or_default();
    let bird_state = |want: &str| {
        bird.wait_state(NODE_V4, want, WAIT).unwrap_or_else(|| {
            panic!(
                "BIRD never saw {NODE_V4} {want}: {:?}\nSpeakerState: {}",
                bird.bfd_sessions(),
                state()
            )
        })
    };
    bird_state("Up");
    let up_in_state = || {
        wait_until(WAIT, POLL, || state().contains("bfd: Up").then_some(()))
            .unwrap_or_else(|| panic!("SpeakerState never showed bfd: Up: {}", state()))
    };
    up_in_state();

    // A wrong key in the Secret: BIRD drops ours, we drop BIRD's (bad hash).
    speaker.write("secret.yaml", &secret("wrong-key"));
    bird_state("Down");
    let bad_hash = PeerReasonLabel {
        peer: "tor".into(),
        address: ROUTER_V4.into(),
        reason: "auth_bad_hash".into(),
    };
    let failures = |reason: &PeerReasonLabel| {
        speaker
            .metrics
            .bfd_auth_failures
            .get_or_create(reason)
            .get()
    };
    wait_until(WAIT, POLL, || (failures(&bad_hash) > 3).then_some(()))
        .expect("bfd_auth_failures_total{reason=auth_bad_hash} did not rise");
    let want = "BFD authentication failed from 192.0.2.1: hash mismatch with key id 7 (wrong key)";
    wait_until(WAIT, POLL, || state().contains(want).then_some(()))
        .unwrap_or_else(|| panic!("lastError does not name the peer: {}", state()));

    // The Secret is deleted: a config error; the last good profile (wrong key, but
    // authenticated) stays in force: still bad hashes, never unauthenticated packets.
    speaker.remove("secret.yaml");
    wait_until(WAIT, POLL, || {
        (speaker.metrics.config_errors.get() > 0).then_some(())
    })
    .expect("a missing Secret is a config error");
    let before = failures(&bad_hash);
    wait_until(WAIT, POLL, || {
        (failures(&bad_hash) > before + 3).then_some(())
    })
    .expect("the last good (authenticated) profile is no longer in force");
    let not_in_use = PeerReasonLabel {
        reason: "auth_not_in_use".into(),
        ..bad_hash.clone()
    };
    assert_eq!(failures(&not_in_use), 0);
    assert!(
        !bird
            .bfd_sessions()
            .iter()
            .any(|s| s.addr == NODE_V4 && s.state == "Up")
    );

    // The right key again: Up on both sides, and the error is gone.
    speaker.write("secret.yaml", &secret("rack-7-secret"));
    bird_state("Up");
    up_in_state();
    wait_until(WAIT, POLL, || (!state().contains(want)).then_some(()))
        .unwrap_or_else(|| panic!("lastError stayed after the session came up: {}", state()));
    speaker.stop().expect("speaker run");
}
