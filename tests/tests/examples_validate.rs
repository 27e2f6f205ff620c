//! Every YAML document under `examples/` parses with the project's own types (ferrolb kinds via
//! `ferrolb_crds::yaml`, Kubernetes kinds via k8s-openapi), every ferrolb object validates with
//! the config function, and every Service parses into a `ServiceRequest`. So an example can
//! never rot. Also checks the install manifest's security-relevant shape.

use std::path::{Path, PathBuf};

use ferrolb_crds::yaml::{Loaded, collect_yaml_files, load_str, split_documents};
use ferrolb_crds::{ClusterResources, Config, ServiceRequest};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn is_lab(path: &Path) -> bool {
    path.strip_prefix(examples_dir())
        .is_ok_and(|rel| rel.starts_with("lab"))
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_yaml_files(&examples_dir(), &mut files).expect("examples/ is readable");
    files.sort();
    assert!(
        files.len() >= 6,
        "expected the example files, found {files:?}"
    );
    files
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

fn typed<T: DeserializeOwned>(file: &Path, line: u64, text: &str) -> T {
    serde_saphyr::from_str(text).unwrap_or_else(|e| {
        panic!(
            "{}:{line}: does not parse as {}: {e}",
            file.display(),
            std::any::type_name::<T>()
        )
    })
}

/// Loads one file: ferrolb and core kinds through the project's loader; the other documents
/// must be Kubernetes kinds that parse with k8s-openapi (workloads, RBAC, CRDs).
fn load_file(path: &Path) -> (Loaded, Vec<CustomResourceDefinition>) {
    let text = std::fs::read_to_string(path).expect("example is readable");
    let file = path.display().to_string();
    let mut crds = Vec::new();
    if is_lab(path) {
        // The lab may hold non-Kubernetes YAML (e.g. tool configs): keep only k8s objects.
        let kept: Vec<&str> = split_documents(&text)
            .into_iter()
            .filter(|d| {
                serde_saphyr::from_str::<Header>(d.text)
                    .is_ok_and(|h| h.api_version.is_some() && h.kind.is_some())
            })
            .map(|d| d.text)
            .collect();
        return (load_str(&file, &kept.join("\n---\n")), crds);
    }
    let loaded = load_str(&file, &text);
    assert!(loaded.errors.is_empty(), "{file}: {:#?}", loaded.errors);
    let unknown: Vec<String> = loaded
        .unknown_fields
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        unknown.is_empty(),
        "typos in examples:\n{}",
        unknown.join("\n")
    );
    let docs = split_documents(&text);
    for ignored in &loaded.ignored {
        let doc = docs
            .iter()
            .find(|d| d.line == ignored.line)
            .expect("ignored document is one of the split documents");
        match (ignored.api_version.as_str(), ignored.kind.as_str()) {
            ("apps/v1", "Deployment") => drop(typed::<Deployment>(path, doc.line, doc.text)),
            ("apps/v1", "DaemonSet") => drop(typed::<DaemonSet>(path, doc.line, doc.text)),
            ("v1", "ServiceAccount") => drop(typed::<ServiceAccount>(path, doc.line, doc.text)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                drop(typed::<ClusterRole>(path, doc.line, doc.text))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                drop(typed::<ClusterRoleBinding>(path, doc.line, doc.text))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => {
                drop(typed::<Role>(path, doc.line, doc.text))
            }
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                drop(typed::<RoleBinding>(path, doc.line, doc.text))
            }
            ("policy/v1", "PodDisruptionBudget") => {
                drop(typed::<PodDisruptionBudget>(path, doc.line, doc.text))
            }
            // examples/manifests/kustomization.yaml: the CRDs as a resource for deploy/base.
            ("kustomize.config.k8s.io/v1beta1", "Kustomization") => {}
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                crds.push(typed::<CustomResourceDefinition>(path, doc.line, doc.text))
            }
            (api, kind) => panic!("{file}:{}: unexpected {api} {kind} in examples", doc.line),
        }
    }
    (loaded, crds)
}

