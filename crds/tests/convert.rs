//! `metallb-convert`: MetalLB's own documented configurations (fixtures/metallb/) convert to
//! ferrolb YAML that `Config::build` accepts, and whatever cannot be converted is a loss naming
//! object and field (the binary then exits 1 unless --allow-lossy).
use std::process::Command;

use ferrolb_crds::Config;
use ferrolb_crds::convert::{Conversion, convert_metallb, well_known_name};
use ferrolb_crds::yaml::load_str;

const METALLB: &str = "\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod, namespace: metallb-system, uid: abc, resourceVersion: \"7\"}
spec:
  addresses: [192.0.2.0/28]
  autoAssign: false
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 192.0.2.1
  vrf: red
  passwordSecret: {name: md5, namespace: metallb-system}
---
apiVersion: v1
kind: Secret
metadata: {name: md5, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: x}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: {metallb.universe.tf/address-pool: prod, metallb.io/allow-shared-ip: k, other: keep}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
";

fn fixture(name: &str) -> (String, Conversion) {
    let path = format!(
        "{}/tests/fixtures/metallb/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    (path, convert_metallb(name, &text))
}

/// The output loads as ferrolb YAML with no unknown field and validates.
fn valid(c: &Conversion) -> ferrolb_crds::ClusterResources {
    let loaded = load_str("out.yaml", &c.yaml);
    assert!(loaded.errors.is_empty(), "{:?}\n{}", loaded.errors, c.yaml);
    assert!(
        loaded.unknown_fields.is_empty(),
        "{:?}",
        loaded.unknown_fields
    );
    assert!(!c.yaml.contains("metallb"), "{}", c.yaml);
    let out = Config::build(&loaded.resources, None);
    assert!(out.is_valid(), "{:?}\n{}", out.errors, c.yaml);
    loaded.resources
}

fn losses(c: &Conversion) -> Vec<String> {
    c.losses.iter().map(ToString::to_string).collect()
}

#[test]
fn converts_metallb_crds_services_and_secrets() {
    let c = convert_metallb("m.yaml", METALLB);
    let r = valid(&c);
    assert!(!c.yaml.contains("uid:") && !c.yaml.contains("resourceVersion"));
    assert_eq!(
        r.pools[0].metadata.namespace.as_deref(),
        Some("ferrolb-system")
    );
    assert_eq!(r.pools[0].spec.auto_assign, Some(false));
    assert_eq!(
        r.secrets[0].metadata.namespace.as_deref(),
        Some("ferrolb-system")
    );
    let a = r.services[0].metadata.annotations.as_ref().unwrap();
    assert_eq!(a["ferrolb.io/address-pool"], "prod");
    assert_eq!(a["ferrolb.io/allow-shared-ip"], "k");
    assert_eq!(a["other"], "keep");
    let out = Config::build(&r, None);
    assert_eq!(out.config.peers["tor"].password.as_deref(), Some("x"));
    assert_eq!(out.config.peers["tor"].vrf.as_deref(), Some("red"));
    let l = losses(&c);
    assert_eq!(l.len(), 1, "{l:#?}");
    assert!(
        l[0].starts_with("m.yaml:32: DaemonSet metallb-system/speaker:"),
        "{l:#?}"
    );
}

#[test]
fn legacy_example_config_with_the_oldest_spellings() {
    let (_, c) = fixture("legacy-example-config.yaml");
    assert_eq!(losses(&c), Vec::<String>::new());
    let r = valid(&c);
    assert_eq!(r.pools.len(), 1);
    assert_eq!(
        r.pools[0].spec.addresses,
        ["198.51.100.0/24", "192.168.0.0/16"]
    );
    assert_eq!(r.pools[0].spec.avoid_buggy_ips, Some(true));
    let ad = &r.bgp_advertisements[0];
    assert_eq!(ad.spec.ip_address_pools, ["my-ip-space"]);
    assert_eq!(ad.spec.local_pref, Some(100));
    // The alias is resolved to its value.
    assert_eq!(ad.spec.communities, ["64512:1", "65535:65281"]);
    let p = &r.bgp_peers[0].spec;
    assert_eq!(
        (p.my_asn, p.peer_asn, p.peer_address.as_deref()),
        (64512, Some(64512), Some("10.0.0.1"))
    );
    assert_eq!(p.hold_time.as_deref(), Some("120s"));
    assert!(r.l2_advertisements.is_empty());
}

#[test]
fn legacy_full_config_converts_every_section() {
    let (_, c) = fixture("legacy-full.yaml");
    assert_eq!(losses(&c), Vec::<String>::new());
    let r = valid(&c);
    let names: Vec<_> = r
        .pools
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["my-ip-space", "my-l2-space"]);
    assert_eq!(
        r.l2_advertisements[0].spec.ip_address_pools,
        ["my-l2-space"]
    );
    let ad = &r.bgp_advertisements[0].spec;
    assert_eq!(
        (ad.aggregation_length, ad.aggregation_length_v6),
        (Some(32), Some(64))
    );
    let p = &r.bgp_peers[0].spec;
    assert_eq!(p.password.as_deref(), Some("yourPassword"));
    assert_eq!(p.bfd_profile.as_deref(), Some("bfdprofile1"));
    assert_eq!(p.keepalive_time.as_deref(), Some("30s"));
    assert_eq!(p.router_id.as_deref(), Some("1.2.3.4"));
    let sel = &p.node_selectors[0];
    assert_eq!(
        sel.match_labels.as_ref().unwrap()["kubernetes.io/hostname"],
        "prod-01"
    );
    assert_eq!(sel.match_expressions.as_ref().unwrap()[0].operator, "In");
    assert_eq!(r.bfd_profiles[0].spec.detect_multiplier, Some(200));
    // `no-export` is an alias of a well-known name: no Community object needed.
    assert!(r.communities.is_empty());
}

