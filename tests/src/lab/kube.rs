//! Kubernetes mode of the lab: the same namespaces, router and backends, with the controller
//! and the speakers talking to a real API server ([`KubeEnv`]) as the ServiceAccounts of
//! install.yaml, through the harness's relay inside their network namespaces. The test
//! creates Nodes, EndpointSlices and speaker Pods through the API (there is no kubelet).
//! Each binary's output goes to a log file ([`Lab::log`]), so nothing blocks on a full pipe.

use super::{Lab, NODE_NAMES, member_args};
use crate::kube_env::{CONTROLLER_SA, KubeEnv, SPEAKER_SA, SYSTEM_NAMESPACE};

/// The speaker binary: `$FERROLB_SPEAKER_BIN` when set (benchmarks use a release build),
/// else the workspace's debug build.
fn speaker_program(lab: &Lab) -> String {
    std::env::var("FERROLB_SPEAKER_BIN").unwrap_or_else(|_| {
        lab.program("ferrolb-speaker")
            .to_string_lossy()
            .into_owned()
    })
}

impl Lab {
    /// Starts the controller in its namespace, as the controller ServiceAccount.
    pub fn start_controller_kube(&mut self, env: &KubeEnv) {
        let kubeconfig = env.kubeconfig_in_netns(self.ctl.name(), SYSTEM_NAMESPACE, CONTROLLER_SA);
        let p = self.ctl.spawn_logged(
            &self.log_path("controller"),
            &[("POD_NAME", "ferrolb-controller-0")],
            self.program("ferrolb-controller").to_str().unwrap(),
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
        let mut args: Vec<String> = ["--node", NODE_NAMES[i], "--kubeconfig"]
            .map(String::from)
            .to_vec();
        args.push(kubeconfig.to_str().unwrap().to_string());
        args.extend(member_args(i, self.work.path()));
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let p = ns.spawn_logged(
            &self.log_path(NODE_NAMES[i]),
            &[("POD_NAMESPACE", SYSTEM_NAMESPACE)],
            &speaker_program(self),
            &args,
        );
        self.speakers.insert(NODE_NAMES[i].to_string(), p);
    }

    /// [`Lab::diag`] plus the tails of every binary's log.
    pub fn diag_kube(&mut self) -> String {
        let mut s = self.diag();
        for who in ["controller", "n1", "n2", "n3"] {
            let log = self.log(who);
            for panic in log.lines().filter(|l| l.contains("panicked at")).take(3) {
                s.push_str(&format!("\n--- {who} PANIC: {panic}"));
            }
            s.push_str(&format!(
                "\n--- {who} (last lines)\n{}\n",
                self.log_tail(who, 15)
            ));
        }
        s
    }
}
