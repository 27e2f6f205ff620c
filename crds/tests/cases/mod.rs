//! One table of single-object cases, valid and invalid, shared by the config tests
//! (`crds/tests/config_cases.rs`: `Config::build`) and the real-API-server tests
//! (`tests/tests/kube_manifests.rs`: schema + CEL), so the two validations cannot drift
//! apart. Cross-object checks (overlaps, references) are not here: CEL cannot see them.

/// One object: `kind` with `spec` (YAML lines indented by two spaces).
pub struct Case {
    pub kind: &'static str,
    pub spec: &'static str,
    /// `None`: valid. `Some((field, message))`: invalid; `Config::build` reports exactly one
    /// error at `field` whose message contains `message`, and the API server's error names
    /// `field`.
    pub invalid: Option<(&'static str, &'static str)>,
}

const fn ok(kind: &'static str, spec: &'static str) -> Case {
    Case {
        kind,
        spec,
        invalid: None,
    }
}

const fn bad(
    kind: &'static str,
    spec: &'static str,
    field: &'static str,
    msg: &'static str,
) -> Case {
    Case {
        kind,
        spec,
        invalid: Some((field, msg)),
    }
}

const PEER: &str = "BGPPeer";
const POOL: &str = "IPAddressPool";
const ADV: &str = "BGPAdvertisement";
const COMM: &str = "Community";
const BFD: &str = "BFDProfile";

