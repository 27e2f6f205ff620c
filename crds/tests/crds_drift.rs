//! The committed `examples/manifests/crds.yaml` must be exactly what `crdgen` prints.
//! Regenerate with `cargo run -p ferrolb-crds --bin crdgen > examples/manifests/crds.yaml`
//! (`install.yaml` is rendered from `deploy/` and checked in tests/tests/deploy.rs).

use std::path::Path;

#[track_caller]
fn assert_fresh(file: &str, generated: &str, command: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/manifests")
        .join(file);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "{} is stale (first difference at {line}); run `{command} > examples/manifests/{file}`",
            path.display()
        );
    }
}

#[test]
fn committed_crds_yaml_matches_the_code() {
    assert_fresh(
        "crds.yaml",
        &ferrolb_crds::crds_yaml(),
        "cargo run -p ferrolb-crds --bin crdgen",
    );
}

#[test]
fn every_kind_has_status_short_names_and_printer_columns() {
    for crd in ferrolb_crds::v1alpha1::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(crd.spec.group, "ferrolb.io", "{name}");
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}"
        );
        assert!(
            v.additional_printer_columns
                .as_ref()
                .is_some_and(|c| !c.is_empty()),
            "{name}"
        );
    }
}

#[test]
fn cel_rules_are_in_the_schema() {
    let yaml = ferrolb_crds::crds_yaml();
    for rule in [
        "!(has(self.peerASN) && has(self.dynamicASN))",
        "duration(self) >= duration('3s')",
        "duration(self) <= duration('65535s')",
        "duration(self.keepaliveTime) < duration(self.holdTime)",
        "isIP(self)",
        "isCIDR(self.trim())",
        "message: range start after end",
        "message: range mixes families",
        "int(self.split(':')[0]) <= 65535",
    ] {
        assert!(yaml.contains(rule), "missing CEL rule {rule}");
    }
}
