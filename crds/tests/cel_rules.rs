//! The CEL rules (`x-kubernetes-validations`) in the CRDs, evaluated client-side with
//! kube-core's CEL support: each rule compiles and rejects what it should, and valid examples
//! pass. This guards against a rule typo that would make the API server reject the CRD or
//! every object.

mod cases;

use ferrolb_crds::v1alpha1::{BGPPeer, IPAddressPool};

fn peer(spec: &str) -> BGPPeer {
    let yaml = format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: p, namespace: ferrolb-system}}\nspec:\n{spec}"
    );
    serde_saphyr::from_str(&yaml).expect("fixture parses")
}

fn pool(addresses: &str) -> IPAddressPool {
    let yaml = format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {{name: p, namespace: ferrolb-system}}\nspec:\n  addresses: {addresses}\n"
    );
    serde_saphyr::from_str(&yaml).expect("fixture parses")
}

const BASE: &str = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n";

#[track_caller]
fn rejects(obj: &BGPPeer, message: &str) {
    match kube_core::cel::validate_cel(obj) {
        Ok(()) => panic!("CEL accepted {:?}", obj.spec),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(text.contains(message), "want {message:?} in {text}");
        }
    }
}

#[test]
fn valid_peers_pass() {
    for spec in [
        BASE.to_string(),
        format!("{BASE}  holdTime: 90s\n  keepaliveTime: 30s\n  connectTime: 10s\n"),
        format!("{BASE}  holdTime: \"0\"\n"),
        format!(
            "{BASE}  routerID: 192.0.2.200\n  sourceAddress: 192.0.2.2\n  ebgpMultiHop: true\n"
        ),
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 2001:db8::1\n".to_string(),
    ] {
        let p = peer(&spec);
        if let Err(e) = kube_core::cel::validate_cel(&p) {
            panic!("CEL rejected valid spec {spec}: {e:?}");
        }
    }
}

#[test]
fn peer_rules_reject() {
    rejects(
        &peer(&format!("{BASE}  holdTime: 2s\n")),
        "hold time must be 0 or at least 3s",
    );
    rejects(
        &peer(&format!("{BASE}  holdTime: 9s\n  keepaliveTime: 9s\n")),
        "less than holdTime",
    );
    rejects(
        &peer(&format!("{BASE}  dynamicASN: external\n")),
        "peerASN and dynamicASN are mutually exclusive",
    );
    rejects(
        &peer("  myASN: 64512\n  peerAddress: 192.0.2.1\n"),
        "one of peerASN and dynamicASN is required",
    );
    rejects(
        &peer(&format!(
            "{BASE}  password: x\n  passwordSecret: {{name: s}}\n"
        )),
        "mutually exclusive",
    );
    rejects(
        &peer("  myASN: 64512\n  peerASN: 64512\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n"),
        "ebgpMultiHop applies only to eBGP",
    );
    rejects(
        &peer(
            "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 192.0.2.1\n  ebgpMultiHop: true\n",
        ),
        ferrolb_crds::config::EBGP_MULTIHOP_MESSAGE,
    );
    rejects(
        &peer("  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.300\n"),
        "peerAddress must be an IP address",
    );
    rejects(
        &peer(&format!("{BASE}  routerID: 2001:db8::1\n")),
        "routerID must be an IPv4",
    );
    rejects(
        &peer(&format!("{BASE}  connectTime: 1500ms\n")),
        "connectTime must be whole seconds",
    );
    for timers in [
        "  holdTime: 3s\n  keepaliveTime: 500ms\n",
        "  holdTime: 90s\n  keepaliveTime: 0s\n",
        "  holdTime: 0s\n  keepaliveTime: 10s\n",
        "  keepaliveTime: 21846s\n",
    ] {
        rejects(&peer(&format!("{BASE}{timers}")), "less than holdTime");
    }
}

/// The valid BGPPeer cases of the shared table (`cases/mod.rs`) pass the CEL rules here too,
/// before any API server sees them.
#[test]
fn valid_peer_cases_pass() {
    for (i, case) in cases::CASES.iter().enumerate() {
        if case.kind != "BGPPeer" || case.invalid.is_some() {
            continue;
        }
        let doc = cases::document(case, &format!("c{i}"), "ferrolb-system");
        let p: BGPPeer = serde_saphyr::from_str(&doc).expect("case parses");
        if let Err(e) = kube_core::cel::validate_cel(&p) {
            panic!("CEL rejected case {i} {:?}: {e:?}", case.spec);
        }
    }
}