pub const CASES: &[Case] = &[
    // BGPPeer timers.
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 90s\n  keepaliveTime: 30s\n  connectTime: 10s\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: \"0\"\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 65535s\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 1m30s\n  keepaliveTime: 10s\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 2s\n",
        "spec.holdTime",
        "0 or at least 3s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 3.5s\n",
        "spec.holdTime",
        "whole seconds",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 100000s\n",
        "spec.holdTime",
        "at most 65535s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: \"90\"\n",
        "spec.holdTime",
        "not a duration",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 9s\n  keepaliveTime: 9s\n",
        "spec.keepaliveTime",
        "less than holdTime",
    ),
    // keepaliveTime: HoldTime::keepalive / for_keepalive and their CEL rule.
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 3s\n  keepaliveTime: 1s\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: \"0\"\n  keepaliveTime: 0s\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  keepaliveTime: 20s\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  keepaliveTime: 21845s\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 3s\n  keepaliveTime: 500ms\n",
        "spec.keepaliveTime",
        "whole seconds, at least 1s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 9s\n  keepaliveTime: 1500ms\n",
        "spec.keepaliveTime",
        "whole seconds, at least 1s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 90s\n  keepaliveTime: 0s\n",
        "spec.keepaliveTime",
        "at least 1s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 0s\n  keepaliveTime: 10s\n",
        "spec.keepaliveTime",
        "0 when holdTime is 0",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  keepaliveTime: 21846s\n",
        "spec.keepaliveTime",
        "at most 21845s",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  keepaliveTime: 1500ms\n",
        "spec.keepaliveTime",
        "whole seconds",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  connectTime: 1500ms\n",
        "spec.connectTime",
        "whole seconds between 1s and 65535s",
    ),
    // BGPPeer addresses and ASNs.
    ok(
        PEER,
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 2001:db8::1\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  routerID: 192.0.2.200\n  sourceAddress: 192.0.2.2\n  ebgpMultiHop: true\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.300\n",
        "spec.peerAddress",
        "not an IP address",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  routerID: 2001:db8::1\n",
        "spec.routerID",
        "IPv4",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  dynamicASN: external\n  peerAddress: 192.0.2.1\n",
        "spec.dynamicASN",
        "mutually exclusive",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerAddress: 192.0.2.1\n",
        "spec.peerASN",
        "one of peerASN and dynamicASN is required",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  password: x\n  passwordSecret: {name: s}\n",
        "spec.passwordSecret",
        "mutually exclusive",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
        "spec.ebgpMultiHop",
        "only to eBGP",
    ),
    // Unnumbered peering: exactly one of peerAddress and interface; one hop; the source is
    // the interface's link-local address (issue #17).
    ok(
        PEER,
        "  myASN: 64512\n  dynamicASN: external\n  interface: eth0\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: enp1s0f0.100\n  ebgpMultiHop: false\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n",
        "spec.peerAddress",
        "exactly one of peerAddress and interface",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  interface: eth0\n",
        "spec.peerAddress",
        "exactly one of peerAddress and interface",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  ebgpMultiHop: true\n",
        "spec.ebgpMultiHop",
        "one hop away",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  sourceAddress: 192.0.2.2\n",
        "spec.sourceAddress",
        "link-local",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth/0\n",
        "spec.interface",
        "must not contain '/' or whitespace",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: \"eth 0\"\n",
        "spec.interface",
        "must not contain '/' or whitespace",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: interface0123456\n",
        "spec.interface",
        "1 to 15",
    ),
    // VRF peering: the session runs in a Linux VRF; not with interface or BFD (issue #17).
    ok(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: red\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  vrf: red\n",
        "spec.vrf",
        "vrf cannot be set with interface",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: red\n  bfdProfile: fast\n",
        "spec.bfdProfile",
        "not supported with vrf",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: \"r d\"\n",
        "spec.vrf",
        "must not contain '/' or whitespace",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: vrf0123456789012\n",
        "spec.vrf",
        "1 to 15",
    ),
    // ebgpMultiHop is for eBGP only: iBGP is dynamicASN internal or a peerASN equal to the AS
    // we present (localASN, else myASN) (issue #17).
    bad(
        PEER,
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
        "spec.ebgpMultiHop",
        "only to eBGP",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  dynamicASN: external\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: false\n",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  localASN: 64513\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
        "spec.ebgpMultiHop",
        "only to eBGP",
    ),
    ok(
        PEER,
        "  myASN: 64512\n  localASN: 64514\n  peerASN: 64512\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
    ),
    bad(
        PEER,
        "  myASN: 0\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n",
        "spec.myASN",
        "between 1 and 4294967295",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  peerASN: 0\n  peerAddress: 192.0.2.1\n",
        "spec.peerASN",
        "between 1 and 4294967295",
    ),
    bad(
        PEER,
        "  myASN: 64512\n  localASN: 0\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n",
        "spec.localASN",
        "between 1 and 4294967295",
    ),
    ok(
        PEER,
        "  myASN: 4294967295\n  localASN: 1\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n",
    ),
    // IPAddressPool addresses.
    ok(
        POOL,
        "  addresses: [192.0.2.0/28, \"198.51.100.1 - 198.51.100.9\", \"2001:db8::/120\"]\n",
    ),
    ok(
        POOL,
        "  addresses: [\"2001:db8::9-2001:db8::1:0\", \"203.0.113.9-203.0.113.10\"]\n",
    ),
    ok(POOL, "  addresses: [\"192.0.2.7-192.0.2.7\"]\n"),
    bad(
        POOL,
        "  addresses: [192.0.2.0/28, \"192.0.2.5-192.0.2.1\"]\n",
        "spec.addresses[1]",
        "range start after end",
    ),
    bad(
        POOL,
        "  addresses: [\"192.0.2.10-192.0.2.9\"]\n",
        "spec.addresses[0]",
        "range start after end",
    ),
    bad(
        POOL,
        "  addresses: [\"2001:db8::1:0-2001:db8::ffff\"]\n",
        "spec.addresses[0]",
        "range start after end",
    ),
    bad(
        POOL,
        "  addresses: [\"192.0.2.1-2001:db8::1\"]\n",
        "spec.addresses[0]",
        "range mixes families",
    ),
    bad(
        POOL,
        "  addresses: [192.0.2.0/33]\n",
        "spec.addresses[0]",
        "too long",
    ),
    bad(
        POOL,
        "  addresses: [192.0.2.0/28, not-an-ip]\n",
        "spec.addresses[1]",
        "not an IP address",
    ),
    bad(
        POOL,
        "  addresses: [192.0.2.7]\n",
        "spec.addresses[0]",
        "192.0.2.7/32",
    ),
    bad(
        POOL,
        "  addresses: []\n",
        "spec.addresses",
        "at least one address",
    ),
    // Communities, in Community aliases and in BGPAdvertisements.
    ok(
        COMM,
        "  communities:\n  - {name: gold, value: \"65535:65535\"}\n  - {name: big, value: \"large:4294967295:1:1\"}\n",
    ),
    bad(
        COMM,
        "  communities:\n  - {name: gold, value: \"65536:99999\"}\n",
        "spec.communities[0].value",
        "16-bit",
    ),
    bad(
        COMM,
        "  communities:\n  - {name: big, value: \"large:9999999999:1:1\"}\n",
        "spec.communities[0].value",
        "32-bit",
    ),
    ok(
        ADV,
        "  communities: [\"65000:100\", \"large:1:2:3\", no-export]\n",
    ),
    bad(
        ADV,
        "  communities: [\"65000:100\", \"65536:99999\"]\n",
        "spec.communities[1]",
        "16-bit",
    ),
    bad(
        ADV,
        "  communities: [\"large:9999999999:1:1\"]\n",
        "spec.communities[0]",
        "32-bit",
    ),
    bad(
        ADV,
        "  communities: [\"70000:1\"]\n",
        "spec.communities[0]",
        "16-bit",
    ),
    bad(
        ADV,
        "  aggregationLengthV6: 129\n",
        "spec.aggregationLengthV6",
        "between 1 and 128",
    ),
    bad(
        ADV,
        "  serviceSelectors: [{matchLabels: {app: web}}]\n  aggregationLength: 24\n",
        "spec.serviceSelectors",
        "aggregation length",
    ),
    // BFDProfile authentication: the key ID is checked before the Secret is read.
    bad(
        BFD,
        "  authentication: {type: KeyedSHA1, keyID: 256, passwordSecret: {name: bfd-key}}\n",
        "spec.authentication.keyID",
        "between 0 and 255",
    ),
];

/// The case as a YAML document named `name` in `namespace`.
pub fn document(case: &Case, name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: {}\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{}",
        case.kind, case.spec
    )
}
