//! Unnumbered BGP (BGPPeer `interface`, issue #17) against FRR 8.4 `neighbor IFACE interface
//! remote-as external`, through the whole speaker (`run` with a manifests directory).
//!
//! Router `r` has one veth per node (`u1`..`u3`); every node has only `eth0` towards it, with
//! NO IPv4 address and no global IPv6 address: only the kernel's link-local one. Each
//! speaker sends Router Advertisements on `eth0` (FRR's zebra learns the neighbour from
//! them) and learns FRR's link-local address from FRR's own RAs, opens the session to
//! `fe80::...%eth0`, and announces an IPv4 /32 (with an IPv6 link-local next hop, RFC 8950)
//! and an IPv6 /128. The router's kernel FIB then has both with one next hop per node
//! (`via inet6 fe80::...` for the /32); deleting the Services withdraws them.
//!
//! Also BIRD 2.0.12 as the router (RAs from `protocol radv`, a dynamic link-local neighbour),
//! with one node: with `extended next hop on` it gets both routes; without it the IPv4 route
//! is refused and the speaker says so in SpeakerState and a metric.
//!
//! And BFD over the link-local session (BGPPeer `interface` + `bfdProfile`) against FRR's
//! `neighbor u1 bfd`: both sides Up; BFD packets dropped on the node → both sides Down and the
//! router withdraws the routes long before the BGP hold time.

use std::time::Duration;

use ferrolb_tests::netns::veth;
use ferrolb_tests::peers_bird::Bird;
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{Netns, require_root, wait_until};

const WAIT: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(200);
const V4: &str = "203.0.113.5";
const V6: &str = "2001:db8:100::5";
const NODES: usize = 3;

/// `web6` (IPv6, endpoint on n1), added to the shared `web` fixture by [`services`].
const WEB6: &str = "
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: default}
spec: {type: LoadBalancer, ipFamilies: [IPv6], ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web6-a, namespace: default, labels: {kubernetes.io/service-name: web6}}
addressType: IPv6
endpoints: [{addresses: ['2001:db8:2::10'], nodeName: n1}]
";

/// Node n1, `web` (IPv4) and `web6` (IPv6), each with an endpoint on n1.
fn services() -> String {
    format!("{WEB_SERVICE}---{WEB6}")
}

const STATUS: &str = "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 203.0.113.5\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n  - namespace: default\n    name: web6\n    ingress:\n      - ip: 2001:db8:100::5\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n";

fn config(router_id: &str) -> String {
    config_with(router_id, "")
}

/// [`config`] with `extra` appended to the BGPPeer's spec (e.g. `, bfdProfile: fast`) and
/// any further documents in `docs`.
fn config_with(router_id: &str, extra: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\n\
         metadata: {{name: bgp-pool, namespace: ferrolb-system}}\n\
         spec: {{addresses: [203.0.113.0/28, '2001:db8:100::/120']}}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\n\
         metadata: {{name: bgp, namespace: ferrolb-system}}\n\
         spec: {{ipAddressPools: [bgp-pool]}}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\n\
         metadata: {{name: tor, namespace: ferrolb-system}}\n\
         spec: {{myASN: 64512, peerASN: 64513, interface: eth0, routerID: {router_id}, connectTime: 1s{extra}}}\n"
    )
}

fn frr_conf() -> String {
    let mut c = String::from(
        "router bgp 64513\n bgp router-id 198.51.100.1\n bgp log-neighbor-changes\n \
         no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n",
    );
    for i in 1..=NODES {
        c += &format!(
            " neighbor u{i} interface remote-as external\n neighbor u{i} timers connect 1\n"
        );
    }
    c += " address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n";
    c += " address-family ipv6 unicast\n";
    for i in 1..=NODES {
        c += &format!("  neighbor u{i} activate\n");
    }
    c += "  maximum-paths 8\n exit-address-family\nexit\n";
    c
}

/// Kernel routes for `prefix` in `r`: (next hops, the raw text).
fn fib(r: &Netns, prefix: &str) -> (usize, String) {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let out = r.ip(&[fam, "route", "show", prefix]).unwrap_or_default();
    let hops = out.matches("via ").count();
    (hops, out)
}

