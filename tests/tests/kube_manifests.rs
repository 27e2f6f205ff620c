//! The manifests on a real kube-apiserver: every CRD and `examples/manifests/install.yaml` is
//! accepted by server-side apply, and every file under `examples/` by a server-side dry run
//! (schema, CEL rules and admission all run).

use std::path::{Path, PathBuf};

use ferrolb_tests::kube_env::KubeEnv;
use ferrolb_tests::kube_env::manifests::Applied;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    ferrolb_crds::yaml::collect_yaml_files(dir, &mut files).expect("examples/ is readable");
    // kustomization.yaml is kustomize's own config (deploy/base loads the CRDs through it),
    // not an object for the API server; tests/tests/deploy_apiserver.rs applies deploy/.
    files.retain(|f| f.file_name().is_none_or(|n| n != "kustomization.yaml"));
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
    for name in ["crds.yaml", "install.yaml"] {
        let file = ferrolb_tests::kube_env::repo_root()
            .join("examples/manifests")
            .join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        // Applied again on top of the harness's own install: same manager, no conflict.
        let applied = env.apply_yaml(&text, "default", false);
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
        let applied = env.apply_yaml(&text, "default", true);
        all_accepted(&file, &applied);
    }
}

#[path = "../../crds/tests/cases/mod.rs"]
mod cases;

/// Every case of the table shared with the config tests: the API server accepts the valid
/// ones and rejects the invalid ones with a message naming the field (no CEL run-time error).
#[test]
fn schema_and_cel_agree_with_the_config_cases() {
    if !KubeEnv::available("schema_and_cel_agree_with_the_config_cases") {
        return;
    }
    let env = KubeEnv::shared();
    let ns = env.new_namespace("cel");
    let results: Vec<Applied> = cases::CASES
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let doc = cases::document(c, &format!("c{i}"), &ns);
            env.apply_yaml(&doc, "default", true).remove(0)
        })
        .collect();
    let mut failures = Vec::new();
    for (i, (case, applied)) in cases::CASES.iter().zip(results).enumerate() {
        match (case.invalid, applied.result) {
            (None, Ok(_)) => {}
            (None, Err(e)) => failures.push(format!(
                "case {i} {} {:?}: rejected: {e}",
                case.kind, case.spec
            )),
            (Some(_), Ok(_)) => {
                failures.push(format!("case {i} {} {:?}: accepted", case.kind, case.spec))
            }
            (Some((field, _)), Err(e)) => {
                let runtime = e.contains("runtime error")
                    || e.contains("no such overload")
                    || e.contains("compilation");
                if !e.contains(field) || runtime {
                    failures.push(format!(
                        "case {i} {} {:?}: message lacks {field} or is a CEL error: {e}",
                        case.kind, case.spec
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The AUTO ASSIGN printer column reads `.spec.autoAssign`: the schema's default fills it in,
/// so the column shows `true` for a pool that does not set it.
#[test]
fn pool_auto_assign_defaults_to_true_on_the_server() {
    if !KubeEnv::available("pool_auto_assign_defaults_to_true_on_the_server") {
        return;
    }
    let env = KubeEnv::shared();
    let ns = env.new_namespace("autoassign");
    let doc = format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n  addresses: [192.0.2.0/28]\n"
    );
    let applied = env.apply_yaml(&doc, "default", false).remove(0);
    let obj = applied.result.expect("pool accepted");
    assert_eq!(
        obj.data["spec"]["autoAssign"],
        serde_json::json!(true),
        "{:?}",
        obj.data
    );
}
