//! The lab's links and addresses (see the picture in `lab.rs`): bridge br0 in the router,
//! one veth port per node and for the client on the segment, a routed link to the outside
//! client. Documentation addresses only.

use super::{NODE_NAMES, node_ip, node_ip6};
use crate::netns::{Netns, veth};

/// Wires the namespaces made by [`super::Lab::new`]; `ipv6` gives the nodes v6 too.
pub(super) fn wire(r: &Netns, nodes: &[Netns], cl2: &Netns, cout: &Netns, ipv6: bool) {
    r.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    r.ip(&["link", "set", "br0", "up"]).unwrap();
    r.ip(&["addr", "add", "192.0.2.1/24", "dev", "br0"])
        .unwrap();
    r.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "br0", "nodad"])
        .unwrap();
    for (i, n) in nodes.iter().enumerate() {
        node(r, n, i, ipv6);
    }
    veth(r, "p-cl2", cl2, "eth0");
    r.ip(&["link", "set", "p-cl2", "master", "br0"]).unwrap();
    cl2.ip(&["addr", "add", "192.0.2.50/24", "dev", "eth0"])
        .unwrap();
    cl2.ip(&["addr", "add", "2001:db8:1::50/64", "dev", "eth0", "nodad"])
        .unwrap();
    outside(r, cout);
    r.sysctl("net.ipv4.ip_forward=1").unwrap();
    r.sysctl("net.ipv4.fib_multipath_hash_policy=1").unwrap();
    r.sysctl("net.ipv6.conf.all.forwarding=1").unwrap();
    r.sysctl("net.ipv6.fib_multipath_hash_policy=1").unwrap();
}

/// Node `i` on the bridge, default route via the router. The node's kernel accepts traffic
/// for Service IPs put on its `lo` (kube-proxy's job on a real node) but does not answer ARP
/// for them on eth0: the speaker does.
fn node(r: &Netns, n: &Netns, i: usize, ipv6: bool) {
    let port = format!("p-{}", NODE_NAMES[i]);
    veth(r, &port, n, "eth0");
    r.ip(&["link", "set", &port, "master", "br0"]).unwrap();
    n.ip(&["addr", "add", &format!("{}/24", node_ip(i)), "dev", "eth0"])
        .unwrap();
    if ipv6 {
        let a = format!("{}/64", node_ip6(i));
        n.ip(&["addr", "add", &a, "dev", "eth0", "nodad"]).unwrap();
        n.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"])
            .unwrap();
    }
    n.ip(&["route", "add", "default", "via", "192.0.2.1"])
        .unwrap();
    n.sysctl("net.ipv4.conf.all.arp_ignore=1").unwrap();
    n.sysctl("net.ipv4.conf.all.arp_announce=2").unwrap();
}

/// The outside client `cout` behind the router, with routes to the BGP pools.
fn outside(r: &Netns, cout: &Netns) {
    veth(r, "p-cout", cout, "eth0");
    r.ip(&["addr", "add", "198.51.100.1/24", "dev", "p-cout"])
        .unwrap();
    r.ip(&["addr", "add", "2001:db8:2::1/64", "dev", "p-cout", "nodad"])
        .unwrap();
    cout.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])
        .unwrap();
    cout.ip(&["addr", "add", "2001:db8:2::2/64", "dev", "eth0", "nodad"])
        .unwrap();
    cout.ip(&["route", "add", "203.0.113.0/24", "via", "198.51.100.1"])
        .unwrap();
    cout.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:100::/48",
        "via",
        "2001:db8:2::1",
    ])
    .unwrap();
}
