//! The L2 responder on real AF_PACKET sockets in network namespaces, probed by Habets arping,
//! ndisc6 and the client kernel's own neighbour code.

use std::time::Duration;

use ferrolb_arp::{Config, DropReason, L2Event, ReplyKind};
use ferrolb_tests::l2_fixture::{L2Bench, NODE_MAC, arping, maddrs, ndisc6};
use ferrolb_tests::{require_root, wait_until};

fn quiet() -> Config {
    // No announcements unless a test asks: keeps counters and neighbour tables predictable.
    Config {
        announce_count: 0,
        link_poll_interval: Duration::from_millis(100),
        ..Config::default()
    }
}

const WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

#[test]
fn arp_arping_owned_unowned_and_taken_away() {
    if !require_root("arp_arping_owned_unowned_and_taken_away") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["192.0.2.11"]);

    let (ok, out) = arping(
        &bench.client,
        &["-c", "2", "-w", "3", "-I", "eth0", "192.0.2.11"],
    );
    assert!(ok, "arping to an owned IP got no reply: {out}");
    assert!(out.contains(NODE_MAC), "reply not from our MAC: {out}");

    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.12"],
    );
    assert!(!ok, "arping to an unowned IP got a reply: {out}");

    // The client kernel resolves the IP to our MAC (ping itself gets no answer: the node has
    // no IP stack for it, only the responder).
    let _ = bench
        .client
        .exec_output("ping", &["-c", "1", "-W", "1", "192.0.2.11"]);
    let neigh = wait_until(WAIT, POLL, || {
        let n = bench.client_neigh("192.0.2.11");
        n.contains(NODE_MAC).then_some(n)
    });
    assert!(
        neigh.is_some(),
        "client neighbour table: {}",
        bench.client_neigh("192.0.2.11")
    );

    let c = r.counters();
    assert!(c.replies[&ReplyKind::Arp] >= 3, "{c:?}");
    assert!(c.drops[&DropReason::NotOwned] >= 1, "{c:?}");

    // Taken away: no reply any more.
    r.set_owned("eth0", &[]);
    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.11"],
    );
    assert!(
        !ok,
        "arping still answered after the IP was taken away: {out}"
    );
}

#[test]
fn arp_ndisc6_owned_unowned_and_taken_away() {
    if !require_root("arp_ndisc6_owned_unowned_and_taken_away") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["2001:db8::11"]);
    // The socket joined the solicited-node group of the owned address.
    let joined = wait_until(WAIT, POLL, || {
        maddrs(&bench.node, "eth0")
            .contains("33:33:ff:00:00:11")
            .then_some(())
    });
    assert!(joined.is_some(), "{}", maddrs(&bench.node, "eth0"));

    let (ok, out) = ndisc6(&bench.client, &["-1", "-w", "1000", "2001:db8::11", "eth0"]);
    assert!(ok, "ndisc6 to an owned IP got no answer: {out}");
    assert!(
        out.to_lowercase().contains(NODE_MAC),
        "answer not from our MAC: {out}"
    );

    let (ok, out) = ndisc6(
        &bench.client,
        &["-1", "-r", "1", "-w", "500", "2001:db8::12", "eth0"],
    );
    assert!(!ok, "ndisc6 to an unowned IP got an answer: {out}");

    let _ = bench
        .client
        .exec_output("ping", &["-6", "-c", "1", "-W", "1", "2001:db8::11"]);
    let neigh = wait_until(WAIT, POLL, || {
        let n = bench.client_neigh("2001:db8::11");
        n.contains(NODE_MAC).then_some(n)
    });
    assert!(
        neigh.is_some(),
        "client neighbour table: {}",
        bench.client_neigh("2001:db8::11")
    );
    assert!(r.counters().replies[&ReplyKind::NaMulticastNs] >= 2);

    r.set_owned("eth0", &[]);
    let (ok, out) = ndisc6(
        &bench.client,
        &["-1", "-r", "1", "-w", "500", "2001:db8::11", "eth0"],
    );
    assert!(
        !ok,
        "ndisc6 still answered after the IP was taken away: {out}"
    );
    let left = wait_until(WAIT, POLL, || {
        (!maddrs(&bench.node, "eth0").contains("33:33:ff:00:00:11")).then_some(())
    });
    assert!(left.is_some(), "multicast group still joined");
}

