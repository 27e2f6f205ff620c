//! `BFDProfile`: BFD session settings referenced by `BGPPeer.spec.bfdProfile`.

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bgp_peer::SecretReference;

/// BFD (RFC 5880) settings for BGP sessions that name this profile.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    status = "BFDProfileStatus",
    shortname = "lbbfd",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Passive","type":"boolean","jsonPath":".spec.passiveMode"}"#,
    printcolumn = r#"{"name":"Transmit Interval","type":"integer","jsonPath":".spec.transmitInterval"}"#,
    printcolumn = r#"{"name":"Receive Interval","type":"integer","jsonPath":".spec.receiveInterval"}"#,
    printcolumn = r#"{"name":"Multiplier","type":"integer","jsonPath":".spec.detectMultiplier"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Minimum interval we can receive control packets at, in ms (10..60000, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Minimum interval we send control packets at, in ms (10..60000, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Missed packets before the session is declared down (2..255, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Echo interval in ms (10..60000, default 50): with `echoMode`, the Required Min Echo RX
    /// Interval we advertise (how often the peer may send us echoes) and the fastest we send
    /// our own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Echo function (RFC 5880 §6.4), default false. IPv4 single-hop peers only (a BGPPeer
    /// with `ebgpMultiHop` or an IPv6 address refuses such a profile). The node must forward
    /// IPv4 (`net.ipv4.conf.<if>.forwarding = 1`) to loop the peer's echoes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer to start the session. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Minimum TTL of received packets for multihop sessions (BGPPeers with `ebgpMultiHop`;
    /// RFC 5883), 1..254, default 254: one router between the peers, 253 for two. Ignored for
    /// single-hop sessions, which always require 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
    /// Authenticate every Control packet (RFC 5880 §6.7.4, Keyed SHA1 or Meticulous Keyed
    /// SHA1); unset: no authentication. A ferrolb field (MetalLB's BFDProfile has none); the
    /// router must use the same type, key ID and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<BFDAuthentication>,
}

/// BFD authentication settings of a `BFDProfile`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BFDAuthentication {
    /// `MeticulousKeyedSHA1` (the sequence number grows on every packet: replays are
    /// refused) or `KeyedSHA1`.
    #[serde(rename = "type")]
    pub type_: BFDAuthenticationType,
    /// Auth Key ID sent and required in every packet, 0..255 (BIRD: the password's `id`).
    #[serde(rename = "keyID")]
    #[schemars(range(min = 0, max = 255))]
    pub key_id: u32,
    /// Secret of type `kubernetes.io/basic-auth` whose `password` key holds the key, 1 to 20
    /// bytes (the SHA1 key field is 20 bytes; a longer key is refused, not cut).
    pub password_secret: SecretReference,
}

/// BFD authentication types (RFC 5880 §4.4).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BFDAuthenticationType {
    /// Meticulous Keyed SHA1 (Auth Type 5).
    #[default]
    #[serde(rename = "MeticulousKeyedSHA1")]
    MeticulousKeyedSha1,
    /// Keyed SHA1 (Auth Type 4).
    #[serde(rename = "KeyedSHA1")]
    KeyedSha1,
}

/// Empty for now.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct BFDProfileStatus {}
