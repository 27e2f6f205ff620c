//! Unit tests of the YAML loader.

use super::*;

const STREAM: &str = "\
# leading comment
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata:
  name: a
spec:
  addresses: [192.0.2.0/28]
---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata:
  name: bad
spec:
  myASN: not-a-number
  peerAddress: 192.0.2.1
";

#[test]
fn loads_known_kinds_and_reports_bad_documents_with_lines() {
    let loaded = load_str("test.yaml", STREAM);
    assert_eq!(loaded.resources.pools.len(), 1);
    assert_eq!(
        loaded.resources.pools[0].spec.addresses,
        vec!["192.0.2.0/28".to_string()]
    );
    assert_eq!(loaded.resources.services.len(), 1);
    assert_eq!(loaded.ignored.len(), 1);
    assert_eq!(loaded.ignored[0].kind, "Deployment");
    assert_eq!(loaded.ignored[0].line, 18);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    match &loaded.errors[0] {
        Error::Yaml {
            file, line, what, ..
        } => {
            assert_eq!(file, "test.yaml");
            assert_eq!(*line, 27, "line of `myASN: not-a-number`");
            assert_eq!(what, "BGPPeer \"bad\"");
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn document_without_kind_is_an_error() {
    let loaded = load_str("x.yaml", "---\nfoo: bar\n");
    assert!(matches!(
        &loaded.errors[..],
        [Error::Object { line: 2, .. }]
    ));
}

#[test]
fn unknown_fields_are_reported_and_the_document_still_loads() {
    let text = "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ferrolb-system}\nspec:\n  addresses: [192.0.2.0/28]\n  autoAsign: false\n  interfaces: []\n  serviceAllocation: {priority: 1, bogus: x}\n";
    let loaded = load_str("p.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.resources.pools.len(), 1);
    let paths: Vec<&str> = loaded
        .unknown_fields
        .iter()
        .map(|u| u.path.as_str())
        .collect();
    assert_eq!(paths, ["spec.autoAsign", "spec.serviceAllocation.bogus"]);
    assert_eq!(
        loaded.unknown_fields[0].to_string(),
        "p.yaml:1: IPAddressPool \"p\": unknown field spec.autoAsign (ignored); did you mean spec.autoAssign?"
    );
}

#[test]
fn metallb_documents_load_as_ferrolb_kinds() {
    let text = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor, namespace: metallb-system}\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: red\n  disableMP: true\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/28]}\n";
    let loaded = load_str("m.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(
        (
            loaded.resources.bgp_peers.len(),
            loaded.resources.pools.len()
        ),
        (1, 1)
    );
    assert_eq!(loaded.unknown_fields.len(), 1);
    assert_eq!(loaded.unknown_fields[0].path, "spec.disableMP");
    assert_eq!(
        loaded.resources.bgp_peers[0].spec.vrf.as_deref(),
        Some("red")
    );
    // Core kinds round-trip without false positives.
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d, annotations: {a: b}}\nspec:\n  type: LoadBalancer\n  ports: [{port: 80, targetPort: http, protocol: TCP}]\n  selector: {app: x}\n";
    let loaded = load_str("s.yaml", svc);
    assert!(
        loaded.unknown_fields.is_empty(),
        "{:?}",
        loaded.unknown_fields
    );
}

#[test]
fn lists_from_kubectl_are_unpacked() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: a, namespace: metallb-system}\n  spec: {addresses: [192.0.2.0/28]}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: d}\n  spec: {type: LoadBalancer}\nmetadata: {resourceVersion: \"\"}\n";
    let loaded = load_str("l.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.resources.pools.len(), 1);
    assert_eq!(loaded.resources.services.len(), 1);
}

#[test]
fn misspelled_fields_get_a_did_you_mean_in_every_kind() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d}\nspec:\n  type: LoadBalancer\n  ports: [{port: 80, protocl: TCP}]\n  externalTraficPolicy: Local\n";
    let loaded = load_str("s.yaml", text);
    let got: Vec<(&str, Option<&str>)> = loaded
        .unknown_fields
        .iter()
        .map(|u| (u.path.as_str(), u.suggestion.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "spec.externalTraficPolicy",
                Some("spec.externalTrafficPolicy")
            ),
            ("spec.ports[0].protocl", Some("spec.ports[0].protocol")),
        ]
    );
}

/// A "billion laughs" document: ten levels of ten aliases each.
pub(crate) fn alias_bomb() -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s
}

#[test]
fn alias_expansion_is_bounded_with_an_error_naming_the_limits() {
    let loaded = load_str("bomb.yaml", &alias_bomb());
    assert!(loaded.resources.services.is_empty());
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let msg = loaded.errors[0].to_string();
    assert!(msg.contains("bomb.yaml"), "{msg}");
    assert!(msg.contains("events replayed by aliases"), "{msg}");
}

#[test]
fn nesting_depth_is_bounded() {
    let deep = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {{x: {}1{}}}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let loaded = load_str("deep.yaml", &deep);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    assert!(
        loaded.errors[0].to_string().contains("depth 32"),
        "{}",
        loaded.errors[0]
    );
}

#[test]
fn too_many_objects_refuse_the_whole_text() {
    let doc = "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\n";
    let limits = ParseLimits {
        max_objects: 3,
        ..ParseLimits::default()
    };
    assert_eq!(
        load_str_with("n.yaml", &doc.repeat(3), &limits)
            .resources
            .namespaces
            .len(),
        3
    );
    let loaded = load_str_with("n.yaml", &doc.repeat(4), &limits);
    assert!(loaded.resources.namespaces.is_empty());
    assert_eq!(
        loaded.errors[0].to_string(),
        "n.yaml: 4 objects, more than the limit of 3"
    );
}
