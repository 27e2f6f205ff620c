//! What this node tells: its `SpeakerState` (peers and session states, owned L2 IPs,
//! announced prefix count, links digest) and the Service events of L2 ownership changes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ferrolb_bgp::{PeerKey, PeerStatus, State};
use ferrolb_crds::v1alpha1::{
    BFDEchoStatus, BFDSessionState, BGPPeerSessionStatus, BGPSessionState, DriverErrorStatus,
    L2AddressStatus, SpeakerState, SpeakerStateSpec, SpeakerStateStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::decide::{Announcements, L2Owner};
use crate::links::LINKS_ANNOTATION;

/// An event on a Service, emitted only by the node it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `namespace/name`.
    pub service: String,
    /// PascalCase, e.g. `L2Announced`.
    pub reason: String,
    pub message: String,
}

/// Maps the BGP crate's FSM state to the API's.
pub fn session_state(s: State) -> BGPSessionState {
    match s {
        State::Idle => BGPSessionState::Idle,
        State::Connect => BGPSessionState::Connect,
        State::Active => BGPSessionState::Active,
        State::OpenSent => BGPSessionState::OpenSent,
        State::OpenConfirm => BGPSessionState::OpenConfirm,
        State::Established => BGPSessionState::Established,
    }
}

/// Maps the BFD crate's session state to the API's.
pub fn bfd_state(s: ferrolb_bfd::State) -> BFDSessionState {
    match s {
        ferrolb_bfd::State::AdminDown => BFDSessionState::AdminDown,
        ferrolb_bfd::State::Down => BFDSessionState::Down,
        ferrolb_bfd::State::Init => BFDSessionState::Init,
        ferrolb_bfd::State::Up => BFDSessionState::Up,
    }
}

/// What the SpeakerState shows of a session's echo function.
pub fn bfd_echo(e: &ferrolb_bfd::EchoInfo) -> BFDEchoStatus {
    BFDEchoStatus {
        active: e.tx_interval.is_some(),
        interval_ms: e
            .tx_interval
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
        loops_peer_echoes: e.loop_ok,
        peer_loops_our_echoes: e.peer_loops,
    }
}

/// Sets each peer's `bfd` from the BFD sessions by peer address: a peer with a `bfdProfile`
/// and no session (yet) is `Down`; a peer without one has no `bfd`. A peer whose profile has
/// `echoMode` gets `bfdEcho` (inactive, not looping, until its session says otherwise).
pub fn set_bfd(
    state: &mut SpeakerState,
    ann: &Announcements,
    bfd: &BTreeMap<IpAddr, ferrolb_bfd::State>,
    echo: &BTreeMap<IpAddr, BFDEchoStatus>,
) {
    let Some(st) = state.status.as_mut() else {
        return;
    };
    for p in &mut st.bgp_peers {
        let Some(peer) = ann.peers.get(&p.name) else {
            continue;
        };
        p.bfd = peer.bfd.as_ref().map(|_| {
            bfd.get(&peer.address)
                .map_or(BFDSessionState::Down, |s| bfd_state(*s))
        });
        p.bfd_echo = peer
            .bfd
            .as_ref()
            .filter(|b| b.echo_mode)
            .map(|_| echo.get(&peer.address).cloned().unwrap_or_default());
    }
}

/// Puts each peer's BFD authentication failure (`auth`: the message by peer address) in its
/// `lastError`, ahead of a BGP error: a BFD session that cannot authenticate is why the
/// peer is down or about to be.
pub fn set_bfd_auth_errors(
    state: &mut SpeakerState,
    ann: &Announcements,
    auth: &BTreeMap<IpAddr, String>,
) {
    let Some(st) = state.status.as_mut() else {
        return;
    };
    for p in &mut st.bgp_peers {
        let Some(msg) = ann
            .peers
            .get(&p.name)
            .filter(|peer| peer.bfd.is_some())
            .and_then(|peer| auth.get(&peer.address))
        else {
            continue;
        };
        p.last_error = Some(match p.last_error.take() {
            Some(bgp) => format!("{msg}; {bgp}"),
            None => msg.clone(),
        });
    }
}

/// Lists the driver calls still failing (being retried) in `state`.
pub fn set_driver_errors(state: &mut SpeakerState, pending: &[crate::retry::Failed]) {
    let Some(st) = state.status.as_mut() else {
        return;
    };
    st.driver_errors = pending
        .iter()
        .map(|f| DriverErrorStatus {
            driver: f.driver.to_string(),
            target: crate::retry::target(&f.action),
            error: f.error.clone(),
        })
        .collect();
}

fn time(t: SystemTime) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::try_from(t).ok().map(Time)
}

