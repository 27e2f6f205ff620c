//! deploy/ on a real kube-apiserver (tests/src/kube_env.rs): every overlay, rendered with
//! `kubectl kustomize`, is accepted by server-side apply; and the Pod Security claims of
//! deploy/base hold in the API server's own PodSecurity admission: the controller's Pod is
//! admitted under `restricted`, the speaker's is refused under `baseline` for exactly
//! hostNetwork and NET_RAW/NET_ADMIN (the bgp-only speaker for hostNetwork alone).
//! Skips without the Kubernetes assets or kubectl (required under CI=true).

use ferrolb_tests::kube_env::KubeEnv;
use ferrolb_tests::kube_env::manifests::apply_yaml;
use ferrolb_tests::tools::{kustomize, one_of, require_tool};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec};
use kube::api::{Api, ObjectMeta, PostParams};

fn available(test: &str) -> bool {
    KubeEnv::available(test) && require_tool(test, "kubectl")
}

/// Kinds of the Prometheus Operator: not served by a bare API server (no operator CRDs).
const OPERATOR_KINDS: [&str; 2] = ["PodMonitor ", "PrometheusRule "];

#[test]
fn every_overlay_applies_server_side() {
    if !available("every_overlay_applies_server_side") {
        return;
    }
    let env = KubeEnv::start();
    for overlay in ["default", "bgp-only", "monitoring"] {
        let text = kustomize(&format!("deploy/overlays/{overlay}"));
        let admin = env.admin_config();
        let applied = env.block(async move {
            let client = kube::Client::try_from(admin).unwrap();
            apply_yaml(&client, &text, "default", false).await
        });
        assert!(applied.len() > 15, "{overlay}: {} objects", applied.len());
        let mut failed = Vec::new();
        for a in &applied {
            let operator = OPERATOR_KINDS.iter().any(|k| a.what.starts_with(k));
            match (&a.result, operator) {
                (Ok(_), false) => {}
                (Err(e), true) if e.contains("kind not served") => {}
                (r, _) => failed.push(format!("{}: {:?}", a.what, r.as_ref().err())),
            }
        }
        assert!(failed.is_empty(), "{overlay}:\n{}", failed.join("\n"));
        let operator = applied
            .iter()
            .filter(|a| OPERATOR_KINDS.iter().any(|k| a.what.starts_with(k)))
            .count();
        assert_eq!(operator, if overlay == "monitoring" { 3 } else { 0 });
    }
    assert!(env.forbidden_requests().is_empty());
}

fn controller_pod(text: &str) -> PodSpec {
    let d: Deployment = one_of(text, "Deployment");
    d.spec.unwrap().template.spec.unwrap()
}

fn speaker_pod(text: &str) -> PodSpec {
    let d: DaemonSet = one_of(text, "DaemonSet");
    d.spec.unwrap().template.spec.unwrap()
}

/// Creates (dry run) a Pod with `spec` in a fresh namespace enforcing `level`; the
/// PodSecurity admission's answer.
async fn admit(client: kube::Client, ns: String, level: &str, spec: PodSpec) -> Result<(), String> {
    let labels = [(
        "pod-security.kubernetes.io/enforce".to_string(),
        level.to_string(),
    )];
    let nss: Api<Namespace> = Api::all(client.clone());
    let obj = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            labels: Some(labels.into_iter().collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    nss.create(&PostParams::default(), &obj).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("probe".into()),
            ..Default::default()
        },
        spec: Some(spec),
        ..Default::default()
    };
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    pods.create(&pp, &pod)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn pod_security_levels_are_what_the_manifests_say() {
    if !available("pod_security_levels_are_what_the_manifests_say") {
        return;
    }
    let env = KubeEnv::shared();
    let default = kustomize("deploy/overlays/default");
    let bgp_only = kustomize("deploy/overlays/bgp-only");
    let cases = [
        ("restricted", controller_pod(&default)),
        ("baseline", speaker_pod(&default)),
        ("baseline", speaker_pod(&bgp_only)),
        ("privileged", speaker_pod(&default)),
    ];
    let mut results = Vec::new();
    for (i, (level, spec)) in cases.into_iter().enumerate() {
        let admin = env.admin_config();
        let ns = format!("psa-{}-{i}", std::process::id());
        let level = level.to_string();
        results.push(env.block(async move {
            let client = kube::Client::try_from(admin).unwrap();
            admit(client, ns, &level, spec).await
        }));
    }
    assert_eq!(results[0], Ok(()), "controller under restricted");
    let speaker = results[1].as_ref().expect_err("speaker is not baseline");
    for why in ["hostNetwork", "NET_ADMIN", "NET_RAW"] {
        assert!(speaker.contains(why), "{why} in {speaker}");
    }
    let bgp = results[2]
        .as_ref()
        .expect_err("host network is not baseline");
    assert!(bgp.contains("hostNetwork"), "{bgp}");
    assert!(
        !bgp.contains("NET_RAW") && !bgp.contains("capabilities"),
        "{bgp}"
    );
    assert_eq!(
        results[3],
        Ok(()),
        "speaker under privileged (the namespace's level)"
    );
}