#[test]
fn arp_announcements_update_existing_client_entries() {
    if !require_root("arp_announcements_update_existing_client_entries") {
        return;
    }
    let bench = L2Bench::new();
    // The client has stale entries pointing at another MAC (the previous owner).
    for ip in ["192.0.2.13", "2001:db8::13"] {
        bench
            .client
            .ip(&[
                "neigh",
                "replace",
                ip,
                "lladdr",
                "02:00:00:00:0b:99",
                "dev",
                "eth0",
                "nud",
                "stale",
            ])
            .expect("seed neighbour");
    }
    let r = bench.start_responder(Config {
        announce_count: 3,
        announce_interval: Duration::from_millis(200),
        ..quiet()
    });
    r.set_owned("eth0", &["192.0.2.13", "2001:db8::13"]);
    for ip in ["192.0.2.13", "2001:db8::13"] {
        let updated = wait_until(WAIT, POLL, || {
            bench.client_neigh(ip).contains(NODE_MAC).then_some(())
        });
        assert!(updated.is_some(), "{ip}: {}", bench.client_neigh(ip));
    }
    // 3 rounds of (GARP request + GARP reply + unsolicited NA).
    let sent = wait_until(WAIT, POLL, || {
        (r.counters().announcements_sent == 9).then_some(())
    });
    assert!(sent.is_some(), "{:?}", r.counters());
}

#[test]
fn arp_nud_probes_keep_client_entries_reachable() {
    if !require_root("arp_nud_probes_keep_client_entries_reachable") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["2001:db8::14"]);
    // A stale entry with our MAC: traffic makes the kernel probe it with unicast NS (NUD,
    // RFC 4861 §7.3.3); only a solicited NA makes it REACHABLE again. Without an answer it
    // would go FAILED (the MetalLB #2920 failure mode).
    bench
        .client
        .sysctl("net.ipv6.neigh.eth0.delay_first_probe_time=0")
        .expect("sysctl");
    bench
        .client
        .ip(&[
            "neigh",
            "replace",
            "2001:db8::14",
            "lladdr",
            NODE_MAC,
            "dev",
            "eth0",
            "nud",
            "stale",
        ])
        .expect("seed neighbour");
    let _ = bench.client.exec_output(
        "ping",
        &["-6", "-c", "2", "-i", "0.3", "-W", "1", "2001:db8::14"],
    );
    let reachable = wait_until(WAIT, POLL, || {
        bench
            .client_neigh("2001:db8::14")
            .contains("REACHABLE")
            .then_some(())
    });
    assert!(
        reachable.is_some(),
        "{}",
        bench.client_neigh("2001:db8::14")
    );
    let c = r.counters();
    assert!(c.replies[&ReplyKind::NaUnicastNs] >= 1, "{c:?}");

    // The IPv4 counterpart: Linux probes a stale ARP entry with unicast requests to the
    // cached MAC.
    r.set_owned("eth0", &["2001:db8::14", "192.0.2.14"]);
    bench
        .client
        .sysctl("net.ipv4.neigh.eth0.delay_first_probe_time=0")
        .expect("sysctl");
    bench
        .client
        .ip(&[
            "neigh",
            "replace",
            "192.0.2.14",
            "lladdr",
            NODE_MAC,
            "dev",
            "eth0",
            "nud",
            "stale",
        ])
        .expect("seed neighbour");
    let before = r.counters().replies[&ReplyKind::Arp];
    let _ = bench
        .client
        .exec_output("ping", &["-c", "2", "-i", "0.3", "-W", "1", "192.0.2.14"]);
    let reachable = wait_until(WAIT, POLL, || {
        bench
            .client_neigh("192.0.2.14")
            .contains("REACHABLE")
            .then_some(())
    });
    assert!(reachable.is_some(), "{}", bench.client_neigh("192.0.2.14"));
    assert!(r.counters().replies[&ReplyKind::Arp] > before);
}

#[test]
fn arp_probes_are_defended() {
    if !require_root("arp_probes_are_defended") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["192.0.2.15", "2001:db8::15"]);
    // RFC 5227 probe (sender 0.0.0.0) gets an answer.
    let (ok, out) = arping(
        &bench.client,
        &["-0", "-c", "1", "-w", "2", "-I", "eth0", "192.0.2.15"],
    );
    assert!(ok, "ARP probe not answered: {out}");
    // The client kernel's DAD for an address we own fails.
    bench
        .client
        .sysctl("net.ipv6.conf.eth0.accept_dad=1")
        .expect("sysctl");
    bench
        .client
        .sysctl("net.ipv6.conf.eth0.dad_transmits=1")
        .expect("sysctl");
    bench
        .client
        .ip(&["addr", "add", "2001:db8::15/64", "dev", "eth0"])
        .expect("add address with DAD");
    let failed = wait_until(WAIT, POLL, || {
        let a = bench
            .client
            .ip(&["-6", "addr", "show", "dev", "eth0"])
            .unwrap_or_default();
        a.contains("dadfailed").then_some(a)
    });
    assert!(failed.is_some(), "client DAD did not fail");
    let c = r.counters();
    assert!(c.replies[&ReplyKind::ArpProbe] >= 1, "{c:?}");
    assert!(c.replies[&ReplyKind::NaDad] >= 1, "{c:?}");
}

