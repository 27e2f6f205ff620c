//! `BGPPeer`: a BGP session from the speakers to a router.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::value::{Asn, ConnectTime, DURATION_PATTERN, HoldTime, ebgp_multihop_cel_validation};

/// Neither or both of `peerAddress` and `interface` (CEL and `Config::build` say the same).
pub const PEER_ADDRESS_OR_INTERFACE: &str = "exactly one of peerAddress and interface is required";
/// `ebgpMultiHop` on an unnumbered peer.
pub const INTERFACE_MULTIHOP: &str =
    "an interface (unnumbered) peer is one hop away: ebgpMultiHop is not allowed";
/// `sourceAddress` on an unnumbered peer.
pub const INTERFACE_SOURCE: &str = "sourceAddress cannot be set with interface: the session uses the interface's link-local address";
/// An `interface` that Linux would not accept as a name.
pub const INTERFACE_NAME: &str = "interface name must not contain '/' or whitespace";
/// `vrf` on an unnumbered peer.
pub const VRF_INTERFACE: &str = "vrf cannot be set with interface: an unnumbered session runs on its interface, in the VRF that interface belongs to";
/// `bfdProfile` on a VRF peer.
pub const VRF_BFD: &str =
    "bfdProfile is not supported with vrf yet (BFD sessions run in the default VRF)";
/// A `vrf` that Linux would not accept as a device name.
pub const VRF_NAME: &str = "vrf name must not contain '/' or whitespace";