fn no_dad(ns: &Netns) {
    for k in ["all", "default"] {
        let _ = ns.sysctl(&format!("net.ipv6.conf.{k}.accept_dad=0"));
    }
}

/// The router (FRR) with one veth per node, and the nodes, each running a speaker with the
/// Services and an unnumbered BGPPeer on `eth0`. Dropped in field order: speakers, FRR,
/// namespaces.
struct UnnumberedLab {
    speakers: Vec<RunningSpeaker>,
    frr: Frr,
    nodes: Vec<Netns>,
    r: Netns,
}

impl UnnumberedLab {
    fn start() -> UnnumberedLab {
        let r = Netns::new("unn-r");
        no_dad(&r);
        r.sysctl("net.ipv4.ip_forward=1").unwrap();
        r.sysctl("net.ipv6.conf.all.forwarding=1").unwrap();
        let nodes: Vec<Netns> = (1..=NODES)
            .map(|i| {
                let n = Netns::new(&format!("unn-n{i}"));
                no_dad(&n);
                veth(&r, &format!("u{i}"), &n, "eth0");
                n
            })
            .collect();
        let frr = Frr::start(&r, &frr_conf(), None);
        let speakers: Vec<RunningSpeaker> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                // No address on the link but the kernel's link-local one.
                assert!(
                    !n.ip(&["-4", "addr", "show", "dev", "eth0"])
                        .unwrap()
                        .contains("inet ")
                );
                let cfg = config(&format!("192.0.2.{}", 21 + i));
                RunningSpeaker::start_with_status(
                    n,
                    STATUS,
                    &[("svc.yaml", &services()), ("bgp.yaml", &cfg)],
                )
            })
            .collect();
        UnnumberedLab {
            speakers,
            frr,
            nodes,
            r,
        }
    }
}

#[test]
fn unnumbered_ecmp_over_three_nodes_ipv4_via_ipv6_next_hops() {
    if !require_root("unnumbered_ecmp_over_three_nodes_ipv4_via_ipv6_next_hops") {
        return;
    }
    let lab = UnnumberedLab::start();
    let (r, frr) = (&lab.r, &lab.frr);
    let all_paths = wait_until(WAIT, POLL, || {
        (fib(r, V4).0 == NODES && fib(r, V6).0 == NODES).then_some(())
    });
    let summary = frr.try_vtysh(&["show bgp summary"]).unwrap_or_default();
    assert!(
        all_paths.is_some(),
        "want {NODES} next hops for {V4} and {V6}\nv4: {}\nv6: {}\n{summary}\n{}",
        fib(r, V4).1,
        fib(r, V6).1,
        frr.log("bgpd")
    );
    // IPv4 routes via IPv6 link-local next hops (RFC 8950), one per node's link.
    let (_, v4) = fib(r, V4);
    eprintln!("router FIB:\n{v4}\n{}", fib(r, V6).1);
    assert_eq!(v4.matches("via inet6 fe80::").count(), NODES, "{v4}");
    for i in 1..=NODES {
        assert!(v4.contains(&format!("dev u{i}")), "{v4}");
    }
    // Each speaker also accepts the router's connection on its link-local address.
    for n in &lab.nodes {
        let ss = n.exec("ss", &["-Hltn", "sport = :179"]).unwrap_or_default();
        assert!(ss.contains("[fe80::") && ss.contains("%eth0"), "{ss}");
    }
    // Each node's SpeakerState shows the session, at the router's link-local address on eth0.
    for sp in &lab.speakers {
        let read = || std::fs::read_to_string(sp.state_path()).unwrap_or_default();
        let shown = wait_until(WAIT, POLL, || {
            let s = read();
            (s.contains("%eth0") && s.contains("Established")).then_some(())
        });
        assert!(shown.is_some(), "{}", read());
    }
    // The sessions negotiated the extended next hop capability.
    let nb = frr.neighbor("u1");
    let caps = nb["neighborCapabilities"].to_string();
    assert!(caps.to_lowercase().contains("extendednexthop"), "{caps}");

    // Withdraw: the Services go away, and so do the routes on the router.
    for sp in &lab.speakers {
        sp.write(
            "svc.yaml",
            "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
        );
    }
    let gone = wait_until(WAIT, POLL, || {
        (fib(r, V4).0 == 0 && fib(r, V6).0 == 0).then_some(())
    });
    assert!(gone.is_some(), "v4: {}\nv6: {}", fib(r, V4).1, fib(r, V6).1);
}