#[test]
fn arp_vlan_tagged_requests_are_not_answered() {
    if !require_root("arp_vlan_tagged_requests_are_not_answered") {
        return;
    }
    let bench = L2Bench::new();
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["192.0.2.16"]);
    // arping builds the 802.1Q tag itself; the node's kernel moves it into packet metadata
    // and the responder must see it there (PACKET_AUXDATA), not answer it as untagged.
    let (ok, out) = arping(
        &bench.client,
        &[
            "-V",
            "100",
            "-c",
            "1",
            "-w",
            "1",
            "-I",
            "eth0",
            "192.0.2.16",
        ],
    );
    assert!(!ok, "tagged request was answered: {out}");
    let tagged = wait_until(WAIT, POLL, || {
        (r.counters().drops[&DropReason::VlanTagged] >= 1).then_some(())
    });
    assert!(tagged.is_some(), "{:?}", r.counters());
    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "2", "-I", "eth0", "192.0.2.16"],
    );
    assert!(ok, "untagged request not answered: {out}");
}

#[test]
fn arp_conflicts_are_reported() {
    if !require_root("arp_conflicts_are_reported") {
        return;
    }
    let bench = L2Bench::new();
    let mut r = bench.start_responder(quiet());
    r.set_owned("eth0", &["192.0.2.17", "2001:db8::17"]);
    // Another host (the client) announces our IPv4 address with gratuitous ARP replies (a
    // burst of 10, 10 ms apart)...
    let _ = arping(
        &bench.client,
        &[
            "-U",
            "-P",
            "-c",
            "10",
            "-W",
            "0.01",
            "-w",
            "1",
            "-I",
            "eth0",
            "-S",
            "192.0.2.17",
            "192.0.2.17",
        ],
    );
    let ev = r.wait_event(WAIT, |e| matches!(e, L2Event::Conflict { .. }));
    match ev {
        Some(L2Event::Conflict {
            ip,
            iface,
            other_mac,
        }) => {
            assert_eq!(ip.to_string(), "192.0.2.17");
            assert_eq!(iface, "eth0");
            assert_eq!(other_mac.to_string(), ferrolb_tests::l2_fixture::CLIENT_MAC);
        }
        other => panic!("no conflict event: {other:?}"),
    }
    // Every frame is counted, but the burst is not reported once per frame.
    let counted = wait_until(WAIT, POLL, || (r.counters().conflicts >= 10).then_some(()));
    assert!(counted.is_some(), "{:?}", r.counters());
    let mut repeats = 0;
    while let Ok(ev) = r.events.try_recv() {
        if matches!(&ev, L2Event::Conflict { ip, .. } if ip.to_string() == "192.0.2.17") {
            repeats += 1;
        }
    }
    assert!(
        repeats < 9,
        "{repeats} repeated conflict events for one burst"
    );
    // ...and our IPv6 address with an unsolicited NA: the client kernel sends one for each
    // of its addresses when its MAC changes and ndisc_notify is on.
    bench
        .client
        .sysctl("net.ipv6.conf.eth0.ndisc_notify=1")
        .expect("sysctl");
    bench
        .client
        .ip(&["addr", "add", "2001:db8::17/64", "dev", "eth0", "nodad"])
        .expect("add address");
    bench
        .client
        .ip(&["link", "set", "eth0", "address", "02:00:00:00:0c:02"])
        .expect("change MAC");
    let ev = r.wait_event(
        WAIT,
        |e| matches!(e, L2Event::Conflict { ip, .. } if ip.to_string() == "2001:db8::17"),
    );
    assert!(ev.is_some(), "no IPv6 conflict event: {:?}", r.counters());
    assert!(r.counters().conflicts >= 11);
}

