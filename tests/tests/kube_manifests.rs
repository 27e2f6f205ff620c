//! The manifests on a real kube-apiserver: every CRD and `examples/manifests/install.yaml` is
//! accepted by server-side apply, and every file under `examples/` by a server-side dry run
//! (schema, CEL rules and admission all run).

use std::path::{Path, PathBuf};

use ferrolb_tests::kube_env::KubeEnv;
use ferrolb_tests::kube_env::manifests::{Applied, apply_yaml};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    ferrolb_crds::yaml::collect_yaml_files(dir, &mut files).expect("examples/ is readable");
    files.sort();
    files
}

#[track_caller]
fn all_accepted(file: &Path, applied: &[Applied]) {
    assert!(!applied.is_empty(), "{}: no documents", file.display());
    let failed: Vec<String> = applied
        .iter()
        .filter_map(|a| a.result.as_ref().err().map(|e| format!("{}: {e}", a.what)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} rejected:\n{}",
        file.display(),
        failed.join("\n")
    );
}

#[test]
fn crds_and_install_manifest_apply_server_side() {
    if !KubeEnv::available("crds_and_install_manifest_apply_server_side") {
        return;
    }
    // A private server: applying CRDs and cluster RBAC is not namespaced.
    let env = KubeEnv::start();
    let admin = env.admin_config();
    for name in ["crds.yaml", "install.yaml"] {
        let file = ferrolb_tests::kube_env::repo_root()
            .join("examples/manifests")
            .join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        let admin = admin.clone();
        // Applied again on top of the harness's own install: same manager, no conflict.
        let applied = env.block(async move {
            let client = kube::Client::try_from(admin).unwrap();
            apply_yaml(&client, &text, "default", false).await
        });
        all_accepted(&file, &applied);
        let kinds: Vec<&str> = applied.iter().map(|a| a.what.as_str()).collect();
        if name == "install.yaml" {
            for want in [
                "Namespace ferrolb-system",
                "ServiceAccount ferrolb-system/ferrolb-speaker",
                "DaemonSet ferrolb-system/ferrolb-speaker",
                "Deployment ferrolb-system/ferrolb-controller",
            ] {
                assert!(
                    kinds.iter().any(|k| k.starts_with(want)),
                    "{want} not in {kinds:?}"
                );
            }
        }
    }
    assert!(env.forbidden_requests().is_empty());
}

#[test]
fn every_example_passes_a_server_side_dry_run() {
    if !KubeEnv::available("every_example_passes_a_server_side_dry_run") {
        return;
    }
    let env = KubeEnv::shared();
    let files = yaml_files(&ferrolb_tests::kube_env::repo_root().join("examples"));
    assert!(files.len() >= 7, "examples not found: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // A dry run persists nothing, so the namespaces the examples use must exist already.
        for doc in ferrolb_crds::yaml::split_documents(&text) {
            let v: serde_json::Value = serde_saphyr::from_str(doc.text).unwrap();
            if let Some(ns) = v["metadata"]["namespace"].as_str() {
                env.ensure_namespace(ns);
            }
        }
        let admin = env.admin_config();
        let applied = env.block(async move {
            let client = kube::Client::try_from(admin).unwrap();
            apply_yaml(&client, &text, "default", true).await
        });
        all_accepted(&file, &applied);
    }
}
