//! The I/O side's parts that need no namespace: interface listing and start-up errors.

use ferrolb_arp::{Config, Error, L2Responder};

#[test]
fn start_outside_a_runtime_is_an_error() {
    assert!(matches!(
        L2Responder::start(Config::default()),
        Err(Error::NoRuntime)
    ));
}

#[tokio::test]
async fn links_list_loopback_with_its_addresses() {
    let (handle, _events) = L2Responder::start(Config::default()).expect("start");
    let links = handle.links();
    let lo = links.get("lo").expect("lo listed");
    assert!(lo.ifindex > 0);
    assert!(
        lo.addresses.iter().any(|n| n.to_string() == "127.0.0.1/8"),
        "{lo:?}"
    );
    assert_eq!(
        handle
            .interface_for("127.0.0.9".parse().unwrap())
            .as_deref(),
        Some("lo")
    );
    // Setting an owned set for an interface that does not exist is accepted: it is served
    // once it appears.
    handle
        .set_owned("flb-nonexistent0", ["192.0.2.1".parse().unwrap()].into())
        .expect("set_owned");
    assert_eq!(handle.owned("flb-nonexistent0").len(), 1);
}

#[tokio::test]
async fn shutdown_stops_and_later_updates_fail() {
    let (handle, _events) = L2Responder::start(Config::default()).expect("start");
    handle
        .set_owned("lo", ["192.0.2.1".parse().unwrap()].into())
        .expect("set_owned");
    handle.shutdown();
    assert!(handle.owned("lo").is_empty());
    assert!(matches!(
        handle.set_owned("lo", ["192.0.2.1".parse().unwrap()].into()),
        Err(Error::Stopped)
    ));
}
