//! The container image, built and run for real with podman (runc): Containerfile +
//! scripts/build-image.sh from the debug binaries the suite already has (a release build costs
//! minutes on 2 cores; the release image is the same tree with release binaries):
//! - the controller container (default entry point, read-only root, no network, no
//!   capabilities, the image's non-root user) runs standalone from a mounted config directory
//!   and writes its status there;
//! - a speaker container (the speaker entry point, non-root, no capabilities, `--no-l2`, as
//!   deploy/overlays/bgp-only runs it) joins a lab node's network namespace, peers with FRR in
//!   the router namespace and the Service IP shows up in FRR.
//!
//! Skips without root, podman or runc (required under CI=true / FERROLB_REQUIRE_NETNS=1).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrolb_crds::v1alpha1::SpeakerState;
use ferrolb_speaker::source::standalone::state_file;
use ferrolb_tests::lab::{TempDir, bin};
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, link_lab};
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::tools::{require_tool, workspace_root};
use ferrolb_tests::{require_root, run, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// podman with the runtime and limits that work on our machines (crun does not).
fn podman(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["--runtime", "runc"];
    all.extend_from_slice(args);
    run("podman", &all)
}

/// Removes the test's containers and image, also on panic.
struct Cleanup {
    image: String,
    containers: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "2", c]);
        }
        let _ = podman(&["rmi", "-f", &self.image]);
    }
}

const CONFIG: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec: {addresses: [203.0.113.16/28]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec: {ipAddressPools: [bgp-pool]}
---
# Ignored by a speaker with --no-l2 (without the flag this node would own web-l2's IP).
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: ferrolb-system}
spec: {addresses: [192.0.2.200-192.0.2.207]}
---
apiVersion: ferrolb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec: {ipAddressPools: [l2-pool]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, connectTime: 1s}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, annotations: {ferrolb.io/address-pool: bgp-pool}}
spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.10], nodeName: n1, conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: web-l2, namespace: default, annotations: {ferrolb.io/address-pool: l2-pool}}
spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-l2-a, namespace: default, labels: {kubernetes.io/service-name: web-l2}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.10], nodeName: n1, conditions: {ready: true}}]
";

fn bgpd_conf() -> String {
    format!(
        "hostname r\n\
         router bgp 64513\n\
         \x20bgp router-id {ROUTER_V4}\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20no bgp default ipv4-unicast\n\
         \x20neighbor {NODE_V4} remote-as 64512\n\
         \x20neighbor {NODE_V4} timers connect 1\n\
         \x20address-family ipv4 unicast\n\
         \x20 neighbor {NODE_V4} activate\n\
         \x20exit-address-family\n"
    )
}

/// The first IP the controller assigned to default/NAME in DIR/.ferrolb/status.yaml.
fn assigned(dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".ferrolb/status.yaml")).ok()?;
    let st: ferrolb_crds::standalone::StandaloneStatus = serde_saphyr::from_str(&text).ok()?;
    st.service("default", name)?
        .ips()
        .first()
        .map(ToString::to_string)
}

#[test]
fn image_runs_the_controller_standalone_and_a_speaker_peering_with_frr() {
    let name = "image_runs_the_controller_standalone_and_a_speaker_peering_with_frr";
    if !require_root(name) || !require_tool(name, "podman") || !require_tool(name, "runc") {
        return;
    }
    let tag = format!("localhost/ferrolb-test:{}", std::process::id());
    let mut cleanup = Cleanup {
        image: tag.clone(),
        containers: Vec::new(),
    };
    // The debug binaries the suite uses anyway.
    let bin_dir = bin("ferrolb-controller").parent().unwrap().to_path_buf();
    let _ = bin("ferrolb-speaker");
    let t0 = Instant::now();
    let out = Command::new("bash")
        .args(["scripts/build-image.sh", "--bin-dir"])
        .arg(&bin_dir)
        .args(["--tag", &tag])
        .current_dir(workspace_root())
        .output()
        .expect("run build-image.sh");
    assert!(
        out.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("image built in {:.1} s", t0.elapsed().as_secs_f64());
    let inspect = podman(&[
        "image",
        "inspect",
        &tag,
        "--format",
        "{{.Config.User}} {{index .Config.Entrypoint 0}} {{index .Labels \"org.opencontainers.image.version\"}}",
    ])
    .unwrap();
    assert_eq!(
        inspect.trim(),
        format!(
            "65532:65532 /usr/local/bin/ferrolb-controller {}",
            env!("CARGO_PKG_VERSION")
        )
    );

    // The config directory, writable by the image's user (status files go there).
    let dir = TempDir::new("image");
    std::fs::write(dir.path().join("config.yaml"), CONFIG).unwrap();
    run(
        "chown",
        &["-R", "65532:65532", dir.path().to_str().unwrap()],
    )
    .unwrap();
    let mount = format!("{}:/config", dir.path().display());
    let limits = [
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ];

    let ctl = format!("flb-ctl-{}", std::process::id());
    cleanup.containers.push(ctl.clone());
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &ctl,
        "--network",
        "none",
        "-v",
        &mount,
    ];
    args.extend_from_slice(&limits);
    args.extend_from_slice(&[&tag, "--manifests", "/config"]);
    podman(&args).unwrap();
    let ip = wait_until(WAIT, POLL, || {
        assigned(dir.path(), "web-l2")?;
        assigned(dir.path(), "web")
    });
    let ip = ip.unwrap_or_else(|| {
        panic!(
            "controller container wrote no assignment; logs:\n{}",
            podman(&["logs", &ctl]).unwrap_or_default()
        )
    });
    assert!(ip.starts_with("203.0.113."), "{ip}");

    let (r, n) = link_lab("img");
    let frr = Frr::start(&r, &bgpd_conf(), None);
    let spk = format!("flb-spk-{}", std::process::id());
    cleanup.containers.push(spk.clone());
    let netns = format!("ns:/run/netns/{}", n.name());
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &spk,
        "--network",
        &netns,
        "-v",
        &mount,
    ];
    args.extend_from_slice(&limits);
    args.extend_from_slice(&[
        "--entrypoint",
        "/usr/local/bin/ferrolb-speaker",
        &tag,
        "--node",
        "n1",
        "--no-l2",
        "--manifests",
        "/config",
    ]);
    podman(&args).unwrap();
    let prefix = format!("{ip}/32");
    let routed = wait_until(WAIT, POLL, || frr.has_route(&prefix).then_some(()));
    assert!(
        routed.is_some(),
        "FRR never got {prefix}; speaker logs:\n{}\nbgpd:\n{}",
        podman(&["logs", &spk]).unwrap_or_default(),
        frr.log("bgpd")
    );
    assert!(
        frr.route(&prefix).to_string().contains(NODE_V4),
        "next hop is the node"
    );
    // --no-l2: the L2Advertisement is ignored, so the capability-less speaker owns nothing
    // on L2 (and never tried to open an ARP/NDP socket).
    let state = wait_until(WAIT, POLL, || {
        let text = std::fs::read_to_string(state_file(dir.path(), "n1")).ok()?;
        let st: SpeakerState = serde_saphyr::from_str(&text).ok()?;
        st.status.filter(|s| s.peers_established == 1)
    })
    .expect("no speaker state file with an Established session");
    assert!(state.l2_addresses.is_empty(), "{:?}", state.l2_addresses);
    let logs = podman(&["logs", &spk]).unwrap_or_default();
    assert!(!logs.contains("AF_PACKET"), "{logs}");
    eprintln!("image test done in {:.1} s", t0.elapsed().as_secs_f64());
}
