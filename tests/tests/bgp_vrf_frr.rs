//! BGPPeer `vrf` (issue #17) against FRR 8.4, through the whole speaker (`run` with a
//! manifests directory), in network namespaces on a kernel with VRF devices: this host's,
//! else a qemu VM with Debian's kernel (`ferrolb_tests::vm`, `tests/vm/prepare.sh`).
//!
//! Overlapping address plans: node `n` has VRF `red` (veth `r0`, 192.0.2.2/24, to router
//! `rr` at 192.0.2.1) and VRF `blue` (veth `b0`, also 192.0.2.2/24, to router `rb`, also at
//! 192.0.2.1), and in its default VRF only a dummy address (203.0.113.200/32) no router can
//! reach: the default VRF has no route to either router, so the sessions come up only from
//! inside their VRFs. Router `rb` runs its sessions in a VRF of its own too
//! (`router bgp 64514 vrf cust`). Both get the Service /32 with next hop 192.0.2.2.
//!
//! A third BGPPeer names VRF `green`, which does not exist yet: SpeakerState and the error
//! metric say so while the other two stay up; once `green` is created (veth `g0`,
//! 198.51.100.2/24, to `rb` at 198.51.100.1) its session comes up and `rb` has a second
//! path.

use std::time::Duration;

use ferrolb_tests::netns::veth;
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{Netns, require_root, vm, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(300);
const SERVICE: &str = "203.0.113.5/32";
/// The whole run in the VM (boot, FRR, speaker, checks) under TCG.
const VM_LIMIT: Duration = Duration::from_secs(240);

fn peer(name: &str, addr: &str, asn: u32, vrf: &str) -> String {
    format!(
        "---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\n\
         metadata: {{name: {name}, namespace: ferrolb-system}}\n\
         spec: {{myASN: 64512, peerASN: {asn}, peerAddress: {addr}, vrf: {vrf}, connectTime: 1s, holdTime: 9s}}\n"
    )
}

fn config() -> String {
    String::from(
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\n\
         metadata: {name: bgp-pool, namespace: ferrolb-system}\n\
         spec: {addresses: [203.0.113.0/28]}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\n\
         metadata: {name: bgp, namespace: ferrolb-system}\n\
         spec: {ipAddressPools: [bgp-pool]}\n",
    ) + &peer("red", "192.0.2.1", 64513, "red")
        + &peer("blue", "192.0.2.1", 64514, "blue")
        + &peer("green", "198.51.100.1", 64514, "green")
}

const FRR_RED: &str = "router bgp 64513\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n \
     neighbor 192.0.2.2 remote-as 64512\n neighbor 192.0.2.2 timers connect 1\nexit\n";

/// `rb` peers from its own VRF `cust` (FRR's `router bgp ASN vrf NAME`).
const FRR_BLUE: &str = "router bgp 64514 vrf cust\n bgp router-id 192.0.2.1\n \
     no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n \
     neighbor 192.0.2.2 remote-as 64512\n neighbor 192.0.2.2 timers connect 1\n \
     neighbor 198.51.100.2 remote-as 64512\n neighbor 198.51.100.2 timers connect 1\nexit\n";

fn ip(ns: &Netns, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    ns.ip(&args).unwrap_or_else(|e| panic!("{e}"));
}

/// Creates VRF `name` (table `table`) in `ns` and puts `dev` (with `addr`) in it.
fn vrf_with(ns: &Netns, name: &str, table: u32, dev: &str, addr: &str) {
    ip(ns, &format!("link add {name} type vrf table {table}"));
    ip(ns, &format!("link set {name} up"));
    ip(ns, &format!("link set {dev} master {name}"));
    ip(ns, &format!("addr add {addr} dev {dev}"));
    ip(ns, &format!("link set {dev} up"));
}

/// The next hops of `prefix` in the router's BGP table (in VRF `vrf` when given).
fn next_hops(frr: &Frr, vrf: Option<&str>, prefix: &str) -> Vec<String> {
    let cmd = match vrf {
        Some(v) => format!("show bgp vrf {v} ipv4 unicast {prefix} json"),
        None => format!("show bgp ipv4 unicast {prefix} json"),
    };
    let v: serde_json::Value =
        serde_json::from_str(&frr.try_vtysh(&[&cmd]).unwrap_or_default()).unwrap_or_default();
    let mut hops: Vec<String> = v["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nexthops"][0]["ip"].as_str().map(str::to_string))
        .collect();
    hops.sort();
    hops
}