#[test]
fn legacy_bfd_echo_mode_is_mapped() {
    let (_, c) = fixture("legacy-bfd-echo.yaml");
    assert!(losses(&c).is_empty(), "{:#?}", losses(&c));
    let r = valid(&c);
    assert_eq!(r.bfd_profiles.len(), 2);
    assert_eq!(r.bfd_profiles[0].spec.echo_mode, Some(false));
    assert_eq!(r.bfd_profiles[1].spec.echo_mode, Some(true));
    assert_eq!(r.bfd_profiles[1].spec.echo_interval, Some(80));
    // minimum-ttl is kept (it applies to multihop sessions).
    assert_eq!(r.bfd_profiles[0].spec.minimum_ttl, Some(254));
    assert_eq!(r.bfd_profiles[1].spec.minimum_ttl, Some(150));
}

#[test]
fn bfd_echo_mode_converts_without_loss() {
    let text = "\
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: echo, namespace: metallb-system}
spec: {echoMode: true, echoInterval: 100}
";
    let c = convert_metallb("echo.yaml", text);
    assert!(c.losses.is_empty(), "{:#?}", c.losses);
    let r = valid(&c);
    assert_eq!(r.bfd_profiles[0].spec.echo_mode, Some(true));
    assert_eq!(r.bfd_profiles[0].spec.echo_interval, Some(100));
}

#[test]
fn multihop_peer_with_bfd_and_minimum_ttl_converts_without_loss() {
    let text = "\
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: mh, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, minimumTtl: 253}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: rs, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64515, peerAddress: 203.0.113.1, ebgpMultiHop: true, bfdProfile: mh}
";
    let c = convert_metallb("mh.yaml", text);
    assert!(c.losses.is_empty(), "{:#?}", losses(&c));
    let r = valid(&c);
    assert_eq!(r.bfd_profiles[0].spec.minimum_ttl, Some(253));
    assert_eq!(r.bgp_peers[0].spec.ebgp_multi_hop, Some(true));
    assert_eq!(r.bgp_peers[0].spec.bfd_profile.as_deref(), Some("mh"));
}

#[test]
fn vrf_peer_keeps_its_vrf() {
    let (_, c) = fixture("bgppeer-with-vrf.yaml");
    assert!(losses(&c).is_empty(), "{:?}", losses(&c));
    let r = valid(&c);
    assert_eq!(r.bgp_peers[0].spec.vrf.as_deref(), Some("red"));
    let cfg = Config::build(&r, None).config;
    let peer = cfg.peers.values().next().expect("the peer is valid");
    assert_eq!(peer.vrf.as_deref(), Some("red"));
}

