//! The namespace helpers themselves: two namespaces joined by a veth can ping each other,
//! and everything is gone after drop.
use std::os::unix::fs::MetadataExt;

use ferrolb_tests::{Netns, require_root, run, veth};

#[test]
fn veth_pair_carries_ping_and_namespaces_are_removed() {
    if !require_root("veth_pair_carries_ping_and_namespaces_are_removed") {
        return;
    }
    let names;
    {
        let a = Netns::new("smoke-a");
        let b = Netns::new("smoke-b");
        veth(&a, "eth0", &b, "eth0");
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"])
            .unwrap();
        b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])
            .unwrap();
        let out = a.exec("ping", &["-c", "1", "-W", "2", "192.0.2.2"]);
        assert!(out.is_ok(), "ping across veth failed: {out:?}");
        // A thread inside `b` runs in b's namespace: same nsfs inode as /run/netns/<b>.
        let want = std::fs::metadata(format!("/run/netns/{}", b.name()))
            .unwrap()
            .ino();
        let got = b.run_in(|| std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino());
        assert_eq!(got, want, "thread did not enter the test namespace");
        let own = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        assert_ne!(own, want, "the test's own thread must stay outside");
        names = (a.name().to_string(), b.name().to_string());
    }
    let list = run("ip", &["netns", "list"]).unwrap();
    assert!(
        !list.contains(&names.0) && !list.contains(&names.1),
        "namespaces left behind: {list}"
    );
}
