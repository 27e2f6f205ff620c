//! The speaker (library `run`, standalone source) in a node namespace against GoBGP and
//! arping in a router namespace: BGP route with its community, ARP answer for the L2 IP,
//! the node's state file, withdraw when the Service goes, files grown past the read limit
//! (nothing withdrawn), and the SIGTERM-path shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::v1alpha1::{BGPSessionState, SpeakerState};
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::run::{Health, Options, run};
use ferrolb_speaker::source::ClusterSource;
use ferrolb_speaker::source::standalone::{Standalone, state_file};
use ferrolb_tests::l2_fixture::arping;
use ferrolb_tests::lab::TempDir;
use ferrolb_tests::peers_ferrolb::{NODE_V4, gobgp_router_toml, link_lab};
use ferrolb_tests::peers_gobgp::Gobgp;
use ferrolb_tests::{require_root, wait_until};

const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

const CONFIG: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: ferrolb-system}
spec: {addresses: [192.0.2.200-192.0.2.210]}
---
apiVersion: ferrolb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec: {ipAddressPools: [l2-pool]}
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec: {addresses: [203.0.113.0/28]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec: {ipAddressPools: [bgp-pool], communities: [\"65000:7\"]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: 9s, connectTime: 1s}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
";

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{type: LoadBalancer, ports: [{{port: 80, protocol: TCP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-a, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: [192.0.2.10], nodeName: n1, conditions: {{ready: true}}}}]
"
    )
}

/// The controller's status file, as the controller would write it.
fn status_file(entries: &[(&str, &str)]) -> String {
    let mut s = String::from("generation: 1\nservices:\n");
    for (name, ip) in entries {
        s.push_str(&format!(
            "  - namespace: default\n    name: {name}\n    ingress:\n      - ip: {ip}\n    condition: {{status: \"True\", reason: IPAllocated, message: ok}}\n"
        ));
    }
    s
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn standalone_speaker_announces_over_bgp_and_arp_then_withdraws_and_stops() {
    if !require_root("standalone_speaker_announces_over_bgp_and_arp_then_withdraws_and_stops") {
        return;
    }
    let (r, n) = link_lab("spkstd");
    let gobgp = Gobgp::start(&r, &gobgp_router_toml());
    let dir = TempDir::new("spk-e2e");
    std::fs::create_dir_all(dir.path().join(".ferrolb")).unwrap();
    write(dir.path(), "config.yaml", CONFIG);
    write(
        dir.path(),
        "services.yaml",
        &format!("{}---\n{}", service("web-l2"), service("web-bgp")),
    );
    write(
        dir.path(),
        ".ferrolb/status.yaml",
        &status_file(&[("web-bgp", "203.0.113.5"), ("web-l2", "192.0.2.200")]),
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let manifests = dir.path().to_path_buf();
    let loader = ferrolb_cluster::Metrics::default();
    let loader_in = loader.clone();
    let speaker = n.spawn_thread(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let source: Arc<dyn ClusterSource> =
                Arc::new(Standalone::start(manifests, "n1", loader_in).unwrap());
            let mut opts = Options::new("n1");
            opts.poll = Duration::from_millis(200);
            // Long enough for the test to see the GRACEFUL_SHUTDOWN routes before the withdraw.
            opts.gshut_wait = Duration::from_secs(2);
            run(
                opts,
                source,
                Metrics::default(),
                Health::default(),
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        })
    });

    // BGP: the route with the advertisement's community, next hop = the session's address.
    let path = wait_until(WAIT, POLL, || {
        gobgp
            .has_route("203.0.113.5/32")
            .then(|| gobgp.route("203.0.113.5/32"))
    });
    let path = path
        .expect("GoBGP never received 203.0.113.5/32")
        .to_string();
    assert!(
        path.contains("192.0.2.10"),
        "next hop is the node's session address: {path}"
    );
    assert!(
        path.contains("4259840007"), // 65000:7 = (65000 << 16) | 7
        "community from the BGPAdvertisement: {path}"
    );
    assert!(
        !gobgp.has_route("192.0.2.200/32"),
        "the L2 pool has no BGPAdvertisement"
    );

    // L2: the only node answers ARP for the L2 IP.
    let answered = wait_until(WAIT, POLL, || {
        let (ok, out) = arping(&r, &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.200"]);
        ok.then_some(out)
    });
    assert!(answered.is_some(), "no ARP answer for 192.0.2.200");

    // The node's state file.
    let state = wait_until(WAIT, POLL, || {
        let text = std::fs::read_to_string(state_file(dir.path(), "n1")).ok()?;
        let st: SpeakerState = serde_saphyr::from_str(&text).ok()?;
        let status = st.status.clone()?;
        (status.l2_summary == "192.0.2.200" && status.peers_established == 1).then_some(st)
    });
    let state = state.expect("state file never showed the L2 IP and an Established session");
    let status = state.status.unwrap();
    assert_eq!(status.announced_prefixes, 1);
    assert_eq!(status.bgp_peers[0].state, BGPSessionState::Established);
    assert_eq!(status.l2_addresses[0].interfaces, vec!["eth0".to_string()]);
    assert_eq!(
        status.l2_addresses[0].services,
        vec!["default/web-l2".to_string()]
    );
    let links = &state.metadata.annotations.unwrap()["ferrolb.io/l2-links"];
    assert!(links.starts_with("eth0=192.0.2.0/24"), "{links}");

    // The BGP Service goes: its route is withdrawn, the L2 one stays.
    write(dir.path(), "services.yaml", &service("web-l2"));
    write(
        dir.path(),
        ".ferrolb/status.yaml",
        &status_file(&[("web-l2", "192.0.2.200")]),
    );
    assert!(
        wait_until(WAIT, POLL, || (!gobgp.has_route("203.0.113.5/32"))
            .then_some(()))
        .is_some(),
        "route not withdrawn after the Service was deleted"
    );
    let (ok, out) = arping(&r, &["-c", "1", "-w", "2", "-I", "eth0", "192.0.2.200"]);
    assert!(ok, "L2 IP stopped answering: {out}");

    // The Service comes back, then shutdown: RFC 8326 GRACEFUL_SHUTDOWN on the route, then
    // the withdraw, then the session closes; ARP goes unanswered.
    write(
        dir.path(),
        "services.yaml",
        &format!("{}---\n{}", service("web-l2"), service("web-bgp")),
    );
    write(
        dir.path(),
        ".ferrolb/status.yaml",
        &status_file(&[("web-bgp", "203.0.113.5"), ("web-l2", "192.0.2.200")]),
    );
    assert!(
        wait_until(WAIT, POLL, || gobgp
            .has_route("203.0.113.5/32")
            .then_some(()))
        .is_some(),
        "route not announced again"
    );

    // Both files grow past the 8 MiB read limit (issue #13: this withdrew every IP and
    // deconfigured the peers): refused, their last good objects stay in force.
    let pad = format!("# {}\n", "x".repeat(9 << 20));
    write(dir.path(), "config.yaml", &format!("{CONFIG}{pad}"));
    write(
        dir.path(),
        "services.yaml",
        &format!("{}---\n{}{pad}", service("web-l2"), service("web-bgp")),
    );
    assert!(
        wait_until(WAIT, POLL, || (loader.file_errors.get() == 2).then_some(())).is_some(),
        "the loader never refused the two files"
    );
    assert!(
        wait_until(Duration::from_secs(1), POLL, || (!gobgp
            .has_route("203.0.113.5/32"))
        .then_some(()))
        .is_none(),
        "route withdrawn after its file grew past the limit"
    );
    assert!(gobgp.is_established(NODE_V4), "BGP peer deconfigured");
    let (ok, out) = arping(&r, &["-c", "1", "-w", "2", "-I", "eth0", "192.0.2.200"]);
    assert!(
        ok,
        "L2 IP stopped answering after its file grew past the limit: {out}"
    );

    stop_tx.send(()).unwrap();
    // 65535:0 = 4294901760.
    let gshut = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        gobgp
            .route("203.0.113.5/32")
            .to_string()
            .contains("4294901760")
            .then_some(())
    });
    assert!(
        gshut.is_some(),
        "no GRACEFUL_SHUTDOWN community before the withdraw"
    );
    speaker
        .join()
        .expect("speaker thread")
        .expect("speaker run");
    assert!(
        !gobgp.has_route("203.0.113.5/32"),
        "route not withdrawn at shutdown"
    );
    assert!(
        wait_until(WAIT, POLL, || (!gobgp.is_established(NODE_V4))
            .then_some(()))
        .is_some(),
        "BGP session still up after shutdown"
    );
    let (ok, out) = arping(&r, &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.200"]);
    assert!(!ok, "ARP still answered after shutdown: {out}");
}
