//! The Kustomize tree in deploy/: every overlay renders with `kubectl kustomize`, the
//! committed examples/manifests/install.yaml is exactly the default overlay rendered, and the
//! security settings each overlay promises are in what it renders.
//! Skips without kubectl (required under CI=true).

use std::process::Command;

use ferrolb_crds::yaml::split_documents;
use ferrolb_tests::tools::{docs_of, kustomize, one_of, require_tool, workspace_root};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn pod_of_deployment(text: &str) -> PodSpec {
    let d: Deployment = one_of(text, "Deployment");
    d.spec.unwrap().template.spec.unwrap()
}

fn pod_of_daemonset(text: &str) -> PodSpec {
    let d: DaemonSet = one_of(text, "DaemonSet");
    d.spec.unwrap().template.spec.unwrap()
}

fn env_names(c: &Container) -> Vec<String> {
    c.env.iter().flatten().map(|e| e.name.clone()).collect()
}

fn caps_added(c: &Container) -> Vec<String> {
    let mut v: Vec<String> = c
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn install_yaml_is_the_default_overlay_rendered() {
    if !require_tool("install_yaml_is_the_default_overlay_rendered", "kubectl") {
        return;
    }
    let out = Command::new("bash")
        .args(["deploy/render-install.sh", "--stdout"])
        .current_dir(workspace_root())
        .output()
        .expect("run render-install.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(workspace_root().join("examples/manifests/install.yaml")).unwrap();
    if rendered != committed {
        let line = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "examples/manifests/install.yaml is stale (first difference at {line}): run `bash deploy/render-install.sh`"
        );
    }
}

#[test]
fn default_overlay_is_restricted_where_it_can_be() {
    if !require_tool("default_overlay_is_restricted_where_it_can_be", "kubectl") {
        return;
    }
    let text = kustomize("deploy/overlays/default");
    // Every object lands in the install namespace.
    for kind in [
        "Deployment",
        "DaemonSet",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ] {
        for d in docs_of(&text, kind) {
            assert!(
                d.contains("namespace: ferrolb-system"),
                "{kind} without namespace:\n{d}"
            );
        }
    }
    // Controller: everything `restricted` asks for, plus requests/limits.
    let pod = pod_of_deployment(&text);
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_string()][..])
    );
    assert!(caps_added(c).is_empty());
    let res = c.resources.as_ref().unwrap();
    assert!(
        res.requests
            .as_ref()
            .is_some_and(|r| r.contains_key("memory"))
    );
    assert!(
        res.limits
            .as_ref()
            .is_some_and(|r| r.contains_key("memory"))
    );
    assert!(env_names(c).contains(&"POD_NAMESPACE".to_string()));
    assert_eq!(c.image.as_deref(), Some("ghcr.io/ferrolb/ferrolb:0.1.0"));
    // The PodDisruptionBudget covers the controller.
    let pdb = docs_of(&text, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1);
    assert!(pdb[0].contains("app.kubernetes.io/component: controller"));

    // Speaker: host network, exactly NET_RAW + NET_ADMIN + NET_BIND_SERVICE, nothing else.
    let pod = pod_of_daemonset(&text);
    assert_eq!(pod.host_network, Some(true));
    let c = &pod.containers[0];
    assert_eq!(caps_added(c), ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"]);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.privileged, None);
    assert!(env_names(c).contains(&"POD_NAMESPACE".to_string()));
    assert!(!c.args.iter().flatten().any(|a| a == "--no-l2"));
    // The namespace enforces `privileged` (the speaker cannot meet baseline) and warns at
    // baseline.
    let ns = docs_of(&text, "Namespace");
    assert!(ns[0].contains("pod-security.kubernetes.io/enforce: privileged"));
    assert!(ns[0].contains("pod-security.kubernetes.io/warn: baseline"));
}

#[test]
fn bgp_only_overlay_has_no_l2_and_no_capabilities() {
    if !require_tool("bgp_only_overlay_has_no_l2_and_no_capabilities", "kubectl") {
        return;
    }
    let text = kustomize("deploy/overlays/bgp-only");
    let pod = pod_of_daemonset(&text);
    let c = &pod.containers[0];
    assert!(
        c.args.iter().flatten().any(|a| a == "--no-l2"),
        "{:?}",
        c.args
    );
    assert!(caps_added(c).is_empty(), "{:?}", caps_added(c));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.run_as_user, Some(65532));
    // The non-root speaker can read the membership key through its group.
    assert_eq!(pod.security_context.as_ref().unwrap().fs_group, Some(65532));
    let mode = pod.volumes.as_ref().unwrap()[0]
        .secret
        .as_ref()
        .unwrap()
        .default_mode;
    assert_eq!(mode, Some(0o440));
    // The controller is unchanged.
    assert_eq!(
        pod_of_deployment(&text),
        pod_of_deployment(&kustomize("deploy/overlays/default"))
    );
}

#[test]
fn monitoring_overlay_adds_monitors_rules_dashboard_and_policy() {
    if !require_tool(
        "monitoring_overlay_adds_monitors_rules_dashboard_and_policy",
        "kubectl",
    ) {
        return;
    }
    let text = kustomize("deploy/overlays/monitoring");
    assert_eq!(docs_of(&text, "PodMonitor").len(), 2);
    assert_eq!(docs_of(&text, "PrometheusRule").len(), 1);
    let cm = docs_of(&text, "ConfigMap");
    assert_eq!(cm.len(), 1);
    assert!(cm[0].contains("grafana_dashboard: \"1\""), "{}", cm[0]);
    assert!(cm[0].contains("ferrolb.json"));
    let np = docs_of(&text, "NetworkPolicy");
    assert_eq!(np.len(), 1);
    assert!(np[0].contains("port: 7472"));
    // The base objects are all there too.
    let base = kustomize("deploy/overlays/default");
    assert_eq!(
        split_documents(&text).len(),
        split_documents(&base).len() + 5,
        "base + 2 PodMonitors + PrometheusRule + ConfigMap + NetworkPolicy"
    );
}
