//! Runs the plugin binary as an operator would.

use std::process::Command;

/// `kubectl-ferrolb ARGS` with extra environment; its stdout (panics on failure).
pub fn plugin(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-ferrolb"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
