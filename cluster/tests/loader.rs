//! The loader on real files: per-file last good, limits that refuse instead of truncating,
//! unknown fields, state files.

mod common;

use common::{POOL, TempDir, service, services};
use ferrolb_cluster::{Directory, Limits, Metrics, Options};

fn scan(d: &mut Directory) -> std::sync::Arc<ferrolb_cluster::ClusterView> {
    let s = d.scan();
    assert!(!s.unsettled);
    d.view()
}

#[test]
fn a_file_grown_past_the_size_limit_keeps_its_last_good_objects() {
    let dir = TempDir::new("big");
    dir.write("a.yaml", &service("a"));
    dir.write("b.yaml", &service("b"));
    let mut opts = Options::new(dir.path());
    opts.limits.max_file_bytes = 4096;
    let metrics = Metrics::default();
    let mut d = Directory::new(opts, metrics.clone());
    assert_eq!(services(&scan(&mut d)), ["a", "b"]);

    // a.yaml grows past the limit (a Service plus a long comment).
    dir.write(
        "a.yaml",
        &format!("{}# {}\n", service("a2"), "x".repeat(5000)),
    );
    dir.write("b.yaml", &service("b2"));
    let v = scan(&mut d);
    assert_eq!(
        services(&v),
        ["a", "b2"],
        "a.yaml keeps its last good objects; b.yaml applies"
    );
    assert_eq!(v.file_errors.len(), 1);
    let e = &v.file_errors[0];
    assert_eq!(e.file, "a.yaml");
    assert!(e.kept_previous);
    assert!(
        e.to_string().contains("more than the limit of 4096 bytes"),
        "{e}"
    );
    assert_eq!(metrics.file_errors.get(), 1);
    assert!(!v.has_unloaded_files());
    assert!(
        !d.scan().changed,
        "an unchanged refused file is not re-read"
    );

    // Back under the limit: the new version applies.
    dir.write("a.yaml", &service("a3"));
    let v = scan(&mut d);
    assert_eq!(services(&v), ["a3", "b2"]);
    assert!(v.file_errors.is_empty());
}

#[test]
fn bad_yaml_and_invalid_objects_keep_the_last_good_version_and_name_file_and_line() {
    let dir = TempDir::new("bad");
    dir.write("pool.yaml", POOL);
    dir.write("svc.yaml", &service("a"));
    let mut d = Directory::new(Options::new(dir.path()), Metrics::default());
    assert_eq!(scan(&mut d).resources.pools.len(), 1);
    dir.write("pool.yaml", "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [}\n");
    dir.write(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: 7}\n",
    );
    let v = scan(&mut d);
    assert_eq!(v.resources.pools.len(), 1, "last good pool kept");
    assert_eq!(services(&v), ["a"], "last good Service kept");
    let errs: Vec<String> = v.file_errors.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("pool.yaml:4: "), "{errs:?}");
    assert!(errs[1].starts_with("svc.yaml:4: Service \"a\""), "{errs:?}");
    assert!(errs.iter().all(|e| e.ends_with("(last good version kept)")));
}

