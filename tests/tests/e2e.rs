//! End-to-end tests of the main job through standalone mode: the real binaries in network
//! namespaces, an FRR router, clients on the segment and behind the router (see
//! `ferrolb_tests::lab`). Outcomes only; timings live in `bench/`.
use std::time::Duration;

use ferrolb_tests::lab::{Lab, LabOptions, NODE_NAMES, node_ip};
use ferrolb_tests::{require_root, wait_until};

const CONFIG: &str = r#"
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: ferrolb-system}
spec:
  addresses: ["192.0.2.200-192.0.2.210"]
  autoAssign: false
---
apiVersion: ferrolb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec:
  ipAddressPools: [l2-pool]
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec:
  addresses: ["203.0.113.0/28", "2001:db8:100::/120"]
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec:
  ipAddressPools: [bgp-pool]
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 192.0.2.1
  holdTime: 9s
  connectTime: 1s
GR_LINE
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor6, namespace: ferrolb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: "2001:db8:1::1"
  holdTime: 9s
  connectTime: 1s
GR_LINE
"#;

const NODES: &str = r#"
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
"#;

fn config(graceful_restart: bool) -> String {
    let gr = if graceful_restart {
        "  enableGracefulRestart: true"
    } else {
        ""
    };
    CONFIG.replace("GR_LINE", gr)
}

/// A Service plus its EndpointSlice with ready endpoints on `endpoint_nodes`.
fn service(name: &str, pool: &str, extra_spec: &str, endpoint_nodes: &[usize]) -> String {
    let eps: String = endpoint_nodes
        .iter()
        .map(|&i| {
            format!(
                "  - {{addresses: [{}], nodeName: {}, conditions: {{ready: true}}}}\n",
                node_ip(i),
                NODE_NAMES[i]
            )
        })
        .collect();
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations: {{ferrolb.io/address-pool: {pool}}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  ports: [{{name: http, protocol: TCP, port: 8080, targetPort: 8080}}]
{extra_spec}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, protocol: TCP, port: 8080}}]
endpoints:
{eps}"#
    )
}

fn lab_with(services: &[(&str, String)], graceful_restart: bool) -> Lab {
    let mut lab = Lab::new(LabOptions::default());
    lab.write("config.yaml", &config(graceful_restart));
    lab.write("nodes.yaml", NODES);
    for (file, yaml) in services {
        lab.write(file, yaml);
    }
    lab.start_controller();
    for i in 0..3 {
        lab.start_speaker(i);
    }
    lab
}

fn mac_of(lab: &Lab, node: &str) -> String {
    let i = NODE_NAMES.iter().position(|n| *n == node).unwrap();
    let out = lab.nodes[i].ip(&["link", "show", "eth0"]).unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn l2_ip_answers_from_its_owner_and_fails_over_when_the_owner_dies() {
    if !require_root("l2_ip_answers_from_its_owner_and_fails_over_when_the_owner_dies") {
        return;
    }
    let mut lab = lab_with(
        &[("svc.yaml", service("web", "l2-pool", "", &[0, 1, 2]))],
        false,
    );
    let ip = lab.wait_assigned("web", 1)[0].clone();
    assert!(
        ip.starts_with("192.0.2.2"),
        "IP from l2-pool expected, got {ip}"
    );
    lab.accept_on_nodes(&ip);

    let owner = wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
        Lab::curl(&lab.cl2, &ip, None, "1")
    });
    let owner = owner.unwrap_or_else(|| panic!("{ip} never answered: {}", lab.diag()));
    let neigh = lab.cl2.ip(&["neigh", "show", &ip]).unwrap();
    assert!(
        neigh.contains(&mac_of(&lab, &owner)),
        "client's neighbour entry {neigh:?} is not {owner}'s MAC"
    );

    // The owner dies: its speaker is killed without warning and its link goes down.
    let i = NODE_NAMES.iter().position(|n| *n == owner).unwrap();
    lab.speakers.get(&owner).unwrap().signal("KILL");
    lab.nodes[i].ip(&["link", "set", "eth0", "down"]).unwrap();
    let new = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        Lab::curl(&lab.cl2, &ip, None, "0.3").filter(|n| *n != owner)
    });
    let new = new.unwrap_or_else(|| panic!("no node took over {ip} from {owner}: {}", lab.diag()));
    let neigh = lab.cl2.ip(&["neigh", "show", &ip]).unwrap();
    assert!(
        neigh.contains(&mac_of(&lab, &new)),
        "neighbour entry not moved to {new}: {neigh}"
    );
}