#[track_caller]
fn assert_valid(what: &str, res: &ClusterResources) {
    let out = Config::build(res, None);
    let errors: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    assert!(
        errors.is_empty(),
        "{what}: config errors:\n{}",
        errors.join("\n")
    );
    let c = &out.config;
    assert_eq!(c.pools.len(), res.pools.len(), "{what}: pools");
    assert_eq!(
        c.l2_advertisements.len(),
        res.l2_advertisements.len(),
        "{what}: L2 ads"
    );
    assert_eq!(
        c.bgp_advertisements.len(),
        res.bgp_advertisements.len(),
        "{what}: BGP ads"
    );
    assert_eq!(c.peers.len(), res.bgp_peers.len(), "{what}: peers");
    assert_eq!(
        c.communities.len(),
        res.communities.len(),
        "{what}: communities"
    );
    assert_eq!(
        c.bfd_profiles.len(),
        res.bfd_profiles.len(),
        "{what}: BFD profiles"
    );
    for svc in &res.services {
        if let Err(e) = ServiceRequest::from_service(svc) {
            panic!("{what}: Service does not parse: {e:?}");
        }
    }
}

#[test]
fn every_example_parses_and_validates() {
    let mut all = ClusterResources::default();
    let mut custom_resources = 0;
    for path in yaml_files() {
        let (loaded, _) = load_file(&path);
        let name = path.display().to_string();
        assert_valid(&name, &loaded.resources);
        custom_resources += loaded.resources.custom_resource_count();
        // The top-level samples are meant to be applied together; the lab has its own.
        if !path.starts_with(examples_dir().join("manifests")) && !is_lab(&path) {
            all.extend(loaded.resources);
        }
    }
    assert!(
        custom_resources >= 15,
        "examples hold only {custom_resources} ferrolb objects"
    );
    // The samples can be applied together: no overlapping pools, no name clashes.
    assert_valid("all examples together", &all);
}

#[test]
fn sample_files_cover_each_mode() {
    for (file, check) in [
        (
            "l2.yaml",
            &(|r: &ClusterResources| !r.l2_advertisements.is_empty())
                as &dyn Fn(&ClusterResources) -> bool,
        ),
        ("bgp.yaml", &|r| {
            !r.bgp_advertisements.is_empty()
                && r.bgp_peers.iter().any(|p| p.spec.interface.is_some())
                && r.bgp_peers.iter().any(|p| p.spec.vrf.is_some())
                && r.bgp_peers.iter().any(|p| p.spec.peer_address.is_some())
        }),
        ("dual-stack.yaml", &|r| {
            !r.pools.is_empty() && !r.bgp_peers.is_empty()
        }),
        ("sharing.yaml", &|r| r.services.len() >= 2),
    ] {
        let (loaded, _) = load_file(&examples_dir().join(file));
        assert!(
            check(&loaded.resources),
            "{file} lacks what it demonstrates"
        );
        assert!(
            !loaded.resources.services.is_empty(),
            "{file} has no sample Service"
        );
    }
    let (sharing, _) = load_file(&examples_dir().join("sharing.yaml"));
    let reqs: Vec<ServiceRequest> = sharing
        .resources
        .services
        .iter()
        .map(|s| ServiceRequest::from_service(s).unwrap())
        .collect();
    assert!(reqs.iter().all(|r| r.sharing_key.as_deref() == Some("dns")));
    assert_eq!(reqs[0].requested_ips, reqs[1].requested_ips);
}