/// A BGP neighbour. Every speaker on a node selected by `nodeSelectors` opens a session to it.
///
/// ```yaml
/// apiVersion: ferrolb.io/v1alpha1
/// kind: BGPPeer
/// metadata: { name: tor1, namespace: ferrolb-system }
/// spec: { myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: 90s }
/// ```
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    status = "BGPPeerStatus",
    shortname = "lbpeer",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.peerAddress"}"#,
    printcolumn = r#"{"name":"Interface","type":"string","jsonPath":".spec.interface"}"#,
    printcolumn = r#"{"name":"VRF","type":"string","jsonPath":".spec.vrf","priority":1}"#,
    printcolumn = r#"{"name":"My ASN","type":"integer","jsonPath":".spec.myASN"}"#,
    printcolumn = r#"{"name":"Peer ASN","type":"integer","jsonPath":".spec.peerASN"}"#,
    printcolumn = r#"{"name":"Dynamic ASN","type":"string","jsonPath":".spec.dynamicASN","priority":1}"#,
    printcolumn = r#"{"name":"BFD Profile","type":"string","jsonPath":".spec.bfdProfile","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.peerASN) && has(self.dynamicASN))",
        "message": "peerASN and dynamicASN are mutually exclusive",
        "fieldPath": ".dynamicASN"
    },
    {
        "rule": "has(self.peerASN) || has(self.dynamicASN)",
        "message": "one of peerASN and dynamicASN is required",
        "fieldPath": ".peerASN"
    },
    HoldTime::cel_keepalive_validation(),
    {
        "rule": "!(has(self.password) && has(self.passwordSecret))",
        "message": "password and passwordSecret are mutually exclusive",
        "fieldPath": ".passwordSecret"
    },
    ebgp_multihop_cel_validation(),
    {
        "rule": "has(self.peerAddress) != has(self.interface)",
        "message": PEER_ADDRESS_OR_INTERFACE,
        "fieldPath": ".peerAddress"
    },
    {
        "rule": "!has(self.interface) || !has(self.ebgpMultiHop) || !self.ebgpMultiHop",
        "message": INTERFACE_MULTIHOP,
        "fieldPath": ".ebgpMultiHop"
    },
    {
        "rule": "!has(self.interface) || !has(self.sourceAddress)",
        "message": INTERFACE_SOURCE,
        "fieldPath": ".sourceAddress"
    },
    {
        "rule": "!has(self.vrf) || !has(self.interface)",
        "message": VRF_INTERFACE,
        "fieldPath": ".vrf"
    },
    {
        "rule": "!has(self.vrf) || !has(self.bfdProfile)",
        "message": VRF_BFD,
        "fieldPath": ".bfdProfile"
    }
]))]
pub struct BGPPeerSpec {
    /// Our AS number, 1..4294967295.
    #[serde(rename = "myASN")]
    #[schemars(range(min = Asn::MIN, max = Asn::MAX))]
    pub my_asn: u32,
    /// The peer's AS number. Exactly one of `peerASN` and `dynamicASN`.
    #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = Asn::MIN, max = Asn::MAX))]
    pub peer_asn: Option<u32>,
    /// Accept whatever AS the peer announces, as long as it is internal (= myASN) or external.
    #[serde(
        default,
        rename = "dynamicASN",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicASNMode>,
    /// AS number to present to this peer instead of `myASN` (`local-as`).
    #[serde(default, rename = "localASN", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = Asn::MIN, max = Asn::MAX))]
    pub local_asn: Option<u32>,
    /// The peer's IPv4 or IPv6 address. Exactly one of `peerAddress` and `interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isIP(self)", "message": "peerAddress must be an IP address"}]))]
    pub peer_address: Option<String>,
    /// Unnumbered peering: the node's interface (Linux name) towards the peer. The peer is
    /// found by its IPv6 link-local address on that link, the session runs over link-local
    /// IPv6, and IPv4 routes take an IPv6 next hop (RFC 8950). Exactly one of `peerAddress`
    /// and `interface`; one hop only (no `ebgpMultiHop`), no `sourceAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "!self.contains('/') && !self.matches('[[:space:]]') && self != '.' && self != '..'", "message": INTERFACE_NAME}]))]
    pub interface: Option<String>,
    /// Linux VRF (the name of its master device) the session runs in: its socket is bound
    /// to that device, so the source address and the route to the peer come from the VRF's
    /// table. The device may appear later: until then the session retries and reports
    /// the missing VRF. Not with `interface` or `bfdProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "!self.contains('/') && !self.matches('[[:space:]]') && self != '.' && self != '..'", "message": VRF_NAME}]))]
    pub vrf: Option<String>,
    /// TCP port of the peer, default 179.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub peer_port: Option<u16>,
    /// Local address to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isIP(self)", "message": "sourceAddress must be an IP address"}]))]
    pub source_address: Option<String>,
    /// BGP identifier to use instead of the node's first IPv4 address (an IPv4 address).
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "isIP(self) && ip(self).family() == 4", "message": "routerID must be an IPv4 address"}]))]
    pub router_id: Option<String>,
    /// Hold time proposed in OPEN (default `90s`); 0, or whole seconds from 3s to 65535s.
    /// Enforced on receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = DURATION_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = HoldTime::cel_validations()))]
    pub hold_time: Option<String>,
    /// Keepalive interval (default holdTime/3, at least 1s); whole seconds, less than
    /// holdTime, 0 when holdTime is 0. Set alone, holdTime is 3 times it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = DURATION_PATTERN))]
    pub keepalive_time: Option<String>,
    /// Time between connection attempts (ConnectRetry timer), whole seconds 1s..65535s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = DURATION_PATTERN))]
    #[schemars(extend("x-kubernetes-validations" = ConnectTime::cel_validations()))]
    pub connect_time: Option<String>,
    /// Allow the peer to be more than one hop away (eBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multi_hop: Option<bool>,
    /// TCP MD5 password, in clear. Prefer `passwordSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Secret of type `kubernetes.io/basic-auth` whose `password` key holds the TCP MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretReference>,
    /// Nodes that peer with this router; empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Name of a `BFDProfile`: run BFD on this session with those settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Advertise graceful restart (RFC 4724) so that routes survive a speaker restart.
    /// Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "enableGracefulRestart cannot be changed"}]))]
    pub enable_graceful_restart: Option<bool>,
    /// Negotiate both IPv4 and IPv6 unicast on this session regardless of its transport family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_stack_address_family: Option<bool>,
}

/// `dynamicASN` modes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DynamicASNMode {
    /// The peer's ASN must equal ours (iBGP).
    Internal,
    /// The peer's ASN must differ from ours (eBGP).
    External,
}

/// A reference to a Secret (`namespace` defaults to the peer's namespace).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Secret name.
    pub name: String,
    /// Secret namespace; default: the namespace of the referring object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Empty; per-node session state is in `SpeakerState`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct BGPPeerStatus {}
