//! The membership driver over real UDP on loopback (no root needed): start with and
//! without seeds, `set_seeds`, graceful leave, abrupt stop, config errors. Outcomes only.

use std::collections::BTreeSet;
use std::time::Duration;

use ferrolb_speaker::membership::{
    Membership, MembershipConfig, MembershipError, MembershipHandle, Tuning,
};
use tokio::sync::watch;

const KEY: &[u8] = b"loopback-membership-test-key-001";

fn config(name: &str, seeds: Vec<std::net::SocketAddr>) -> MembershipConfig {
    MembershipConfig {
        node_name: name.into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        seeds,
        key: KEY.to_vec(),
        tuning: Tuning::default(),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn wait_for(rx: &mut watch::Receiver<BTreeSet<String>>, want: BTreeSet<String>) {
    let ok = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| *s == want))
        .await
        .is_ok();
    assert!(ok, "live set {:?}, want {:?}", *rx.borrow(), want);
}

async fn start(
    name: &str,
    seeds: Vec<std::net::SocketAddr>,
) -> (MembershipHandle, watch::Receiver<BTreeSet<String>>) {
    Membership::start(config(name, seeds)).await.expect("start")
}

#[tokio::test]
async fn join_by_seed_and_set_seeds_then_leave_and_crash() {
    let (a, mut a_rx) = start("a", vec![]).await;
    assert_eq!(*a_rx.borrow(), set(&["a"]));
    let (b, mut b_rx) = start("b", vec![a.local_addr()]).await;
    // c starts alone and is pointed at b later (a discovery update).
    let (c, mut c_rx) = start("c", vec![]).await;
    wait_for(&mut a_rx, set(&["a", "b"])).await;
    c.set_seeds(vec![b.local_addr()]);
    for rx in [&mut a_rx, &mut b_rx, &mut c_rx] {
        wait_for(rx, set(&["a", "b", "c"])).await;
    }

    c.leave().await.expect("leave");
    wait_for(&mut a_rx, set(&["a", "b"])).await;
    wait_for(&mut b_rx, set(&["a", "b"])).await;
    assert!(a.metrics().leaves_received >= 1);

    b.abort();
    wait_for(&mut a_rx, set(&["a"])).await;
    let m = a.metrics();
    assert_eq!(m.members, 1);
    assert!(m.member_down >= 2, "{m:?}");
    assert_eq!(m.auth_failures, 0);
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_field_named() {
    let short = MembershipConfig {
        key: b"short".to_vec(),
        ..config("a", vec![])
    };
    assert!(matches!(
        Membership::start(short).await,
        Err(MembershipError::KeyTooShort { len: 5 })
    ));
    let unnamed = config("", vec![]);
    assert!(matches!(
        Membership::start(unnamed).await,
        Err(MembershipError::BadNodeName(_))
    ));
    let anywhere = MembershipConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..config("a", vec![])
    };
    let err = Membership::start(anywhere)
        .await
        .err()
        .expect("unspecified advertise");
    assert!(err.to_string().contains("advertise"), "{err}");
    let slow = MembershipConfig {
        tuning: Tuning {
            probe_rtt: Duration::from_secs(5),
            ..Tuning::default()
        },
        ..config("a", vec![])
    };
    assert!(matches!(
        Membership::start(slow).await,
        Err(MembershipError::Tuning(_))
    ));
}

#[tokio::test]
async fn members_meet_over_ipv6() {
    let v6 = |name: &str, seeds| MembershipConfig {
        bind: "[::1]:0".parse().unwrap(),
        ..config(name, seeds)
    };
    let Ok((a, mut a_rx)) = Membership::start(v6("a", vec![])).await else {
        eprintln!("skipping members_meet_over_ipv6: no IPv6 loopback on this host");
        return;
    };
    let (b, mut b_rx) = Membership::start(v6("b", vec![a.local_addr()]))
        .await
        .expect("start b");
    wait_for(&mut a_rx, set(&["a", "b"])).await;
    wait_for(&mut b_rx, set(&["a", "b"])).await;
    b.leave().await.expect("leave");
    wait_for(&mut a_rx, set(&["a"])).await;
}