#[test]
fn bgp_ip_gets_three_equal_paths_spreads_traffic_and_is_withdrawn_on_delete() {
    if !require_root("bgp_ip_gets_three_equal_paths_spreads_traffic_and_is_withdrawn_on_delete") {
        return;
    }
    let mut lab = lab_with(
        &[("svc.yaml", service("web", "bgp-pool", "", &[0, 1, 2]))],
        false,
    );
    let ip = lab.wait_assigned("web", 1)[0].clone();
    assert!(
        ip.starts_with("203.0.113."),
        "IPv4 from bgp-pool expected, got {ip}"
    );
    lab.accept_on_nodes(&ip);
    if !lab.wait_paths(&ip, 3, Duration::from_secs(20)) {
        panic!("router does not have 3 paths to {ip}: {}", lab.diag());
    }
    let mut seen = std::collections::BTreeMap::new();
    for port in 40001..40031u16 {
        if let Some(n) = Lab::curl(&lab.cout, &ip, Some(port), "2") {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "30 flows should reach all three nodes, got {seen:?}"
    );

    lab.remove("svc.yaml");
    assert!(
        lab.wait_paths(&ip, 0, Duration::from_secs(15)),
        "route to {ip} still on the router after the Service was deleted: {}",
        lab.diag()
    );
}

#[test]
fn etp_local_is_announced_only_from_nodes_with_endpoints_and_follows_them() {
    if !require_root("etp_local_is_announced_only_from_nodes_with_endpoints_and_follows_them") {
        return;
    }
    let local = "  externalTrafficPolicy: Local";
    let mut lab = lab_with(
        &[("svc.yaml", service("loc", "bgp-pool", local, &[1]))],
        false,
    );
    let ip = lab.wait_assigned("loc", 1)[0].clone();
    lab.accept_on_nodes(&ip);
    let via_n2 = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let r = lab.r.ip(&["route", "show", &ip]).unwrap_or_default();
        (r.contains(&format!("via {}", node_ip(1))) && lab.router_paths(&ip) == 1).then_some(())
    });
    assert!(
        via_n2.is_some(),
        "expected one path via n2 only: {}",
        lab.diag()
    );

    // The endpoint moves to n3: the route follows.
    lab.write("svc.yaml", &service("loc", "bgp-pool", local, &[2]));
    let via_n3 = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let r = lab.r.ip(&["route", "show", &ip]).unwrap_or_default();
        (r.contains(&format!("via {}", node_ip(2))) && lab.router_paths(&ip) == 1).then_some(())
    });
    assert!(
        via_n3.is_some(),
        "route did not follow the endpoint to n3: {}",
        lab.diag()
    );
}

#[test]
fn dual_stack_service_is_reachable_over_ipv4_and_ipv6() {
    if !require_root("dual_stack_service_is_reachable_over_ipv4_and_ipv6") {
        return;
    }
    let ds = "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]";
    let mut lab = lab_with(
        &[("svc.yaml", service("ds", "bgp-pool", ds, &[0, 1, 2]))],
        false,
    );
    let ips = lab.wait_assigned("ds", 2);
    let v4 = ips
        .iter()
        .find(|i| !i.contains(':'))
        .expect("an IPv4 address")
        .clone();
    let v6 = ips
        .iter()
        .find(|i| i.contains(':'))
        .expect("an IPv6 address")
        .clone();
    assert!(
        v6.starts_with("2001:db8:100::"),
        "IPv6 from bgp-pool expected, got {v6}"
    );
    lab.accept_on_nodes(&v4);
    lab.accept_on_nodes(&v6);
    assert!(
        lab.wait_paths(&v4, 3, Duration::from_secs(20)),
        "v4 paths: {}",
        lab.diag()
    );
    assert!(
        lab.wait_paths(&v6, 3, Duration::from_secs(20)),
        "v6 paths: {}",
        lab.diag()
    );
    assert!(
        Lab::curl(&lab.cout, &v4, None, "2").is_some(),
        "no answer on {v4}"
    );
    assert!(
        Lab::curl(&lab.cout, &v6, None, "2").is_some(),
        "no answer on {v6}"
    );
}