/// The router namespace `r` and the node `n`, linked by `u1` - `eth0`.
fn bird_lab(tag: &str) -> (Netns, Netns) {
    let r = Netns::new(&format!("{tag}-r"));
    let n = Netns::new(&format!("{tag}-n"));
    no_dad(&r);
    no_dad(&n);
    veth(&r, "u1", &n, "eth0");
    (r, n)
}

/// BIRD 2.0.12 as the router in `r`: it sends RAs (`protocol radv`, router lifetime 0) and
/// accepts a dynamic BGP neighbour from any link-local address on `u1`; `ext` turns RFC 8950
/// on in its IPv4 channel.
fn start_bird(r: &Netns, ext: bool) -> Bird {
    let ext = if ext { "extended next hop on;" } else { "" };
    Bird::start(
        r,
        "198.51.100.1",
        &format!(
            "protocol radv {{\n  interface \"u1\" {{ min ra interval 3; max ra interval 4; default lifetime 0; }};\n}}\n\
             protocol bgp leaf {{\n  local as 64513;\n  neighbor range fe80::/10 as 64512;\n  interface \"u1\";\n\
             \x20 dynamic name \"leaf\";\n  ipv4 {{ import all; export none; {ext} }};\n\
             \x20 ipv6 {{ import all; export none; }};\n}}\n"
        ),
    )
}

fn bird_has(bird: &Bird, v4: bool, v6: bool) -> bool {
    bird.has_route(&format!("{V4}/32")) == v4 && bird.has_route(&format!("{V6}/128")) == v6
}

