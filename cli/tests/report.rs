//! The pure report functions on a fixture cluster (tests/fixtures/cluster/): manifests, the
//! controller's status and two speakers' states.
use ferrolb_cli::gather::apply_status;
use ferrolb_cli::report::{status, why};
use ferrolb_cli::{Inputs, render};
use ferrolb_crds::standalone::StandaloneStatus;
use ferrolb_crds::v1alpha1::SpeakerState;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/cluster/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn inputs() -> Inputs {
    let loaded = ferrolb_crds::yaml::load_str("manifests.yaml", &fixture("manifests.yaml"));
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut inputs = Inputs {
        resources: loaded.resources,
        ..Inputs::default()
    };
    let st: StandaloneStatus = serde_saphyr::from_str(&fixture("status.yaml")).unwrap();
    apply_status(&mut inputs, st);
    for f in ["speaker-node-a.yaml", "speaker-node-b.yaml"] {
        let sp: SpeakerState = serde_saphyr::from_str(&fixture(f)).unwrap();
        inputs.speakers.push(sp);
    }
    inputs
}

#[test]
fn status_lists_pools_services_announcers_sessions_and_errors() {
    let r = status(&inputs());
    let pools: Vec<(&str, u64, u64)> = r
        .pools
        .iter()
        .map(|p| (p.name.as_str(), p.usage.ipv4_used, p.usage.ipv4_free))
        .collect();
    assert_eq!(pools, [("manual", 1, 15), ("prod", 4, 0), ("v6only", 0, 0)]);
    assert_eq!(r.pools[2].usage.ipv6_free, 4);
    let svc = |n: &str| r.services.iter().find(|s| s.name == n).unwrap();
    // L2: the node that answers ARP, with its interface.
    assert_eq!(svc("admin").l2_nodes, ["node-a (eth0)"]);
    assert!(svc("admin").bgp_nodes.is_empty());
    // BGP: node-a (rack r1, session up) announces; node-b is not selected and its session is down.
    assert_eq!(svc("web").bgp_nodes, ["node-a"]);
    assert_eq!(
        svc("web").ips,
        ["192.0.2.0".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(svc("api").state, "NoPoolAvailable");
    assert!(svc("api").ips.is_empty());
    assert_eq!(r.sessions.len(), 2);
    assert_eq!(r.sessions[1].node, "node-b");
    assert_eq!(r.sessions[1].state, "Active");
    assert_eq!(r.sessions[1].address, "203.0.113.1 (vrf red)");
    assert!(r.sessions[1].last_error.as_deref().unwrap().contains("MD5"));
    assert_eq!(r.sessions[0].bfd.as_deref(), Some("Up"));
    assert_eq!(
        r.sessions[1].bfd, None,
        "no bfdProfile: no BFD column value"
    );
    assert_eq!(r.config_errors.len(), 1);
    assert_eq!(r.config_errors[0].object, "broken.yaml:3");

    let table = render::status_table(&r);
    assert!(table.contains("prod"), "{table}");
    assert!(table.contains("shop/web"), "{table}");
    let session = table.lines().find(|l| l.starts_with("node-a")).unwrap();
    assert!(
        session.contains(" Up "),
        "BFD state in the sessions table: {table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render::structured(&r, render::Output::Json).unwrap()).unwrap();
    assert_eq!(json["pools"][1]["ipv4Free"], 0);
    assert_eq!(json["services"][0]["namespace"], "other");
}

#[test]
fn why_explains_every_pool() {
    let inputs = inputs();
    let r = why(&inputs, "other", "api");
    assert!(r.found);
    assert_eq!(r.condition.as_ref().unwrap().reason, "NoPoolAvailable");
    assert_eq!(r.events.len(), 1);
    let verdict = |p: &str| r.pools.iter().find(|v| v.pool == p).unwrap().clone();
    let prod = verdict("prod");
    assert!(!prod.usable);
    assert!(
        prod.reasons
            .iter()
            .any(|x| x.contains("namespace \"other\" is not allowed")),
        "{prod:?}"
    );
    assert!(
        prod.reasons.iter().any(|x| x.contains("exhausted")),
        "{prod:?}"
    );
    let manual = verdict("manual");
    assert!(
        manual
            .reasons
            .iter()
            .any(|x| x.contains("autoAssign is false")),
        "{manual:?}"
    );
    let v6 = verdict("v6only");
    assert_eq!(v6.reasons, ["has no IPv4 addresses"]);

    // A requested address held by another Service.
    let r = why(&inputs, "shop", "fixed");
    let prod = r.pools.iter().find(|v| v.pool == "prod").unwrap();
    assert!(
        prod.reasons
            .iter()
            .any(|x| x.contains("192.0.2.0 is held by Service shop/web")),
        "{prod:?}"
    );
    let manual = r.pools.iter().find(|v| v.pool == "manual").unwrap();
    assert!(
        manual
            .reasons
            .iter()
            .any(|x| x.contains("not in this pool")),
        "{manual:?}"
    );

    // Served: the pool it asked for is usable.
    let r = why(&inputs, "shop", "admin");
    assert!(r.pools.iter().find(|v| v.pool == "manual").unwrap().usable);
    assert!(render::why_text(&r).contains("198.51.100.1"));

    let r = why(&inputs, "shop", "nope");
    assert!(!r.found);
}