/// Routes the session refuses to send for want of RFC 8950 (IPv4 with an IPv6 next hop).
fn next_hop_error(s: &PeerStatus) -> Option<String> {
    (s.needs_extended_next_hop > 0).then(|| {
        format!(
            "{} IPv4 routes not sent: their next hop is IPv6 and the peer did not negotiate \
             the extended next hop capability (RFC 8950)",
            s.needs_extended_next_hop
        )
    })
}

/// The `SpeakerState` of `node`, without `lastUpdate` (so that two states compare equal when
/// nothing changed; [`stamp`] sets it before writing).
pub fn speaker_state(
    node: &str,
    namespace: &str,
    links_digest: &str,
    ann: &Announcements,
    sessions: &BTreeMap<PeerKey, PeerStatus>,
) -> SpeakerState {
    let mut status = SpeakerStateStatus::default();
    for (name, peer) in &ann.peers {
        let s = sessions.get(&crate::plan::peer_key(peer));
        status.bgp_peers.push(BGPPeerSessionStatus {
            name: name.clone(),
            // Unnumbered: the neighbour's link-local address with its interface.
            address: match &peer.interface {
                Some(iface) => format!("{}%{iface}", peer.address),
                None => peer.address.to_string(),
            },
            vrf: peer.vrf.clone(),
            state: s.map(|s| session_state(s.state)).unwrap_or_default(),
            established_since: None,
            prefixes_sent: s
                .map(|s| u32::try_from(s.prefixes_sent).unwrap_or(u32::MAX))
                .unwrap_or(0),
            peer_asn: s.and_then(|s| s.negotiated.as_ref()).map(|n| n.peer_asn),
            last_error: s.and_then(|s| next_hop_error(s).or_else(|| s.last_error.clone())),
            bfd: None,
            bfd_echo: None,
        });
    }
    status.announced_prefixes = u32::try_from(ann.prefix_count()).unwrap_or(u32::MAX);
    for (ip, claim) in &ann.l2 {
        status.l2_addresses.push(L2AddressStatus {
            ip: ip.to_string(),
            interfaces: claim.interfaces.iter().cloned().collect(),
            services: claim.services.iter().cloned().collect(),
        });
    }
    status.refresh_summary();
    SpeakerState {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some([(LINKS_ANNOTATION.to_string(), links_digest.to_string())].into()),
            ..Default::default()
        },
        spec: SpeakerStateSpec {
            node_name: node.to_string(),
        },
        status: Some(status),
    }
}

/// The owner reference to this node's Node: the garbage collector removes the speaker's
/// objects (`SpeakerState`, `ConfigurationState`) together with the Node.
pub fn node_owner(node: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: uid.into(),
        ..Default::default()
    }
}

/// Makes the Node with `uid` (when known) the owner of `state`.
pub fn owned_by_node(state: &mut SpeakerState, uid: Option<&str>) {
    let node = state.spec.node_name.clone();
    state.metadata.owner_references = uid.map(|uid| vec![node_owner(&node, uid)]);
}

/// The UID of the Node named `node` among `nodes`, if it is there and has one.
pub fn node_uid<'a>(nodes: &'a [k8s_openapi::api::core::v1::Node], node: &str) -> Option<&'a str> {
    nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .and_then(|n| n.metadata.uid.as_deref())
}

/// Sets `lastUpdate` to `now` and each Established peer's `establishedSince` from its uptime
/// (by VRF and address).
pub fn stamp(state: &mut SpeakerState, now: SystemTime, uptimes: &BTreeMap<PeerKey, Duration>) {
    if let Some(st) = state.status.as_mut() {
        st.last_update = time(now);
        for p in &mut st.bgp_peers {
            let up = p
                .address
                .parse::<IpAddr>()
                .ok()
                .and_then(|a| uptimes.get(&PeerKey::new(p.vrf.as_deref(), a)));
            p.established_since = up.and_then(|d| now.checked_sub(*d)).and_then(time);
        }
    }
}

