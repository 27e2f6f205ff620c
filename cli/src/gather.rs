//! The I/O part: reading [`Inputs`] from a standalone manifests directory or from Kubernetes.

use std::collections::BTreeMap;
use std::path::Path;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};
use ferrolb_crds::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigurationState, IPAddressPool,
    L2Advertisement, SpeakerState,
};
use k8s_openapi::api::core::v1::{
    Event, LoadBalancerIngress, LoadBalancerStatus, Namespace, Node, Service, ServiceStatus,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

use crate::CliError;
use crate::inputs::{Condition, ConfigErrorRow, EventRow, Inputs, PoolUsage};

/// The condition type the controller writes on Services.
pub const CONDITION_TYPE: &str = "ferrolb.io/IPAllocated";

/// Reads a standalone directory: the manifests (`DIR/*.yaml`, `*.yml`), the controller's
/// `DIR/.ferrolb/status.yaml` and the speakers' `DIR/.ferrolb/speaker-*.yaml`.
pub fn standalone(dir: &Path) -> Result<Inputs, CliError> {
    let io = |path: &Path, source| CliError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut inputs = Inputs::default();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let loaded = ferrolb_crds::yaml::load_str(&name, &text);
        inputs.resources.extend(loaded.resources);
    }
    let status_path = dir.join(STATUS_FILE);
    match std::fs::read_to_string(&status_path) {
        Ok(text) => {
            let st: StandaloneStatus =
                serde_saphyr::from_str(&text).map_err(|e| CliError::Parse {
                    path: status_path.display().to_string(),
                    message: e.to_string(),
                })?;
            apply_status(&mut inputs, st);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&status_path, e)),
    }
    let state_dir = dir.join(".ferrolb");
    if let Ok(entries) = std::fs::read_dir(&state_dir) {
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("speaker-") && n.ends_with(".yaml"))
            })
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let sp: SpeakerState = serde_saphyr::from_str(&text).map_err(|e| CliError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            inputs.speakers.push(sp);
        }
    }
    Ok(inputs)
}

