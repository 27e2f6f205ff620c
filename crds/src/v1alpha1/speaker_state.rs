//! `SpeakerState`: what one node's speaker announces, written by that speaker.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One per node (object name = node name, in the install namespace), written by the speaker on
/// that node. `kubectl get speakerstates` answers "which node announces what":
///
/// ```text
/// NAME     PEERS UP   PEERS   BGP PREFIXES   L2 ADDRESSES               LAST UPDATE
/// node-a   2          2       14             192.0.2.10,2001:db8::a     5s
/// ```
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1alpha1",
    kind = "SpeakerState",
    plural = "speakerstates",
    namespaced,
    status = "SpeakerStateStatus",
    shortname = "speaker",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    printcolumn = r#"{"name":"Peers Up","type":"integer","jsonPath":".status.peersEstablished"}"#,
    printcolumn = r#"{"name":"Peers","type":"integer","jsonPath":".status.peersConfigured"}"#,
    printcolumn = r#"{"name":"BGP Prefixes","type":"integer","jsonPath":".status.announcedPrefixes"}"#,
    printcolumn = r#"{"name":"L2 Addresses","type":"string","jsonPath":".status.l2Summary"}"#,
    printcolumn = r#"{"name":"Last Update","type":"date","jsonPath":".status.lastUpdate"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStateSpec {
    /// The node this speaker runs on (equal to the object name).
    #[serde(default)]
    pub node_name: String,
}

/// What the speaker on a node is doing right now.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStateStatus {
    /// One entry per configured BGP peer of this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bgp_peers: Vec<BGPPeerSessionStatus>,
    /// Number of `bgpPeers` in state `Established`.
    #[serde(default)]
    pub peers_established: u32,
    /// Number of `bgpPeers`.
    #[serde(default)]
    pub peers_configured: u32,
    /// Distinct prefixes this node announces over BGP (to any peer).
    #[serde(default)]
    pub announced_prefixes: u32,
    /// Addresses this node owns on L2 (answers ARP/NDP for).
    #[serde(default, rename = "l2Addresses", skip_serializing_if = "Vec::is_empty")]
    pub l2_addresses: Vec<L2AddressStatus>,
    /// `l2Addresses` IPs joined by commas, for the printer column.
    #[serde(default, rename = "l2Summary")]
    pub l2_summary: String,
    /// Driver calls that failed and are being retried (with backoff, until they succeed or a
    /// newer decision replaces them): what, on which interface or peer, and the last error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub driver_errors: Vec<DriverErrorStatus>,
    /// When the speaker last wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<Time>,
}

impl SpeakerStateStatus {
    /// Recomputes the summary fields (`peersEstablished`, `peersConfigured`, `l2Summary`) from
    /// the lists; call before writing.
    pub fn refresh_summary(&mut self) {
        self.peers_configured = u32::try_from(self.bgp_peers.len()).unwrap_or(u32::MAX);
        self.peers_established = u32::try_from(
            self.bgp_peers
                .iter()
                .filter(|p| p.state == BGPSessionState::Established)
                .count(),
        )
        .unwrap_or(u32::MAX);
        let ips: Vec<&str> = self.l2_addresses.iter().map(|a| a.ip.as_str()).collect();
        self.l2_summary = ips.join(",");
    }
}

/// A driver call that failed and is being retried.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverErrorStatus {
    /// `l2`, `bgp` or `bfd`.
    pub driver: String,
    /// What the call acts on, e.g. `interface eth0` or `BGP peer 192.0.2.1`.
    pub target: String,
    /// The call's last error.
    pub error: String,
}

/// One BGP session of a node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSessionStatus {
    /// `BGPPeer` name.
    pub name: String,
    /// Peer address.
    pub address: String,
    /// The VRF the session runs in (`BGPPeer` `vrf`); unset: the default VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// RFC 4271 session state.
    pub state: BGPSessionState,
    /// When the session last reached `Established` (uptime = now - this); unset when down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_since: Option<Time>,
    /// Prefixes currently announced to this peer.
    #[serde(default)]
    pub prefixes_sent: u32,
    /// The peer's AS as its OPEN gave it (learned for `dynamicASN` peers), while the
    /// session is up.
    #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u32>,
    /// Last error (NOTIFICATION sent or received, connect failure), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// State of the BFD session protecting this peer (RFC 5880); unset when the peer has no
    /// `bfdProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BFDSessionState>,
    /// The BFD Echo function of that session; unset unless the `bfdProfile` has `echoMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_echo: Option<BFDEchoStatus>,
}

/// The BFD Echo function (RFC 5880 §6.4) of one session, both directions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BFDEchoStatus {
    /// Our echo packets are being sent and must come back: the session is Up and the peer
    /// advertises a non-zero Required Min Echo RX Interval.
    pub active: bool,
    /// Interval of our echo packets while active, ms (the larger of `echoInterval` and the
    /// peer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u32>,
    /// This node loops the peer's echo packets back (IPv4 forwarding on the peer's
    /// interface). When false we advertise no echo receive interval, so the peer sends none.
    pub loops_peer_echoes: bool,
    /// The peer loops our echo packets: true once one came back (our echo then detects path
    /// failures), false after a probe got nothing back — the session stays Up, detection runs
    /// at the control packets' rate, and the speaker probes again (1 s doubling to 60 s).
    /// Unset while not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_loops_our_echoes: Option<bool>,
}

/// RFC 5880 §4.1 BFD session states.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BFDSessionState {
    /// Shut down on purpose by one side (not a path failure).
    AdminDown,
    /// Not up: never was, or the path failed.
    #[default]
    Down,
    /// The peer's packets are seen; coming up.
    Init,
    /// Both sides see each other: the forwarding path works.
    Up,
}

/// RFC 4271 §8 session states.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BGPSessionState {
    /// Not trying.
    #[default]
    Idle,
    /// Waiting for TCP to connect.
    Connect,
    /// TCP failed, retrying.
    Active,
    /// OPEN sent.
    OpenSent,
    /// OPEN received, waiting for KEEPALIVE.
    OpenConfirm,
    /// Up; routes are exchanged.
    Established,
}

/// One address owned on L2 by this node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L2AddressStatus {
    /// The Service IP.
    pub ip: String,
    /// Interfaces it is answered on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Services using it, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}
