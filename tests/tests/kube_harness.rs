//! The Kubernetes test harness itself (`ferrolb_tests::kube_env`) on a real kube-apiserver:
//! it starts, installs the CRDs from the real manifests, hands out ServiceAccount clients that
//! go through RBAC, records 403s from the audit log, survives an apiserver SIGKILL + restart,
//! relays into a network namespace, and leaves no process and no file behind.

use std::path::Path;
use std::time::Duration;

use ferrolb_tests::kube_env::{CONTROLLER_SA, KubeEnv, SPEAKER_SA, SYSTEM_NAMESPACE};
use ferrolb_tests::{Netns, require_root, wait_until};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};

/// Names of the CRDs in examples/manifests/crds.yaml.
fn crd_names_in_manifest() -> Vec<String> {
    let path = ferrolb_tests::kube_env::repo_root().join("examples/manifests/crds.yaml");
    let text = std::fs::read_to_string(path).expect("read crds.yaml");
    ferrolb_crds::yaml::split_documents(&text)
        .iter()
        .map(|d| {
            let crd: CustomResourceDefinition =
                serde_saphyr::from_str(d.text).expect("crds.yaml holds CRDs");
            crd.metadata.name.expect("CRD name")
        })
        .collect()
}

/// True while `pid` is a live process started from `dir` (guards against PID reuse).
fn runs_from(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
}

fn service(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .expect("service")
}

#[tokio::test]
async fn env_rbac_audit_restart_and_teardown() {
    if !KubeEnv::available("env_rbac_audit_restart_and_teardown") {
        return;
    }
    let env = KubeEnv::start();

    // Every CRD of the manifest is there and established.
    let crds: Api<CustomResourceDefinition> = Api::all(env.admin_client());
    let served: Vec<CustomResourceDefinition> =
        crds.list(&ListParams::default()).await.unwrap().items;
    let want = crd_names_in_manifest();
    assert!(want.len() >= 7, "crds.yaml lists {want:?}");
    for name in &want {
        let crd = served
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("CRD {name} not installed"));
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        assert!(established, "CRD {name} not established");
    }

    // The controller's ServiceAccount may list Services in every namespace.
    let ns = env.new_namespace("harness");
    let admin_svcs: Api<Service> = Api::namespaced(env.admin_client(), &ns);
    admin_svcs
        .create(&PostParams::default(), &service("web"))
        .await
        .unwrap();
    let all: Api<Service> = Api::all(env.controller_client());
    let listed = all
        .list(&ListParams::default())
        .await
        .expect("controller lists services");
    assert!(
        listed
            .items
            .iter()
            .any(|s| s.metadata.namespace.as_deref() == Some(&*ns))
    );
    assert!(
        env.forbidden_requests().is_empty(),
        "{:?}",
        env.forbidden_requests()
    );

    // The speaker's ServiceAccount must not create Services: a 403, and the audit log has it.
    let speaker_svcs: Api<Service> = Api::namespaced(env.speaker_client(), &ns);
    let err = speaker_svcs
        .create(&PostParams::default(), &service("nope"))
        .await
        .expect_err("speaker must not create services");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    let want =
        format!("system:serviceaccount:{SYSTEM_NAMESPACE}:{SPEAKER_SA} create services {ns}/");
    let seen = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let f = env.forbidden_requests();
        (!f.is_empty()).then_some(f)
    });
    assert_eq!(seen, Some(vec![want]));

    // SIGKILL the apiserver: requests fail; restart it with the same flags: they work again
    // and the objects (in etcd) are still there.
    let old_pid = env.apiserver_pid().expect("apiserver pid");
    env.kill_apiserver();
    assert!(
        !runs_from(old_pid, env.dir()),
        "apiserver {old_pid} survived SIGKILL"
    );
    assert!(
        admin_svcs.get("web").await.is_err(),
        "apiserver answered while killed"
    );
    env.restart_apiserver();
    assert_ne!(env.apiserver_pid(), Some(old_pid));
    let ctl_svcs: Api<Service> = Api::namespaced(env.controller_client(), &ns);
    ctl_svcs
        .get("web")
        .await
        .expect("Service survives the restart");

    // A kubeconfig file for the real binaries works as the controller.
    let kc = env.controller_kubeconfig();
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(
        text.contains(&env.server_url()) && text.contains("token:"),
        "{text}"
    );
    assert_eq!(env.kubeconfig_as(SYSTEM_NAMESPACE, CONTROLLER_SA), kc);

    // Teardown: both servers gone (checked by PID), files removed.
    let pids = [env.apiserver_pid().unwrap(), env.etcd_pid().unwrap()];
    let dir = env.dir().to_path_buf();
    assert!(pids.iter().all(|&p| runs_from(p, &dir)));
    drop(env);
    for pid in pids {
        assert!(
            !runs_from(pid, &dir),
            "process {pid} still running after drop"
        );
    }
    assert!(!dir.exists(), "{} not removed", dir.display());
}

/// A client inside a network namespace reaches the shared apiserver through the relay, as the
/// speaker's ServiceAccount.
#[test]
fn shared_env_reachable_from_a_netns() {
    if !KubeEnv::available("shared_env_reachable_from_a_netns") || !require_root("kube relay") {
        return;
    }
    let env = KubeEnv::shared();
    let ns = Netns::new("kr");
    let kc = env.kubeconfig_in_netns(ns.name(), SYSTEM_NAMESPACE, SPEAKER_SA);
    let names = ns.run_in(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let kc = kube::config::Kubeconfig::read_from(&kc).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            let client = kube::Client::try_from(config).unwrap();
            let api: Api<Namespace> = Api::all(client);
            let list = api
                .list(&ListParams::default())
                .await
                .expect("list namespaces via relay");
            list.items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect::<Vec<_>>()
        })
    });
    assert!(names.iter().any(|n| n == SYSTEM_NAMESPACE), "{names:?}");
    // Without the relay the namespace's loopback has no apiserver.
    env.stop_relay(ns.name());
    let port = env.apiserver_port();
    let refused = ns.run_in(move || std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(
        refused,
        "something still listens on 127.0.0.1:{port} in the netns"
    );
}