#[test]
fn pool_edits_never_move_a_running_service_and_new_services_get_ips() {
    if !require_root("pool_edits_never_move_a_running_service_and_new_services_get_ips") {
        return;
    }
    let mut lab = lab_with(
        &[("a.yaml", service("a", "bgp-pool", "", &[0, 1, 2]))],
        false,
    );
    let ip_a = lab.wait_assigned("a", 1)[0].clone();
    lab.accept_on_nodes(&ip_a);
    assert!(
        lab.wait_paths(&ip_a, 3, Duration::from_secs(20)),
        "{}",
        lab.diag()
    );

    // Shrink the pool so it no longer contains a's address: a keeps it and stays announced.
    let shrunk = config(false).replace(
        r#"addresses: ["203.0.113.0/28", "2001:db8:100::/120"]"#,
        r#"addresses: ["203.0.113.8/29", "2001:db8:100::/120"]"#,
    );
    lab.write("config.yaml", &shrunk);
    lab.write("b.yaml", &service("b", "bgp-pool", "", &[0, 1, 2]));
    let ip_b = lab.wait_assigned("b", 1)[0].clone();
    let last: u8 = ip_b.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        (8..16).contains(&last),
        "b must come from the shrunk pool, got {ip_b}"
    );
    assert_eq!(
        lab.assigned_ips("a"),
        vec![ip_a.clone()],
        "a's address moved"
    );

    // A broken edit (typo) keeps the last good config: b keeps its IP and route.
    lab.accept_on_nodes(&ip_b);
    assert!(
        lab.wait_paths(&ip_b, 3, Duration::from_secs(20)),
        "{}",
        lab.diag()
    );
    lab.write(
        "config.yaml",
        &shrunk.replace("203.0.113.8/29", "203.0.113.8/33"),
    );
    std::thread::sleep(Duration::from_secs(1)); // let both binaries see the broken file
    assert_eq!(lab.assigned_ips("b"), vec![ip_b.clone()]);
    assert_eq!(
        lab.router_paths(&ip_b),
        3,
        "a typo must not withdraw routes: {}",
        lab.diag()
    );
}

#[test]
fn graceful_restart_keeps_the_route_on_the_router_across_a_speaker_restart() {
    if !require_root("graceful_restart_keeps_the_route_on_the_router_across_a_speaker_restart") {
        return;
    }
    let mut lab = lab_with(
        &[("svc.yaml", service("gr", "bgp-pool", "", &[0, 1, 2]))],
        true,
    );
    let ip = lab.wait_assigned("gr", 1)[0].clone();
    lab.accept_on_nodes(&ip);
    assert!(
        lab.wait_paths(&ip, 3, Duration::from_secs(20)),
        "{}",
        lab.diag()
    );

    // n1's speaker crashes: with graceful restart the router keeps n1's path (stale) ...
    lab.speakers.get("n1").unwrap().signal("KILL");
    let dropped = wait_until(Duration::from_secs(3), Duration::from_millis(100), || {
        (lab.router_paths(&ip) < 3).then_some(())
    });
    assert!(
        dropped.is_none(),
        "router dropped n1's path although GR was negotiated"
    );
    let path = lab.frr.vtysh(&[&format!("show bgp ipv4 unicast {ip}")]);
    assert!(
        path.to_lowercase().contains("stale"),
        "n1's path should be kept as stale: {path}"
    );
    // ... and the restarted speaker refreshes it: no stale path left, still three next hops.
    lab.start_speaker(0);
    let fresh = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let p = lab.frr.vtysh(&[&format!("show bgp ipv4 unicast {ip}")]);
        (!p.to_lowercase().contains("stale") && lab.router_paths(&ip) == 3).then_some(())
    });
    assert!(
        fresh.is_some(),
        "n1's path not refreshed after restart: {}",
        lab.diag()
    );
    assert_eq!(lab.router_paths(&ip), 3);
}
