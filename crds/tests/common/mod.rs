//! Helpers shared by the config tests: resources from YAML, and exact error assertions.
#![allow(dead_code)]

use ferrolb_crds::config::{ConfigError, ConfigOutcome, Kind};
use ferrolb_crds::{ClusterResources, Config};

/// Loads YAML that must be well-formed (the tests are about validation, not parsing).
pub fn res(yaml: &str) -> ClusterResources {
    let loaded = ferrolb_crds::yaml::load_str("test.yaml", yaml);
    assert!(
        loaded.errors.is_empty(),
        "fixture does not load: {:?}",
        loaded.errors
    );
    assert!(
        loaded.ignored.is_empty(),
        "fixture has unknown kinds: {:?}",
        loaded.ignored
    );
    assert!(
        loaded.unknown_fields.is_empty(),
        "fixture has typos: {:?}",
        loaded.unknown_fields
    );
    loaded.resources
}

pub fn build(yaml: &str) -> ConfigOutcome {
    Config::build(&res(yaml), None)
}

/// Asserts there is exactly one error and it is about `kind` `name` (namespace
/// `ferrolb-system`) at `field`, with `value`, and a message containing `msg`; returns it.
#[track_caller]
pub fn one_error<'a>(
    out: &'a ConfigOutcome,
    kind: Kind,
    name: &str,
    field: &str,
    value: Option<&str>,
    msg: &str,
) -> &'a ConfigError {
    assert_eq!(
        out.errors.len(),
        1,
        "want exactly one error, got: {:#?}",
        out.errors
    );
    let e = &out.errors[0];
    assert_eq!(e.object.kind, kind, "{e}");
    assert_eq!(e.object.namespace, "ferrolb-system", "{e}");
    assert_eq!(e.object.name, name, "{e}");
    assert_eq!(e.field, field, "{e}");
    assert_eq!(e.value.as_deref(), value, "{e}");
    assert!(e.message.contains(msg), "message of {e} lacks {msg:?}");
    e
}

#[track_caller]
pub fn no_errors(out: &ConfigOutcome) {
    assert!(
        out.errors.is_empty(),
        "unexpected errors: {:#?}",
        out.errors
    );
}

/// A pool document.
pub fn pool(name: &str, addresses: &[&str]) -> String {
    let list: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "---\napiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec:\n  addresses: [{}]\n",
        list.join(", ")
    )
}

/// A BGP peer document with extra spec lines (indented by two spaces).
pub fn peer(name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec:\n{extra}"
    )
}

/// Any kind with a spec given as YAML lines (indented by two spaces).
pub fn obj(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: ferrolb.io/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec:\n{spec}"
    )
}