#[test]
fn install_manifest_is_least_privilege() {
    let path = examples_dir().join("manifests/install.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (loaded, mut crds) = load_file(&path);
    // Kustomize sorts the CRDs by name.
    let mut want = ferrolb_crds::v1alpha1::crds();
    crds.sort_by_key(|c| c.metadata.name.clone());
    want.sort_by_key(|c| c.metadata.name.clone());
    assert!(crds == want, "install.yaml CRDs differ from the code");
    assert_eq!(loaded.resources.namespaces.len(), 1);
    let ns: &Namespace = &loaded.resources.namespaces[0];
    assert_eq!(ns.metadata.name.as_deref(), Some("ferrolb-system"));

    let docs = split_documents(&text);
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d.text.contains(&format!("\nkind: {kind}\n")))
            .unwrap_or_else(|| panic!("install.yaml has no {kind}"))
    };
    let deploy: Deployment = typed(&path, 0, find("Deployment").text);
    let spec = deploy.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("ghcr.io/ferrolb/ferrolb:0.1.0"));
    assert_eq!(
        c.command.as_deref(),
        Some(&["ferrolb-controller".to_string()][..])
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_string()][..])
    );
    assert!(sc.capabilities.as_ref().unwrap().add.is_none());
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/readyz"));

    let ds: DaemonSet = typed(&path, 0, find("DaemonSet").text);
    let pod = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    let c = &pod.containers[0];
    assert_eq!(
        c.command.as_deref(),
        Some(&["ferrolb-speaker".to_string()][..])
    );
    assert_eq!(
        c.args.as_deref(),
        Some(&["--node".to_string(), "$(NODE_NAME)".to_string()][..])
    );
    let caps = c
        .security_context
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    let mut added = caps.add.clone().unwrap();
    added.sort();
    assert_eq!(added, ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"]);
    assert_eq!(c.security_context.as_ref().unwrap().privileged, None);
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/readyz"));
    assert!(
        c.ports
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p.name.as_deref() == Some("http"))
    );

    // Membership: the speaker binds $(POD_IP):7946 and reads its key from the mounted
    // Secret ferrolb-memberlist (the --members-key-file default).
    let env = c.env.as_deref().unwrap_or_default();
    let pod_ip = env.iter().find(|e| e.name == "POD_IP").expect("POD_IP env");
    assert_eq!(
        pod_ip
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("status.podIP")
    );
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/etc/ferrolb/memberlist")
        .expect("memberlist key mount");
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("memberlist volume");
    let secret = volume.secret.as_ref().expect("a Secret volume");
    assert_eq!(secret.secret_name.as_deref(), Some("ferrolb-memberlist"));
    let ports = c.ports.as_deref().unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p.container_port == 7946 && p.protocol.as_deref() == Some("UDP"))
    );
    // The probes hit the speaker's default --metrics-addr port (no --metrics-addr in args).
    assert!(
        ports
            .iter()
            .any(|p| p.name.as_deref() == Some("http") && p.container_port == 7473)
    );

    // Leases only through a namespaced Role in ferrolb-system; no wildcard anywhere.
    assert!(!text.contains("'*'") && !text.contains("\"*\"") && !text.contains("[*]"));
    let roles: Vec<Role> = docs
        .iter()
        .filter(|d| d.text.contains("\nkind: Role\n"))
        .map(|d| typed(&path, d.line, d.text))
        .collect();
    assert!(
        roles
            .iter()
            .all(|r| r.metadata.namespace.as_deref() == Some("ferrolb-system"))
    );
    let controller_role = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("ferrolb-controller"))
        .unwrap();
    assert!(controller_role.rules.iter().flatten().any(|rule| {
        rule.api_groups.as_deref() == Some(&["coordination.k8s.io".to_string()][..])
            && rule.resources.as_deref() == Some(&["leases".to_string()][..])
    }));
    // Secrets: the controller may read only the memberlist Secret (and create Secrets, which
    // RBAC cannot limit by name); the speaker may list/watch Pods in ferrolb-system only.
    let rules_on = |role: &Role, resource: &str| -> Vec<_> {
        role.rules
            .iter()
            .flatten()
            .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
            .cloned()
            .collect()
    };
    for rule in rules_on(controller_role, "secrets") {
        let verbs = rule.verbs.clone();
        assert!(
            verbs == ["create"]
                || (verbs == ["get"]
                    && rule.resource_names.as_deref()
                        == Some(&["ferrolb-memberlist".to_string()][..])),
            "controller secrets rule {rule:?}"
        );
    }
    let speaker_role = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("ferrolb-speaker"))
        .unwrap();
    let pod_rules = rules_on(speaker_role, "pods");
    assert_eq!(pod_rules.len(), 1);
    assert_eq!(pod_rules[0].verbs, ["list", "watch"]);
    let cluster_roles: Vec<ClusterRole> = docs
        .iter()
        .filter(|d| d.text.contains("\nkind: ClusterRole\n"))
        .map(|d| typed(&path, d.line, d.text))
        .collect();
    for cr in &cluster_roles {
        for rule in cr.rules.iter().flatten() {
            let resources = rule.resources.clone().unwrap_or_default();
            assert!(
                !resources.iter().any(|r| r == "secrets" || r == "leases"),
                "ClusterRole {:?} grants {resources:?} cluster-wide",
                cr.metadata.name
            );
        }
    }
}
