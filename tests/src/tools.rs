//! External tools some tests drive (kubectl, promtool, podman): a test skips with the reason
//! when one is missing, except under `CI=true`, where a missing tool is a failure (CI installs
//! them with scripts/install-deps.sh, so a skip there would hide a broken set-up).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// True when `tool` is on PATH. Otherwise panics under `CI=true`, else prints why `test`
/// skips and returns false.
pub fn require_tool(test: &str, tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: `{tool}` is not installed and CI=true (scripts/install-deps.sh installs it)"
        );
    }
    eprintln!("skipping {test}: `{tool}` is not installed (scripts/install-deps.sh installs it)");
    false
}

/// `kubectl kustomize DIR` (DIR relative to the workspace root); panics with kubectl's error.
pub fn kustomize(dir: &str) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(workspace_root())
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl prints UTF-8")
}

/// The documents of `kind` in a multi-document YAML stream.
pub fn docs_of<'a>(text: &'a str, kind: &str) -> Vec<&'a str> {
    let line = format!("kind: {kind}");
    ferrolb_crds::yaml::split_documents(text)
        .into_iter()
        .map(|d| d.text)
        .filter(|d| d.lines().any(|l| l == line))
        .collect()
}

/// The one document of `kind` in `text`, typed.
pub fn one_of<T: serde::de::DeserializeOwned>(text: &str, kind: &str) -> T {
    let docs = docs_of(text, kind);
    assert_eq!(docs.len(), 1, "want exactly one {kind}");
    serde_saphyr::from_str(docs[0]).unwrap_or_else(|e| panic!("{kind}: {e}"))
}