/// Merges the controller's standalone status into the inputs.
pub fn apply_status(inputs: &mut Inputs, st: StandaloneStatus) {
    for entry in &st.services {
        let key = format!("{}/{}", entry.namespace, entry.name);
        if let Some(svc) = inputs.resources.services.iter_mut().find(|s| {
            s.metadata.name.as_deref() == Some(&entry.name)
                && s.metadata.namespace.as_deref().unwrap_or("default") == entry.namespace
        }) {
            svc.status = Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        entry
                            .ingress
                            .iter()
                            .map(|i| LoadBalancerIngress {
                                ip: Some(i.ip.to_string()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            });
        }
        inputs.conditions.insert(
            key,
            Condition {
                status: entry.condition.status.clone(),
                reason: entry.condition.reason.clone(),
                message: entry.condition.message.clone(),
            },
        );
    }
    for p in st.pools {
        inputs.pool_usage.insert(
            p.name.clone(),
            PoolUsage {
                ipv4_used: p.assigned_ipv4,
                ipv4_free: p.available_ipv4,
                ipv6_used: p.assigned_ipv6,
                ipv6_free: p.available_ipv6,
            },
        );
    }
    for e in st.config_errors {
        let object = match (&e.kind, &e.object_name) {
            (Some(k), Some(n)) => format!("{k} {}/{n}", e.namespace.as_deref().unwrap_or("")),
            _ => match (&e.file, e.line) {
                (Some(f), Some(l)) => format!("{f}:{l}"),
                (Some(f), None) => f.clone(),
                _ => String::new(),
            },
        };
        inputs.config_errors.push(ConfigErrorRow {
            source: "controller".into(),
            object,
            field: e.field.unwrap_or_default(),
            message: e.message,
        });
    }
    for e in st.events {
        inputs.events.push(EventRow {
            object: e.object,
            type_: e.type_,
            reason: e.reason,
            message: e.message,
        });
    }
}

/// Reads everything from Kubernetes (ferrolb objects from `namespace`).
pub async fn kubernetes(client: kube::Client, namespace: &str) -> Result<Inputs, CliError> {
    let lp = ListParams::default();
    let ns = |c: &kube::Client| c.clone();
    let mut r = ClusterResources {
        pools: list(
            Api::<IPAddressPool>::namespaced(ns(&client), namespace),
            &lp,
        )
        .await?,
        l2_advertisements: list(
            Api::<L2Advertisement>::namespaced(ns(&client), namespace),
            &lp,
        )
        .await?,
        bgp_advertisements: list(
            Api::<BGPAdvertisement>::namespaced(ns(&client), namespace),
            &lp,
        )
        .await?,
        bgp_peers: list(Api::<BGPPeer>::namespaced(ns(&client), namespace), &lp).await?,
        communities: list(Api::<Community>::namespaced(ns(&client), namespace), &lp).await?,
        bfd_profiles: list(Api::<BFDProfile>::namespaced(ns(&client), namespace), &lp).await?,
        services: list(Api::<Service>::all(ns(&client)), &lp).await?,
        nodes: list(Api::<Node>::all(ns(&client)), &lp).await?,
        namespaces: list(Api::<Namespace>::all(ns(&client)), &lp).await?,
        ..ClusterResources::default()
    };
    r.endpoint_slices = list(Api::<EndpointSlice>::all(ns(&client)), &lp).await?;
    let mut inputs = Inputs {
        pool_usage: pool_usage(&r.pools),
        conditions: service_conditions(&r.services),
        ..Inputs::default()
    };
    inputs.speakers = list(Api::<SpeakerState>::namespaced(ns(&client), namespace), &lp).await?;
    for cs in list(
        Api::<ConfigurationState>::namespaced(ns(&client), namespace),
        &lp,
    )
    .await?
    {
        let source = cs.metadata.name.clone().unwrap_or_default();
        for e in cs.status.iter().flat_map(|s| &s.errors) {
            inputs.config_errors.push(ConfigErrorRow {
                source: source.clone(),
                object: format!("{} {}/{}", e.kind, e.namespace, e.name),
                field: e.field.clone(),
                message: e.message.clone(),
            });
        }
    }
    inputs.resources = r;
    Ok(inputs)
}

/// Each pool's usage from its `status`.
fn pool_usage(pools: &[IPAddressPool]) -> BTreeMap<String, PoolUsage> {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    pools
        .iter()
        .filter_map(|p| {
            let (name, s) = (p.metadata.name.as_ref()?, p.status.as_ref()?);
            Some((
                name.clone(),
                PoolUsage {
                    ipv4_used: u(s.assigned_ipv4),
                    ipv4_free: u(s.available_ipv4),
                    ipv6_used: u(s.assigned_ipv6),
                    ipv6_free: u(s.available_ipv6),
                },
            ))
        })
        .collect()
}

/// The controller's condition of each Service that has one, by `namespace/name`.
fn service_conditions(services: &[Service]) -> BTreeMap<String, Condition> {
    let mut out = BTreeMap::new();
    for svc in services {
        let key = format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or("default"),
            svc.metadata.name.as_deref().unwrap_or_default()
        );
        let cond = svc
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .find(|c| c.type_ == CONDITION_TYPE);
        if let Some(c) = cond {
            out.insert(
                key,
                Condition {
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                },
            );
        }
    }
    out
}

/// Events about one Service (for `why`).
pub async fn service_events(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<EventRow>, CliError> {
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=Service,involvedObject.name={name}"
    ));
    let mut events = list(Api::<Event>::namespaced(client, namespace), &lp).await?;
    events.sort_by(|a, b| a.last_timestamp.cmp(&b.last_timestamp));
    Ok(events
        .into_iter()
        .map(|e| EventRow {
            object: format!("Service {namespace}/{name}"),
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
        })
        .collect())
}

async fn list<K>(api: Api<K>, lp: &ListParams) -> Result<Vec<K>, CliError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or_default()
        .to_string();
    api.list(lp)
        .await
        .map(|l| l.items)
        .map_err(|source| CliError::Kube { kind, source })
}
