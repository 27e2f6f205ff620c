//! End to end with BFD: the lab (tests/src/lab.rs) with FRR's bfdd on the router and a
//! BFDProfile on the BGPPeer. Three speakers announce one BGP Service IP (3-way ECMP); one
//! speaker is frozen (SIGSTOP): the router drops that node's path long before the 90 s hold
//! time (BFD 300 ms x 3), the other two stay; SIGCONT brings the third path back.
//! Outcome test: the only time bound is "well before the hold time", not a latency claim (the
//! latency is measured in bench/bfd/e2e_routes.sh).

use std::time::Duration;

use ferrolb_tests::lab::{Lab, LabOptions};
use ferrolb_tests::{require_root, wait_until};

const CONFIG: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec: {addresses: [203.0.113.0/28], avoidBuggyIPs: true}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec: {ipAddressPools: [bgp-pool]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, holdTime: 90s, connectTime: 1s, bfdProfile: fast}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {kubernetes.io/hostname: n2}}
---
apiVersion: v1
kind: Node
metadata: {name: n3, labels: {kubernetes.io/hostname: n3}}
";

const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata: {name: web-bgp, namespace: default}
spec: {type: LoadBalancer, ports: [{name: http, protocol: TCP, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-bgp-a, namespace: default, labels: {kubernetes.io/service-name: web-bgp}}
addressType: IPv4
endpoints:
  - {addresses: [192.0.2.11], nodeName: n1, conditions: {ready: true}}
  - {addresses: [192.0.2.12], nodeName: n2, conditions: {ready: true}}
  - {addresses: [192.0.2.13], nodeName: n3, conditions: {ready: true}}
";

/// The next hops the router's kernel has for `ip`.
fn next_hops(lab: &Lab, ip: &str) -> Vec<String> {
    let out = lab.r.ip(&["-4", "route", "show", ip]).unwrap_or_default();
    let words: Vec<&str> = out.split_whitespace().collect();
    let mut hops: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    hops.sort();
    hops
}

/// Number of BFD sessions FRR reports as up.
fn bfd_up(lab: &Lab) -> usize {
    lab.frr
        .vtysh(&["show bfd peers brief"])
        .lines()
        .filter(|l| l.contains("192.0.2.1") && l.split_whitespace().any(|w| w == "up"))
        .count()
}

#[test]
fn frozen_speaker_leaves_the_router_by_bfd_before_the_hold_time() {
    if !require_root("frozen_speaker_leaves_the_router_by_bfd_before_the_hold_time") {
        return;
    }
    let mut lab = Lab::new(LabOptions {
        ipv6: false,
        bfdd: Some(
            "bfd\n profile fast\n  receive-interval 300\n  transmit-interval 300\n  \
             detect-multiplier 3\n exit\nexit\n"
                .into(),
        ),
        bgp_extra: " neighbor NODES bfd\n neighbor NODES bfd profile fast\n".into(),
        ..LabOptions::default()
    });
    lab.write("config.yaml", CONFIG);
    lab.write("services.yaml", SERVICE);
    lab.start_controller();
    for i in 0..3 {
        lab.start_speaker(i);
    }
    let ip = lab.wait_assigned("web-bgp", 1).remove(0);
    let all = vec!["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    let converged = |lab: &Lab| {
        wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            (next_hops(lab, &ip) == all && bfd_up(lab) == 3).then_some(())
        })
        .is_some()
    };
    if !converged(&lab) {
        let d = lab.diag();
        let bfd = lab.frr.vtysh(&["show bfd peers brief"]);
        panic!("no 3 paths with 3 BFD sessions up for {ip}:\n{bfd}\n{d}");
    }

    // Freeze n2's speaker: its BGP keepalives and BFD packets stop; only BFD can tell the
    // router within seconds (hold time 90 s).
    lab.speakers["n2"].signal("STOP");
    let dropped = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (next_hops(&lab, &ip) == ["192.0.2.11", "192.0.2.13"]).then_some(())
    });
    let hops = next_hops(&lab, &ip);
    let bfd = lab.frr.vtysh(&["show bfd peers brief"]);
    lab.speakers["n2"].signal("CONT");
    assert!(
        dropped.is_some(),
        "router still has {hops:?} for {ip} 10 s after freezing n2 (hold time 90 s):\n{bfd}"
    );

    // Thawed, n2 re-establishes BGP and BFD and its path comes back.
    if !converged(&lab) {
        let d = lab.diag();
        let bfd = lab.frr.vtysh(&["show bfd peers brief"]);
        panic!("n2's path did not come back after SIGCONT:\n{bfd}\n{d}");
    }
}