#[test]
fn unnumbered_peer_keeps_its_interface() {
    let (_, c) = fixture("bgppeer-unnumbered.yaml");
    assert!(losses(&c).is_empty(), "{:?}", losses(&c));
    let r = valid(&c);
    let p = &r.bgp_peers[0].spec;
    assert_eq!(
        (p.interface.as_deref(), p.peer_address.as_deref()),
        (Some("eth1"), None)
    );
    let cfg = Config::build(&r, None).config;
    let peer = cfg.peers.values().next().expect("the peer is valid");
    assert_eq!(peer.interface.as_deref(), Some("eth1"));
}

#[test]
fn v1beta1_address_pools_are_converted_with_their_protocol() {
    let (_, c) = fixture("v1beta1-addresspool.yaml");
    assert_eq!(losses(&c), Vec::<String>::new());
    let r = valid(&c);
    assert_eq!(r.pools.len(), 2);
    assert_eq!(r.l2_advertisements[0].spec.ip_address_pools, ["l2-pool"]);
    assert_eq!(r.bgp_advertisements[0].spec.ip_address_pools, ["bgp-pool"]);
    assert_eq!(r.bgp_advertisements[0].spec.communities, ["no-export"]);
    assert_eq!(r.pools[1].spec.avoid_buggy_ips, Some(true));
}

#[test]
fn documented_crd_samples_convert_without_loss() {
    let (_, c) = fixture("crd-samples.yaml");
    assert_eq!(losses(&c), Vec::<String>::new());
    let r = valid(&c);
    // NO_ADVERTISE is the user's alias there: kept as an alias, not respelled.
    assert_eq!(r.bgp_advertisements[0].spec.communities, ["NO_ADVERTISE"]);
    assert_eq!(r.bgp_peers.len(), 2);
    assert_eq!(r.bfd_profiles[0].spec.receive_interval, Some(380));
}

#[test]
fn well_known_community_spellings() {
    for s in [
        "NO_EXPORT",
        "no_export",
        "no-export",
        "No-Export",
        "noExport",
    ] {
        assert_eq!(well_known_name(s), Some("no-export"), "{s}");
    }
    assert_eq!(well_known_name("NO_ADVERTISE"), Some("no-advertise"));
    assert_eq!(
        well_known_name("NO_EXPORT_SUBCONFED"),
        Some("no-export-subconfed")
    );
    assert_eq!(well_known_name("NO_PEER"), Some("no-peer"));
    assert_eq!(well_known_name("64512:1"), None);
    assert_eq!(well_known_name("my-community"), None);
}

#[test]
fn unknown_kinds_and_fields_are_losses() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: bgpextras, namespace: metallb-system}
data: {extras: 'router bgp 64512'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: metallb-system}
data:
  config: |
    address-pools:
    - name: p
      protocol: layer2
      addresses: [192.0.2.0/28]
      arp-network: 192.0.2.0/24
    unknown-section: {a: 1}
---
apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: s, namespace: metallb-system}
---
just a string
";
    let c = convert_metallb("x.yaml", text);
    let l = losses(&c);
    assert_eq!(l.len(), 4, "{l:#?}");
    assert!(
        l[0].starts_with("x.yaml:1: ConfigMap metallb-system/bgpextras:"),
        "{l:#?}"
    );
    assert!(
        l[1].contains("data.config.address-pools[0].arp-network"),
        "{l:#?}"
    );
    assert!(l[2].contains("data.config.unknown-section"), "{l:#?}");
    assert!(l[3].starts_with("x.yaml:22: document:"), "{l:#?}");
    assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    valid(&c);
}

#[test]
fn a_list_from_kubectl_get_is_unpacked() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: a, namespace: metallb-system, uid: x}
  spec: {addresses: [192.0.2.0/28]}
";
    let c = convert_metallb("list.yaml", text);
    assert_eq!(losses(&c), Vec::<String>::new());
    assert_eq!(valid(&c).pools.len(), 1);
}

fn convert_bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_metallb-convert"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_binary_has_help_and_fails_on_loss_unless_allowed() {
    let help = convert_bin(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--allow-lossy") && text.contains("ConfigMap"),
        "{text}"
    );

    let (lossy, _) = fixture("bgppeer-disable-mp.yaml");
    let out = convert_bin(&[&lossy]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BGPPeer metallb-system/peer: spec.disableMP"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: BGPPeer"));

    let out = convert_bin(&["--allow-lossy", &lossy]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.disableMP"));

    let (full, _) = fixture("legacy-full.yaml");
    let out = convert_bin(&[&full]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(convert_bin(&["/nonexistent.yaml"]).status.code(), Some(2));
}
