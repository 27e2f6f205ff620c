//! External tools some tests drive (kubectl, promtool, podman): a test skips with the reason
//! when one is missing, except under `CI=true`, where a missing tool is a failure (CI installs
//! them with scripts/install-deps.sh, so a skip there would hide a broken set-up).

use std::path::{Path, PathBuf};

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
