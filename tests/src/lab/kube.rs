//! Kubernetes mode of the lab: the same namespaces, router and backends, with the controller
//! and the speakers talking to a real API server ([`KubeEnv`]) as the ServiceAccounts of
//! install.yaml, through the harness's relay inside their network namespaces. The test
//! creates Nodes, EndpointSlices and speaker Pods through the API (there is no kubelet).
//! Each binary's output goes to a log file ([`Lab::log`]), so nothing blocks on a full pipe.

use std::path::PathBuf;
use std::process::Command;

use super::{Lab, NODE_NAMES, bin, node_ip};
use crate::kube_env::{CONTROLLER_SA, KubeEnv, SPEAKER_SA, SYSTEM_NAMESPACE};
use crate::netns::{Netns, Proc};

/// Starts `program args` in `ns` with `env`, stdout and stderr appended to `log`. The
/// process's PID is the program's own (`ip netns exec` and `sh` both exec).
fn spawn_logged(
    ns: &Netns,
    log: &PathBuf,
    env: &[(&str, &str)],
    program: &str,
    args: &[&str],
) -> Proc {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name(), "env"]);
    cmd.args(env.iter().map(|(k, v)| format!("{k}={v}")));
    cmd.args([
        "sh",
        "-c",
        r#"log="$1"; shift; exec "$@" >>"$log" 2>&1"#,
        "sh",
    ]);
    cmd.arg(log).arg(program).args(args);
    ns.spawn_with(&mut cmd)
}

/// The speaker binary: `$FERROLB_SPEAKER_BIN` when set (benchmarks use a release build),
/// else the workspace's debug build.
fn speaker_program() -> String {
    std::env::var("FERROLB_SPEAKER_BIN")
        .unwrap_or_else(|_| bin("ferrolb-speaker").to_string_lossy().into_owned())
}

impl Lab {
    /// Where the output of `who` (`controller`, `n1`, ...) goes.
    pub fn log_path(&self, who: &str) -> PathBuf {
        self.manifests.path().join(format!("{who}.log"))
    }

    /// The output of `who` so far (empty if it never ran).
    pub fn log(&self, who: &str) -> String {
        std::fs::read_to_string(self.log_path(who)).unwrap_or_default()
    }

    /// Starts the controller in its namespace, as the controller ServiceAccount.
    pub fn start_controller_kube(&mut self, env: &KubeEnv) {
        let kubeconfig = env.kubeconfig_in_netns(self.ctl.name(), SYSTEM_NAMESPACE, CONTROLLER_SA);
        let p = spawn_logged(
            &self.ctl,
            &self.log_path("controller"),
            &[("POD_NAME", "ferrolb-controller-0")],
            bin("ferrolb-controller").to_str().unwrap(),
            &[
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--namespace",
                SYSTEM_NAMESPACE,
                "--metrics-addr",
                "127.0.0.1:7472",
            ],
        );
        self.controller = Some(p);
    }

    /// Starts the speaker of node `i` as the speaker ServiceAccount, with membership between
    /// the three nodes (static seeds, the lab's key), its namespace from `POD_NAMESPACE` as
    /// install.yaml sets it, and `extra` arguments (e.g. `--state-heartbeat`).
    pub fn start_speaker_kube(&mut self, i: usize, env: &KubeEnv, extra: &[&str]) {
        let ns = &self.nodes[i];
        let kubeconfig = env.kubeconfig_in_netns(ns.name(), SYSTEM_NAMESPACE, SPEAKER_SA);
        let seeds: Vec<String> = (0..NODE_NAMES.len())
            .map(|j| format!("{}:7946", node_ip(j)))
            .collect();
        let (bind, metrics, seeds) = (
            format!("{}:7946", node_ip(i)),
            format!("{}:7473", node_ip(i)),
            seeds.join(","),
        );
        let key = self.key.path().join("members.key");
        let mut args = vec![
            "--node",
            NODE_NAMES[i],
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--members-bind",
            &bind,
            "--members-seeds",
            &seeds,
            "--members-key-file",
            key.to_str().unwrap(),
            "--metrics-addr",
            &metrics,
        ];
        args.extend_from_slice(extra);
        let p = spawn_logged(
            ns,
            &self.log_path(NODE_NAMES[i]),
            &[("POD_NAMESPACE", SYSTEM_NAMESPACE)],
            &speaker_program(),
            &args,
        );
        self.speakers.insert(NODE_NAMES[i].to_string(), p);
    }

    /// [`Lab::diag`] plus the tails of every binary's log.
    pub fn diag_kube(&mut self) -> String {
        let mut s = self.diag();
        for who in ["controller", "n1", "n2", "n3"] {
            let log = self.log(who);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            for panic in log.lines().filter(|l| l.contains("panicked at")).take(3) {
                s.push_str(&format!("\n--- {who} PANIC: {panic}"));
            }
            s.push_str(&format!("\n--- {who} (last lines)\n"));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}