/// Events for L2 ownership changes that concern this node: one `L2Announced` per Service
/// whose IPs this node now owns and did not before ("only the new owner emits it").
pub fn l2_events(
    me: &str,
    before: &BTreeMap<String, BTreeMap<IpAddr, L2Owner>>,
    after: &BTreeMap<String, BTreeMap<IpAddr, L2Owner>>,
) -> Vec<ServiceEvent> {
    let mut out = Vec::new();
    for (svc, owners) in after {
        let mut gained = Vec::new();
        for (ip, o) in owners {
            if o.node.as_deref() != Some(me) {
                continue;
            }
            let was = before
                .get(svc)
                .and_then(|b| b.get(ip))
                .and_then(|o| o.node.as_deref());
            if was != Some(me) {
                let ifaces: Vec<&str> = o.interfaces.iter().map(String::as_str).collect();
                gained.push(format!("{ip} on {}", ifaces.join(",")));
            }
        }
        if !gained.is_empty() {
            out.push(ServiceEvent {
                service: svc.clone(),
                reason: "L2Announced".into(),
                message: format!("announced by node {me}: {}", gained.join("; ")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::L2Claim;

    fn owner(node: &str, iface: &str) -> L2Owner {
        L2Owner {
            node: Some(node.into()),
            interfaces: if iface.is_empty() {
                Default::default()
            } else {
                [iface.to_string()].into()
            },
        }
    }

    #[test]
    fn only_the_new_owner_emits_the_event() {
        let ip: IpAddr = "192.0.2.200".parse().unwrap();
        let before = BTreeMap::from([(
            "default/web".to_string(),
            BTreeMap::from([(ip, owner("n1", ""))]),
        )]);
        let after = BTreeMap::from([(
            "default/web".to_string(),
            BTreeMap::from([(ip, owner("n2", "eth0"))]),
        )]);
        let ev = l2_events("n2", &before, &after);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].message, "announced by node n2: 192.0.2.200 on eth0");
        assert!(l2_events("n1", &before, &after).is_empty());
        assert!(l2_events("n3", &before, &after).is_empty());
        assert!(
            l2_events("n2", &after, &after).is_empty(),
            "no change, no event"
        );
    }

    #[test]
    fn state_lists_l2_addresses_and_prefixes() {
        let mut ann = Announcements::default();
        ann.l2.insert(
            "192.0.2.200".parse().unwrap(),
            L2Claim {
                interfaces: ["eth0".to_string()].into(),
                services: ["default/web".to_string()].into(),
            },
        );
        ann.routes.insert(
            "tor".into(),
            std::sync::Arc::new(BTreeMap::from([(
                "203.0.113.1/32".parse().unwrap(),
                Default::default(),
            )])),
        );
        let mut st = speaker_state(
            "n1",
            "ferrolb-system",
            "eth0=192.0.2.0/24",
            &ann,
            &BTreeMap::new(),
        );
        stamp(&mut st, SystemTime::now(), &BTreeMap::new());
        let s = st.status.unwrap();
        assert_eq!(s.l2_summary, "192.0.2.200");
        assert_eq!(s.announced_prefixes, 1);
        assert!(s.last_update.is_some());
        assert_eq!(
            st.metadata.annotations.unwrap()[LINKS_ANNOTATION],
            "eth0=192.0.2.0/24"
        );
    }

    #[test]
    fn bfd_state_only_for_peers_with_a_profile() {
        let yaml = "apiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\nmetadata: {name: fast, namespace: ferrolb-system}\nspec: {}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: a, namespace: ferrolb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, bfdProfile: fast}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: b, namespace: ferrolb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.2, bfdProfile: echo}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\nmetadata: {name: echo, namespace: ferrolb-system}\nspec: {echoMode: true}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: c, namespace: ferrolb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.3}\n";
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", yaml);
        let outcome = ferrolb_crds::from_resources(&loaded.resources);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let ann = Announcements {
            peers: outcome.config.peers.clone(),
            ..Default::default()
        };
        let mut st = speaker_state("n1", "ns", "", &ann, &BTreeMap::new());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        // A session for c exists (stale) but c has no profile: no `bfd`.
        set_bfd(
            &mut st,
            &ann,
            &BTreeMap::from([(a, ferrolb_bfd::State::Up), (c, ferrolb_bfd::State::Up)]),
            &BTreeMap::from([(a, bfd_echo(&ferrolb_bfd::EchoInfo::default()))]),
        );
        let by_name: BTreeMap<_, _> = st
            .status
            .unwrap()
            .bgp_peers
            .into_iter()
            .map(|p| (p.name, (p.bfd, p.bfd_echo)))
            .collect();
        assert_eq!(
            by_name["a"],
            (Some(BFDSessionState::Up), None),
            "no echoMode"
        );
        // b's profile has echoMode: its echo shows, inactive until its session says so.
        assert_eq!(
            by_name["b"],
            (Some(BFDSessionState::Down), Some(BFDEchoStatus::default())),
            "no session yet"
        );
        assert_eq!(by_name["c"], (None, None));
    }

    #[test]
    fn bfd_auth_failure_is_the_peers_last_error() {
        let yaml = "apiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\nmetadata: {name: fast, namespace: ferrolb-system}\nspec: {}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: a, namespace: ferrolb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, bfdProfile: fast}\n---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: c, namespace: ferrolb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.3}\n";
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", yaml);
        let outcome = ferrolb_crds::from_resources(&loaded.resources);
        let ann = Announcements {
            peers: outcome.config.peers.clone(),
            ..Default::default()
        };
        let mut st = speaker_state("n1", "ns", "", &ann, &BTreeMap::new());
        let msg = "BFD authentication failed from 192.0.2.1: wrong key id 3 (expected 1)";
        let auth = BTreeMap::from([
            ("192.0.2.1".parse().unwrap(), msg.to_string()),
            // c has no bfdProfile: a stale session's failure is not its error.
            ("192.0.2.3".parse().unwrap(), "stale".to_string()),
        ]);
        set_bfd_auth_errors(&mut st, &ann, &auth);
        let errors: BTreeMap<_, _> = st
            .status
            .unwrap()
            .bgp_peers
            .into_iter()
            .map(|p| (p.name, p.last_error))
            .collect();
        assert_eq!(errors["a"].as_deref(), Some(msg));
        assert_eq!(errors["c"], None);
    }

    #[test]
    fn bfd_echo_status_from_the_session() {
        let e = ferrolb_bfd::EchoInfo {
            enabled: true,
            loop_ok: true,
            tx_interval: Some(Duration::from_millis(80)),
            peer_loops: Some(false),
            ..Default::default()
        };
        assert_eq!(
            bfd_echo(&e),
            BFDEchoStatus {
                active: true,
                interval_ms: Some(80),
                loops_peer_echoes: true,
                peer_loops_our_echoes: Some(false),
            }
        );
    }

    #[test]
    fn failing_driver_calls_are_listed_with_their_target_and_error_until_they_succeed() {
        use crate::plan::Action;
        use crate::retry::Failed;
        let mut st = speaker_state("n1", "ns", "", &Announcements::default(), &BTreeMap::new());
        let failed = [
            Failed {
                action: Action::SetOwned {
                    iface: "eth1".into(),
                    ips: Default::default(),
                },
                driver: "l2",
                error: "no such interface".into(),
            },
            Failed {
                action: Action::RemoveBfd {
                    peer: "192.0.2.1".parse().unwrap(),
                },
                driver: "bfd",
                error: "socket closed".into(),
            },
        ];
        set_driver_errors(&mut st, &failed);
        let errors = &st.status.as_ref().unwrap().driver_errors;
        let got: Vec<_> = errors
            .iter()
            .map(|e| (e.driver.as_str(), e.target.as_str(), e.error.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("l2", "interface eth1", "no such interface"),
                ("bfd", "BFD session to 192.0.2.1", "socket closed"),
            ]
        );
        // Written only while something fails.
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(
            json["status"]["driverErrors"][0]["target"],
            "interface eth1"
        );
        set_driver_errors(&mut st, &[]);
        let json = serde_json::to_value(&st).unwrap();
        assert!(json["status"].get("driverErrors").is_none(), "{json}");
    }

    #[test]
    fn one_address_in_two_vrfs_shows_each_session_with_its_vrf() {
        let peer = |name: &str, vrf: &str| {
            format!(
                "---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec: {{myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, vrf: {vrf}}}\n"
            )
        };
        let yaml = peer("red", "red") + &peer("blue", "blue");
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", &yaml);
        let outcome = ferrolb_crds::from_resources(&loaded.resources);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let ann = Announcements {
            peers: outcome.config.peers.clone(),
            ..Default::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let up = PeerStatus {
            state: State::Established,
            established_at: Some(std::time::Instant::now()),
            ..Default::default()
        };
        let failing = PeerStatus {
            last_error: Some("binding to VRF blue: no such VRF device on this node".into()),
            ..Default::default()
        };
        let sessions = BTreeMap::from([
            (PeerKey::new(Some("red"), a), up),
            (PeerKey::new(Some("blue"), a), failing),
        ]);
        let mut st = speaker_state("n1", "ns", "", &ann, &sessions);
        let uptimes = BTreeMap::from([(PeerKey::new(Some("red"), a), Duration::from_secs(5))]);
        stamp(&mut st, SystemTime::now(), &uptimes);
        let by_name: BTreeMap<_, _> = st
            .status
            .unwrap()
            .bgp_peers
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let (red, blue) = (&by_name["red"], &by_name["blue"]);
        assert_eq!(
            (red.address.as_str(), red.vrf.as_deref()),
            ("192.0.2.1", Some("red"))
        );
        assert_eq!(red.state, BGPSessionState::Established);
        assert!(red.established_since.is_some());
        assert_eq!(blue.vrf.as_deref(), Some("blue"));
        assert_eq!(blue.state, BGPSessionState::Idle);
        assert!(blue.established_since.is_none());
        assert!(blue.last_error.as_deref().unwrap().contains("VRF blue"));
    }
}