fn wait_hops(frr: &Frr, vrf: Option<&str>, want: &[&str]) {
    let got = wait_until(WAIT, POLL, || {
        (next_hops(frr, vrf, SERVICE) == want).then_some(())
    });
    assert!(
        got.is_some(),
        "router {}: want next hops {want:?} for {SERVICE}, have {:?}\n{}",
        frr.ns(),
        next_hops(frr, vrf, SERVICE),
        frr.try_vtysh(&["show bgp vrf all summary"])
            .unwrap_or_default()
    );
}

fn error_metric(sp: &RunningSpeaker) -> String {
    let mut reg = prometheus_client::registry::Registry::default();
    sp.metrics.register(&mut reg);
    let mut t = String::new();
    prometheus_client::encoding::text::encode(&mut t, &reg).unwrap();
    t.lines()
        .find(|l| {
            l.starts_with("ferrolb_speaker_bgp_session_errors_total{peer=\"green\"")
                && l.contains("kind=\"connect_failed\"")
        })
        .unwrap_or_default()
        .to_string()
}

#[test]
fn vrf_peers_against_frr() {
    if !require_root("vrf_peers_against_frr") {
        return;
    }
    vm::with_vrf_kernel("vrf_peers_against_frr", VM_LIMIT, vrf_peers_body);
}

fn vrf_peers_body() {
    let n = Netns::new("vrfn");
    let rr = Netns::new("vrfr");
    let rb = Netns::new("vrfb");
    veth(&n, "r0", &rr, "eth0");
    veth(&n, "b0", &rb, "eth0");
    veth(&n, "g0", &rb, "eth1");
    vrf_with(&n, "red", 10, "r0", "192.0.2.2/24");
    vrf_with(&n, "blue", 20, "b0", "192.0.2.2/24");
    ip(&n, "link add d0 type dummy");
    ip(&n, "addr add 203.0.113.200/32 dev d0");
    ip(&n, "link set d0 up");
    ip(&rr, "addr add 192.0.2.1/24 dev eth0");
    vrf_with(&rb, "cust", 30, "eth0", "192.0.2.1/24");
    ip(&rb, "link set eth1 master cust");
    ip(&rb, "addr add 198.51.100.1/24 dev eth1");
    // The default VRF of the node reaches neither router.
    assert!(n.ip(&["route", "get", "192.0.2.1"]).is_err());

    let red = Frr::start(&rr, FRR_RED, None);
    let blue = Frr::start(&rb, FRR_BLUE, None);
    let sp = RunningSpeaker::start(&n, &[("svc.yaml", WEB_SERVICE), ("bgp.yaml", &config())]);

    // Each router has the Service from the node's address in that VRF.
    wait_hops(&red, None, &["192.0.2.2"]);
    wait_hops(&blue, Some("cust"), &["192.0.2.2"]);
    let fib = rr.ip(&["route", "show", "203.0.113.5"]).unwrap();
    assert!(fib.contains("via 192.0.2.2"), "{fib}");

    // The missing VRF: said in SpeakerState and counted, the others untouched.
    let read = || std::fs::read_to_string(sp.state_path()).unwrap_or_default();
    let said = wait_until(WAIT, POLL, || {
        read()
            .contains("binding to VRF green: no such VRF device")
            .then_some(())
    });
    assert!(said.is_some(), "{}", read());
    assert!(
        read().contains("vrf: red") && read().contains("vrf: blue"),
        "{}",
        read()
    );
    let counted = wait_until(WAIT, POLL, || (!error_metric(&sp).is_empty()).then_some(()));
    assert!(counted.is_some(), "no connect_failed count for green");
    assert!(red.wait_established("192.0.2.2", Duration::ZERO));

    // VRF green appears: its session comes up, with its own next hop; the others stay.
    vrf_with(&n, "green", 30, "g0", "198.51.100.2/24");
    wait_hops(&blue, Some("cust"), &["192.0.2.2", "198.51.100.2"]);
    assert_eq!(next_hops(&red, None, SERVICE), ["192.0.2.2"]);
    let flaps = red.neighbor("192.0.2.2")["connectionsDropped"].as_u64();
    assert_eq!(flaps, Some(0), "the red session never dropped");
    drop(sp);
}