#[test]
fn pool_address_rule() {
    let ok = pool("[192.0.2.0/28, \"198.51.100.1 - 198.51.100.9\", \"2001:db8::/120\"]");
    if let Err(e) = kube_core::cel::validate_cel(&ok) {
        panic!("CEL rejected a valid pool: {e:?}");
    }
    for bad in [
        "[banana]",
        "[192.0.2.7]",
        "[\"192.0.2.1-banana\"]",
        "[192.0.2.0/33]",
    ] {
        assert!(
            kube_core::cel::validate_cel(&pool(bad)).is_err(),
            "CEL accepted addresses {bad}"
        );
    }
}

#[test]
fn bgp_advertisement_service_selectors_need_default_aggregation() {
    use ferrolb_crds::v1alpha1::BGPAdvertisement;
    let ad = |spec: &str| -> BGPAdvertisement {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\nmetadata: {{name: a, namespace: ferrolb-system}}\nspec:\n{spec}"
        );
        serde_saphyr::from_str(&yaml).expect("fixture parses")
    };
    let with_selectors = "  serviceSelectors: [{matchLabels: {app: web}}]\n";
    assert!(kube_core::cel::validate_cel(&ad(with_selectors)).is_ok());
    assert!(kube_core::cel::validate_cel(&ad("  aggregationLength: 24\n")).is_ok());
    let bad = ad(&format!("{with_selectors}  aggregationLength: 24\n"));
    let err = kube_core::cel::validate_cel(&bad).expect_err("CEL accepted selectors + aggregation");
    assert!(format!("{err:?}").contains("serviceSelectors cannot be combined"));
}

/// The API server would reject an example that breaks a CEL rule: check them all.
#[test]
fn every_example_passes_the_cel_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let loaded = ferrolb_crds::yaml::load_dir(&dir);
    let r = &loaded.resources;
    assert!(
        r.custom_resource_count() >= 15,
        "examples not found in {}",
        dir.display()
    );
    fn check<T: kube_core::CustomResourceExt + serde::Serialize>(objs: &[T]) {
        for o in objs {
            if let Err(e) = kube_core::cel::validate_cel(o) {
                panic!("{}: {e:?}", serde_json::to_string(o).unwrap_or_default());
            }
        }
    }
    check(&r.pools);
    check(&r.l2_advertisements);
    check(&r.bgp_advertisements);
    check(&r.bgp_peers);
    check(&r.communities);
    check(&r.bfd_profiles);
}

/// BFDProfile authentication: the schema takes the two SHA1 types and a key ID of 0..255.
#[test]
fn bfd_profile_authentication_schema() {
    use ferrolb_crds::v1alpha1::BFDProfile;
    let profile = |auth: &str| -> Result<BFDProfile, String> {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1alpha1\nkind: BFDProfile\nmetadata: {{name: b, namespace: ferrolb-system}}\nspec:\n  authentication: {auth}\n"
        );
        serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())
    };
    for t in ["MeticulousKeyedSHA1", "KeyedSHA1"] {
        let p = profile(&format!(
            "{{type: {t}, keyID: 1, passwordSecret: {{name: k}}}}"
        ))
        .expect("valid");
        assert!(kube_core::cel::validate_cel(&p).is_ok());
    }
    for bad in [
        "{type: KeyedMD5, keyID: 1, passwordSecret: {name: k}}",
        "{type: KeyedSHA1, passwordSecret: {name: k}}",
        "{type: KeyedSHA1, keyID: 1}",
    ] {
        assert!(profile(bad).is_err(), "accepted {bad}");
    }
    let crd = serde_json::to_value(<BFDProfile as kube_core::CustomResourceExt>::crd()).unwrap();
    let auth = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["authentication"];
    assert_eq!(
        auth["properties"]["keyID"]["maximum"].as_f64(),
        Some(255.0),
        "{auth}"
    );
    assert_eq!(
        auth["properties"]["type"]["enum"],
        serde_json::json!(["MeticulousKeyedSHA1", "KeyedSHA1"]),
        "{auth}"
    );
    let mut required: Vec<_> = auth["required"].as_array().unwrap().clone();
    required.sort_by_key(|v| v.to_string());
    assert_eq!(
        required,
        [
            serde_json::json!("keyID"),
            serde_json::json!("passwordSecret"),
            serde_json::json!("type")
        ]
    );
}
