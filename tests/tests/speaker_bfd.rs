//! BFD coupling: a BGPPeer with a bfdProfile gets a BFD session (FRR bfdd on the router);
//! when BFD fails (bfdd killed: no AdminDown, path silent) the speaker resets the BGP session
//! at once, though TCP and keepalives are still fine.

use std::sync::Arc;
use std::time::Duration;

use ferrolb_speaker::metrics::{Metrics, PeerLabel};
use ferrolb_speaker::run::{Health, Options, run};
use ferrolb_speaker::source::ClusterSource;
use ferrolb_speaker::source::standalone::Standalone;
use ferrolb_tests::bfd_peers::FrrBfdd;
use ferrolb_tests::lab::TempDir;
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, gobgp_router_toml, link_lab};
use ferrolb_tests::peers_gobgp::Gobgp;
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
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.10], nodeName: n1}]
";

const STATUS: &str = "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 203.0.113.5\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n";

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
    let dir = TempDir::new("spk-bfd");
    std::fs::create_dir_all(dir.path().join(".ferrolb")).unwrap();
    std::fs::write(dir.path().join("all.yaml"), MANIFESTS).unwrap();
    std::fs::write(dir.path().join(".ferrolb/status.yaml"), STATUS).unwrap();

    let metrics = Metrics::default();
    let seen = metrics.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let manifests = dir.path().to_path_buf();
    let speaker = n.spawn_thread(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let source: Arc<dyn ClusterSource> =
                Arc::new(Standalone::start(manifests, "n1", Default::default()).unwrap());
            let mut opts = Options::new("n1");
            opts.poll = Duration::from_millis(100);
            run(opts, source, metrics, Health::default(), async move {
                let _ = stop_rx.await;
            })
            .await
        })
    });

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
    // And it comes back (BGP does not depend on BFD being up to reconnect).
    assert!(
        wait_until(WAIT, POLL, || gobgp
            .has_route("203.0.113.5/32")
            .then_some(()))
        .is_some(),
        "route not announced again after the reset"
    );

    stop_tx.send(()).unwrap();
    speaker
        .join()
        .expect("speaker thread")
        .expect("speaker run");
    drop(frr);
}