#[test]
fn arp_link_changes_are_reported() {
    if !require_root("arp_link_changes_are_reported") {
        return;
    }
    let bench = L2Bench::new();
    bench
        .node
        .ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])
        .expect("node address");
    let mut r = bench.start_responder(Config {
        announce_count: 1,
        ..quiet()
    });
    r.set_owned("eth0", &["192.0.2.18"]);
    // Gaining the IP: one gratuitous ARP pair.
    let announced = wait_until(WAIT, POLL, || {
        (r.counters().announcements_sent == 2).then_some(())
    });
    assert!(announced.is_some(), "{:?}", r.counters());
    let links = r.handle.links();
    let eth0 = links.get("eth0").expect("eth0 listed");
    assert!(eth0.up);
    assert_eq!(eth0.mac.map(|m| m.to_string()).as_deref(), Some(NODE_MAC));
    assert!(
        eth0.addresses
            .iter()
            .any(|n| n.to_string() == "198.51.100.2/24")
    );
    assert_eq!(
        r.handle
            .interface_for("198.51.100.77".parse().unwrap())
            .as_deref(),
        Some("eth0")
    );

    // The peer side going down takes the carrier away: link down.
    bench
        .client
        .ip(&["link", "set", "eth0", "down"])
        .expect("down");
    let ev = r.wait_event(
        WAIT,
        |e| matches!(e, L2Event::LinkChanged { iface, .. } if iface == "eth0"),
    );
    assert_eq!(
        ev,
        Some(L2Event::LinkChanged {
            iface: "eth0".into(),
            up: false
        })
    );
    bench.client.ip(&["link", "set", "eth0", "up"]).expect("up");
    let ev = r.wait_event(
        WAIT,
        |e| matches!(e, L2Event::LinkChanged { iface, .. } if iface == "eth0"),
    );
    assert_eq!(
        ev,
        Some(L2Event::LinkChanged {
            iface: "eth0".into(),
            up: true
        })
    );
    // Link back up: announced again (switches may have flushed their tables).
    let again = wait_until(WAIT, POLL, || {
        (r.counters().announcements_sent >= 4).then_some(())
    });
    assert!(again.is_some(), "{:?}", r.counters());

    // An interface that appears, is served, and disappears.
    bench
        .node
        .ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"])
        .expect("add veth");
    r.set_owned("x0", &["203.0.113.5"]);
    let ev = r.wait_event(
        WAIT,
        |e| matches!(e, L2Event::InterfaceAppeared { iface, .. } if iface == "x0"),
    );
    assert!(ev.is_some());
    bench.node.ip(&["link", "del", "x0"]).expect("del veth");
    let ev = r.wait_event(
        WAIT,
        |e| matches!(e, L2Event::InterfaceGone { iface } if iface == "x0"),
    );
    assert!(ev.is_some());
    assert!(!r.handle.links().contains_key("x0"));

    // Re-created (new ifindex) and up: served again, the owned IP announced on it.
    let before = r.counters().announcements_sent;
    bench
        .node
        .ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"])
        .expect("re-add veth");
    bench.node.ip(&["link", "set", "x1", "up"]).expect("x1 up");
    bench.node.ip(&["link", "set", "x0", "up"]).expect("x0 up");
    let again = wait_until(WAIT, POLL, || {
        (r.counters().announcements_sent >= before + 2).then_some(())
    });
    assert!(again.is_some(), "{:?}", r.counters());
}

#[test]
fn arp_answers_only_on_the_bound_interface_and_stops_on_shutdown() {
    if !require_root("arp_answers_only_on_the_bound_interface_and_stops_on_shutdown") {
        return;
    }
    let bench = L2Bench::new();
    // A second segment: node eth1 <-> client2 eth0.
    let client2 = ferrolb_tests::Netns::new("l2c2");
    ferrolb_tests::veth(&bench.node, "eth1", &client2, "eth0");
    client2
        .ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])
        .expect("client2 address");
    let r = bench.start_responder(quiet());
    r.set_owned("eth0", &["192.0.2.19"]);
    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "2", "-I", "eth0", "192.0.2.19"],
    );
    assert!(ok, "not answered on the bound interface: {out}");
    let (ok, out) = arping(
        &client2,
        &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.19"],
    );
    assert!(
        !ok,
        "answered on an interface the IP is not bound to: {out}"
    );

    r.handle.shutdown();
    let (ok, out) = arping(
        &bench.client,
        &["-c", "1", "-w", "1", "-I", "eth0", "192.0.2.19"],
    );
    assert!(!ok, "still answering after shutdown: {out}");
}