/// One node against BIRD with RFC 8950: the speaker finds BIRD by its RAs and BIRD gets both
/// routes with the node's link-local next hop; they go when the Services go.
#[test]
fn unnumbered_to_bird_with_extended_next_hop() {
    if !require_root("unnumbered_to_bird_with_extended_next_hop") {
        return;
    }
    // Dropped in reverse: speaker, BIRD, namespaces.
    let (r, n) = bird_lab("unnb");
    let bird = start_bird(&r, true);
    let sp = RunningSpeaker::start_with_status(
        &n,
        STATUS,
        &[
            ("svc.yaml", &services()),
            ("bgp.yaml", &config("192.0.2.21")),
        ],
    );
    let ok = wait_until(WAIT, POLL, || bird_has(&bird, true, true).then_some(()));
    let all = bird
        .try_birdc(&["show", "route", "all"])
        .unwrap_or_default();
    assert!(ok.is_some(), "{all}\n{}", bird.log());
    let v4 = bird.route(&format!("{V4}/32"));
    assert!(v4.contains("via fe80::") && v4.contains("on u1"), "{v4}");
    sp.write(
        "svc.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    let gone = wait_until(WAIT, POLL, || bird_has(&bird, false, false).then_some(()));
    assert!(
        gone.is_some(),
        "{}",
        bird.try_birdc(&["show", "route", "all"])
            .unwrap_or_default()
    );
}

/// BIRD without RFC 8950: the IPv6 route goes, the IPv4 one is refused, and the speaker says
/// why in its SpeakerState (`lastError`) and in a metric.
#[test]
fn unnumbered_without_extended_next_hop_refuses_ipv4_routes() {
    if !require_root("unnumbered_without_extended_next_hop_refuses_ipv4_routes") {
        return;
    }
    let (r, n) = bird_lab("unnx");
    let bird = start_bird(&r, false);
    let sp = RunningSpeaker::start_with_status(
        &n,
        STATUS,
        &[
            ("svc.yaml", &services()),
            ("bgp.yaml", &config("192.0.2.21")),
        ],
    );
    let v6 = wait_until(WAIT, POLL, || bird_has(&bird, false, true).then_some(()));
    assert!(
        v6.is_some(),
        "{}",
        bird.try_birdc(&["show", "route", "all"])
            .unwrap_or_default()
    );
    let read = || std::fs::read_to_string(sp.state_path()).unwrap_or_default();
    let said = wait_until(WAIT, POLL, || {
        read().contains("IPv4 routes not sent").then_some(())
    });
    assert!(said.is_some(), "{}", read());
    // The metric follows at the speaker's next poll.
    let refused = || {
        let mut reg = prometheus_client::registry::Registry::default();
        sp.metrics.register(&mut reg);
        let mut t = String::new();
        prometheus_client::encoding::text::encode(&mut t, &reg).unwrap();
        t.lines()
            .find(|l| l.starts_with("ferrolb_speaker_bgp_routes_refused_no_extended_next_hop{"))
            .unwrap_or_default()
            .to_string()
    };
    let counted = wait_until(WAIT, POLL, || refused().ends_with(" 1").then_some(()));
    assert!(counted.is_some(), "{:?}", refused());
    assert!(!bird.has_route(&format!("{V4}/32")));
}

/// BFD over the unnumbered session: FRR's bfdd runs single-hop BFD to our link-local address
/// (`neighbor u1 bfd`), ours to FRR's. Dropping BFD on the node takes both sides Down and the
/// router's routes go with the BGP session (hold time 180 s: only BFD can do that in time).
#[test]
fn unnumbered_with_bfd_against_frr() {
    if !require_root("unnumbered_with_bfd_against_frr") {
        return;
    }
    let (r, n) = bird_lab("unnbfd");
    r.sysctl("net.ipv6.conf.all.forwarding=1").unwrap();
    let frr = Frr::start(
        &r,
        "router bgp 64513\n bgp router-id 198.51.100.1\n no bgp ebgp-requires-policy\n \
         neighbor u1 interface remote-as external\n neighbor u1 timers connect 1\n \
         neighbor u1 bfd\n neighbor u1 bfd profile fast\n \
         address-family ipv6 unicast\n  neighbor u1 activate\n exit-address-family\nexit\n",
        Some("bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n exit\nexit\n"),
    );
    let profile = "---\napiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\n\
                   metadata: {name: fast, namespace: ferrolb-system}\n\
                   spec: {receiveInterval: 100, transmitInterval: 100}\n";
    let cfg = config_with("192.0.2.21", ", bfdProfile: fast") + profile;
    let sp = RunningSpeaker::start_with_status(
        &n,
        STATUS,
        &[("svc.yaml", &services()), ("bgp.yaml", &cfg)],
    );
    let frr_bfd = || frr.try_vtysh(&["show bfd peers json"]).unwrap_or_default();
    let frr_bfd_up = || {
        serde_json::from_str::<serde_json::Value>(&frr_bfd())
            .ok()
            .and_then(|v| {
                v.as_array()?.iter().find_map(|p| {
                    let addr = p["peer"].as_str()?;
                    (addr.starts_with("fe80:") && p["status"] == "up").then_some(())
                })
            })
            .is_some()
    };
    let read = || std::fs::read_to_string(sp.state_path()).unwrap_or_default();
    let up = wait_until(WAIT, POLL, || {
        (fib(&r, V4).0 == 1 && frr_bfd_up() && read().contains("bfd: Up")).then_some(())
    });
    assert!(
        up.is_some(),
        "route, FRR's BFD and ours up:\n{}\n{}\n{}\n{}",
        fib(&r, V4).1,
        frr_bfd(),
        read(),
        frr.log("bfdd")
    );
    // BFD dropped on the node (control packets in, UDP 3784): ours goes Down, FRR hears it
    // (or times out itself), and its BGP session and routes go with it.
    n.exec(
        "ip6tables",
        &["-A", "INPUT", "-p", "udp", "--dport", "3784", "-j", "DROP"],
    )
    .unwrap();
    let down = wait_until(WAIT, POLL, || {
        (fib(&r, V4).0 == 0 && !frr_bfd_up() && read().contains("bfd: Down")).then_some(())
    });
    assert!(
        down.is_some(),
        "after dropping BFD on the node:\n{}\n{}\n{}",
        fib(&r, V4).1,
        frr_bfd(),
        read()
    );
    // BFD back: the session and the route return.
    n.exec("ip6tables", &["-F", "INPUT"]).unwrap();
    let back = wait_until(WAIT, POLL, || {
        (fib(&r, V4).0 == 1 && frr_bfd_up()).then_some(())
    });
    assert!(back.is_some(), "{}\n{}", fib(&r, V4).1, frr_bfd());
}