#[test]
fn a_file_leaves_only_when_it_is_gone() {
    let dir = TempDir::new("gone");
    dir.write("a.yaml", &service("a"));
    dir.write("b.yaml", &service("b"));
    let mut d = Directory::new(Options::new(dir.path()), Metrics::default());
    assert_eq!(services(&scan(&mut d)), ["a", "b"]);
    // Unreadable (permissions do not stop root, so: a directory in its place is "gone";
    // a file that cannot be decoded as UTF-8 is refused).
    std::fs::write(dir.path().join("a.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    let v = scan(&mut d);
    assert_eq!(services(&v), ["a", "b"]);
    assert!(v.file_errors[0].reason.contains("not UTF-8"));
    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let v = scan(&mut d);
    assert_eq!(services(&v), ["b"]);
    assert!(v.file_errors.is_empty());
}

#[test]
fn five_thousand_files_load_and_none_is_dropped() {
    let dir = TempDir::new("many");
    for i in 0..5000 {
        dir.write(&format!("svc-{i:04}.yaml"), &service(&format!("s{i:04}")));
    }
    let mut d = Directory::new(Options::new(dir.path()), Metrics::default());
    let v = scan(&mut d);
    assert_eq!(v.resources.services.len(), 5000);
    assert!(v.file_errors.is_empty(), "{:?}", &v.file_errors[..1]);
    let generation = v.generation;
    std::fs::remove_file(dir.path().join("svc-4999.yaml")).unwrap();
    let v = scan(&mut d);
    assert_eq!(v.resources.services.len(), 4999);
    assert_eq!(v.generation, generation + 1);
}

#[test]
fn more_files_than_the_limit_refuse_the_new_state_as_a_whole() {
    let dir = TempDir::new("limit");
    for i in 0..10 {
        dir.write(&format!("s{i}.yaml"), &service(&format!("s{i}")));
    }
    let mut opts = Options::new(dir.path());
    opts.limits = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let mut d = Directory::new(opts, Metrics::default());
    assert_eq!(scan(&mut d).resources.services.len(), 10);
    dir.write("s10.yaml", &service("s10"));
    let v = scan(&mut d);
    assert_eq!(services(&v).len(), 10, "nothing applied, nothing dropped");
    assert!(!services(&v).contains(&"s10".to_string()));
    assert_eq!(
        v.file_errors[0].to_string(),
        ".: 11 manifest files, more than the limit of 10: the new state of the directory is refused (last good version kept)"
    );
    std::fs::remove_file(dir.path().join("s0.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("s1.yaml")).unwrap();
    let v = scan(&mut d);
    assert!(v.file_errors.is_empty());
    assert_eq!(services(&v).len(), 9);
    assert!(services(&v).contains(&"s10".to_string()));
}

#[test]
fn unknown_fields_are_reported_with_did_you_mean() {
    let dir = TempDir::new("typo");
    dir.write(
        "pool.yaml",
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: prod, namespace: ferrolb-system}\nspec:\n  addresses: [192.0.2.0/28]\n  autoAsign: false\n",
    );
    let metrics = Metrics::default();
    let mut d = Directory::new(Options::new(dir.path()), metrics.clone());
    let v = scan(&mut d);
    assert_eq!(v.resources.pools.len(), 1, "the document still loads");
    assert_eq!(
        v.unknown_fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "pool.yaml:1: IPAddressPool \"prod\": unknown field spec.autoAsign (ignored); did you mean spec.autoAssign?"
        ]
    );
    assert_eq!(metrics.unknown_fields.get(), 1);
}

#[test]
fn too_many_objects_in_one_file_keep_its_last_good_version() {
    let dir = TempDir::new("objs");
    dir.write("a.yaml", &service("a"));
    let mut opts = Options::new(dir.path());
    opts.limits.parse.max_objects = 2;
    let mut d = Directory::new(opts, Metrics::default());
    assert_eq!(services(&scan(&mut d)), ["a"]);
    dir.write(
        "a.yaml",
        &[service("x"), service("y"), service("z")].join("---\n"),
    );
    let v = scan(&mut d);
    assert_eq!(services(&v), ["a"]);
    assert_eq!(
        v.file_errors[0].to_string(),
        "a.yaml: 3 objects, more than the limit of 2 per file (last good version kept)"
    );
}

#[test]
fn speakers_read_the_status_and_the_other_speakers_but_not_their_own_file() {
    let dir = TempDir::new("state");
    std::fs::create_dir_all(dir.path().join(".ferrolb")).unwrap();
    dir.write(".ferrolb/status.yaml", "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 192.0.2.200\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n");
    let state = |n: &str| {
        format!(
            "apiVersion: ferrolb.io/v1alpha1\nkind: SpeakerState\nmetadata: {{name: {n}}}\nspec: {{nodeName: {n}}}\n"
        )
    };
    dir.write(".ferrolb/speaker-n1.yaml", &state("n1"));
    dir.write(".ferrolb/speaker-n2.yaml", &state("n2"));
    let mut d = Directory::new(Options::speaker(dir.path(), "n1"), Metrics::default());
    let v = scan(&mut d);
    let st = v.controller_status.as_ref().unwrap();
    assert_eq!(st.services[0].name, "web");
    assert_eq!(v.speakers.keys().collect::<Vec<_>>(), ["n2"]);
    // A broken status keeps the last good one.
    dir.write(".ferrolb/status.yaml", "services: [");
    let v = scan(&mut d);
    assert_eq!(v.controller_status.as_ref().unwrap().services.len(), 1);
    assert_eq!(v.file_errors[0].file, ".ferrolb/status.yaml");
    assert!(!v.has_unloaded_files(), "state files are not manifests");
    // The controller does not read them.
    let mut c = Directory::new(Options::new(dir.path()), Metrics::default());
    assert!(scan(&mut c).controller_status.is_none());
}
