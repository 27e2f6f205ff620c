//! The public API end to end with two of our own speakers over real loopback TCP (no root
//! needed): passive side, collisions, reset with reason, removal with reason, MD5 on the
//! listener. Waits are bounded; nothing asserts on timing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferrolb_bgp::*;

const T: Duration = Duration::from_secs(15);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn speaker(addr: &str, id: &str) -> BgpSpeaker {
    let mut c = SpeakerConfig::new(id.parse().unwrap());
    c.listen = Some(SocketAddr::new(ip(addr), 0));
    BgpSpeaker::new(c).unwrap()
}

fn peer(to: &str, port: u16, from: &str, local_asn: u32, peer_asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(ip(to), local_asn, peer_asn);
    p.peer_port = port;
    p.source_addr = Some(ip(from));
    p.connect_time = Duration::from_secs(2);
    p.ebgp_multihop = Some(2);
    p
}

async fn wait_for(
    s: &BgpSpeaker,
    peer: IpAddr,
    what: &str,
    mut f: impl FnMut(&PeerStatus) -> bool,
) -> PeerStatus {
    let mut rx = s.subscribe();
    let r = tokio::time::timeout(T, async {
        loop {
            if let Some(st) = rx.borrow_and_update().get(&PeerKey::from(peer))
                && f(st)
            {
                return st.clone();
            }
            rx.changed().await.expect("speaker alive");
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", s.peer_status(peer)))
}

/// A (127.0.0.1, AS 64512) and B (127.0.0.2, AS 64513, passive towards A, already added);
/// returns A's config for B, not added yet.
fn active_and_passive() -> (BgpSpeaker, BgpSpeaker, PeerConfig) {
    let a = speaker("127.0.0.1", "192.0.2.1");
    let b = speaker("127.0.0.2", "192.0.2.2");
    let pa = a.listen_addr().unwrap().port();
    let pb = b.listen_addr().unwrap().port();
    let mut passive = peer("127.0.0.1", pa, "127.0.0.2", 64513, 64512);
    passive.passive = true;
    b.add_peer(passive).unwrap();
    (a, b, peer("127.0.0.2", pb, "127.0.0.1", 64512, 64513))
}

fn established(st: &PeerStatus) -> bool {
    st.state == State::Established
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_peer_accepts_reset_and_removal_carry_reasons() {
    let (a, b, cfg) = active_and_passive();
    a.add_peer(cfg).unwrap();
    let st = wait_for(&a, ip("127.0.0.2"), "A established", established).await;
    let neg = st.negotiated.expect("negotiated while Established");
    assert_eq!(
        neg.peer_id,
        "192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(
        (neg.peer_asn, neg.hold_time, neg.keepalive),
        (64513, 90, 30)
    );
    wait_for(&b, ip("127.0.0.1"), "B established", established).await;

    // BFD-style reset: B sees the reason, A comes back by itself.
    a.reset_peer(ip("127.0.0.2"), "bfd session down").unwrap();
    let st = wait_for(&b, ip("127.0.0.1"), "B sees the reset", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("bfd session down"))
    })
    .await;
    assert!(st.last_error.unwrap().contains("6/4"));
    let st = wait_for(&a, ip("127.0.0.2"), "A re-established", |s| {
        established(s) && s.flaps >= 1
    })
    .await;
    assert_eq!(st.flaps, 1);

    // Removal: Cease / Administrative Shutdown with the text, peer gone from the status.
    a.remove_peer(ip("127.0.0.2"), CeaseReason::admin_shutdown("node drained"))
        .await
        .unwrap();
    wait_for(&b, ip("127.0.0.1"), "B sees the removal", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("node drained"))
    })
    .await;
    assert!(a.peer_status(ip("127.0.0.2")).is_none());
    assert!(a.counters().notifications_out[6] >= 2);
    assert!(b.counters().notifications_in[6] >= 2);
    b.shutdown(GracefulMode::CeaseAndWithdraw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_active_sides_settle_on_one_session_with_md5() {
    let a = speaker("127.0.0.3", "192.0.2.3");
    let b = speaker("127.0.0.4", "192.0.2.4");
    let pa = a.listen_addr().unwrap().port();
    let pb = b.listen_addr().unwrap().port();
    let mut to_b = peer("127.0.0.4", pb, "127.0.0.3", 64512, 64513);
    let mut to_a = peer("127.0.0.3", pa, "127.0.0.4", 64513, 64512);
    to_b.md5_password = Some("loopback-key".into());
    to_a.md5_password = Some("loopback-key".into());
    a.add_peer(to_b).unwrap();
    b.add_peer(to_a).unwrap();
    // Both dial and both accept: a collision (RFC 4271 §6.8) is likely; either way exactly
    // one session must survive on both sides.
    wait_for(&a, ip("127.0.0.4"), "A established", established).await;
    wait_for(&b, ip("127.0.0.3"), "B established", established).await;
    // Let any losing connection finish closing; the surviving session stays up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.peer_status(ip("127.0.0.4")).unwrap().state,
        State::Established
    );
    assert_eq!(
        b.peer_status(ip("127.0.0.3")).unwrap().state,
        State::Established
    );
    a.shutdown(GracefulMode::CeaseAndWithdraw).await;
    b.shutdown(GracefulMode::CeaseAndWithdraw).await;
}

#[tokio::test]
async fn bad_peer_config_is_rejected_with_field_names() {
    let s = BgpSpeaker::new(SpeakerConfig::new("192.0.2.1".parse().unwrap())).unwrap();
    let mut p = PeerConfig::new(ip("192.0.2.2"), 64512, 64513);
    p.hold_time = 2;
    let e = s.add_peer(p.clone()).unwrap_err().to_string();
    assert!(e.contains("192.0.2.2") && e.contains("holdTime"), "{e}");
    p.hold_time = 90;
    p.md5_password = Some("x".repeat(81));
    assert!(
        s.add_peer(p.clone())
            .unwrap_err()
            .to_string()
            .contains("password")
    );
    p.md5_password = None;
    p.source_addr = Some(ip("2001:db8::1"));
    assert!(
        s.add_peer(p.clone())
            .unwrap_err()
            .to_string()
            .contains("sourceAddress")
    );
    p.source_addr = None;
    // Passive: never dials 192.0.2.2 from the host's namespace.
    p.passive = true;
    s.add_peer(p.clone()).unwrap();
    assert!(s.peer_status(ip("192.0.2.2")).is_some());
    wait_for(&s, ip("192.0.2.2"), "passive peer in Active", |st| {
        st.state == State::Active
    })
    .await;
    assert!(matches!(s.add_peer(p), Err(Error::DuplicatePeer(_))));
    assert!(matches!(
        s.set_routes(PeerSelector::Peer(ip("192.0.2.99").into()), RouteSet::new()),
        Err(Error::UnknownPeer(_))
    ));
    s.shutdown(GracefulMode::CeaseAndWithdraw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_speaker_sends_a_cease() {
    let a = speaker("127.0.0.5", "192.0.2.5");
    let b = speaker("127.0.0.6", "192.0.2.6");
    let pa = a.listen_addr().unwrap().port();
    let pb = b.listen_addr().unwrap().port();
    let mut passive = peer("127.0.0.5", pa, "127.0.0.6", 64513, 64512);
    passive.passive = true;
    b.add_peer(passive).unwrap();
    a.add_peer(peer("127.0.0.6", pb, "127.0.0.5", 64512, 64513))
        .unwrap();
    wait_for(&b, ip("127.0.0.5"), "B established", established).await;
    drop(a);
    wait_for(&b, ip("127.0.0.5"), "B sees the Cease", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("speaker stopped"))
    })
    .await;
    b.shutdown(GracefulMode::CeaseAndWithdraw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_peer_resets_only_on_a_real_change_with_cease_6_and_keeps_routes() {
    let (a, b, mut cfg) = active_and_passive();
    a.add_peer(cfg.clone()).unwrap();
    let mut routes = RouteSet::new();
    routes.insert(
        "203.0.113.7/32".parse().unwrap(),
        RouteAttrs::default().into(),
    );
    a.set_routes(PeerSelector::All, routes).unwrap();
    wait_for(&a, ip("127.0.0.2"), "A established", |s| {
        established(s) && s.prefixes_sent == 1
    })
    .await;
    // The same settings: nothing happens.
    assert!(!a.update_peer(cfg.clone()).unwrap());
    // A new hold time needs a new session: Cease / Other Configuration Change, then back up
    // with the new hold time and the routes sent again.
    cfg.hold_time = 30;
    cfg.keepalive = 10;
    assert!(a.update_peer(cfg.clone()).unwrap());
    wait_for(&b, ip("127.0.0.1"), "B sees Cease 6/6", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("NOTIFICATION 6/6 (Cease: Other Configuration Change)"))
    })
    .await;
    let st = wait_for(&a, ip("127.0.0.2"), "A back with hold 30", |s| {
        established(s) && s.negotiated.as_ref().is_some_and(|n| n.hold_time == 30)
    })
    .await;
    assert_eq!(st.negotiated.unwrap().keepalive, 10);
    wait_for(&a, ip("127.0.0.2"), "routes sent again", |s| {
        established(s) && s.prefixes_sent == 1
    })
    .await;
    // Our own Cease for the configuration change is not counted as an error (B, in its own
    // hold-off, may drop one of our attempts: that one is).
    let errors = a.peer_status(ip("127.0.0.2")).unwrap().errors;
    assert!(
        !errors.contains_key(&ErrorKind::NotificationSent),
        "{errors:?}"
    );
    cfg.peer_addr = ip("127.0.0.9");
    assert!(matches!(a.update_peer(cfg), Err(Error::UnknownPeer(_))));
    a.shutdown(GracefulMode::CeaseAndWithdraw).await;
    b.shutdown(GracefulMode::CeaseAndWithdraw).await;
}

/// Peers are keyed by VRF and address: the same address in two VRFs is two peers, each
/// removed on its own. A VRF device that does not exist is a failed attempt naming it
/// (retried), not a refused peer. Runs anywhere: these VRF devices never exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vrf_peers_are_keyed_by_vrf_and_address() {
    let s = BgpSpeaker::new(SpeakerConfig::new("192.0.2.1".parse().unwrap())).unwrap();
    let mut red = PeerConfig::new(ip("192.0.2.2"), 64512, 64513);
    red.vrf = Some("flb-nored".into());
    red.connect_time = Duration::from_secs(1);
    let mut blue = red.clone();
    blue.vrf = Some("flb-noblue".into());
    s.add_peer(red.clone()).unwrap();
    s.add_peer(blue.clone()).unwrap();
    assert!(matches!(s.add_peer(red.clone()), Err(Error::DuplicatePeer(k)) if k == red.key()));
    assert!(
        s.peer_status(ip("192.0.2.2")).is_none(),
        "not in the default VRF"
    );
    let key = red.key();
    let mut rx = s.subscribe();
    let failed = tokio::time::timeout(T, async {
        loop {
            let err = rx
                .borrow_and_update()
                .get(&key)
                .and_then(|st| st.last_error.clone());
            if let Some(e) = err {
                return e;
            }
            rx.changed().await.expect("speaker alive");
        }
    })
    .await
    .expect("a failed attempt");
    assert!(
        failed.contains("binding to VRF flb-nored: no such VRF device"),
        "{failed}"
    );
    s.remove_peer(key.clone(), CeaseReason::peer_deconfigured())
        .await
        .unwrap();
    assert!(s.peer_status(key).is_none());
    assert!(
        s.peer_status(blue.key()).is_some(),
        "the other VRF's peer stays"
    );
    s.shutdown(GracefulMode::CeaseAndWithdraw).await;
}
