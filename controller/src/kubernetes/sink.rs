//! The Kubernetes [`ControllerSink`]: status subresources (server-side apply, field manager
//! `ferrolb-controller`) and `events.k8s.io/v1` Events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferrolb_crds::config::{ConfigError, Kind, ObjectRef};
use ferrolb_crds::service::ANNOTATION_ALLOCATED_FROM_POOL;
use ferrolb_crds::v1alpha1::{
    ConfigurationResult, ConfigurationState, ConfigurationStateStatus, IPAddressPool,
    IPAddressPoolStatus, ObjectError,
};
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

use crate::allocator::{PoolUsage, ServiceKey};
use crate::error::Error;
use crate::sink::{CONDITION_TYPE, ControllerEvent, ControllerSink, ServiceStatusWrite};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "ferrolb-controller";
/// Name of the controller's `ConfigurationState`.
pub const CONFIG_STATE_NAME: &str = "controller";

/// Writes to the API server. Cheap to clone (shared client, recorder and caches).
#[derive(Clone)]
pub struct KubeSink {
    client: Client,
    namespace: String,
    recorder: Recorder,
    /// UIDs of objects Events are about (so `kubectl describe` shows them).
    uids: Arc<Mutex<HashMap<ObjectRef, String>>>,
    /// Pool status last written (only changes are patched).
    pools: Arc<Mutex<HashMap<String, IPAddressPoolStatus>>>,
    /// Configuration errors last written.
    config: Arc<Mutex<Option<Vec<ObjectError>>>>,
}

impl KubeSink {
    /// A sink writing with `client`; ferrolb objects live in `namespace`.
    pub fn new(client: Client, namespace: impl Into<String>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            namespace: namespace.into(),
            uids: Arc::default(),
            pools: Arc::default(),
            config: Arc::default(),
        }
    }

    /// Remembers the UID of an object (Events about it carry it).
    pub fn remember(&self, kind: Kind, meta: &kube::api::ObjectMeta) {
        if let Some(uid) = &meta.uid {
            let r = ObjectRef::new(kind, meta);
            self.uids.lock().expect("uid cache").insert(r, uid.clone());
        }
    }

    fn reference(&self, r: &ObjectRef) -> ObjectReference {
        let (api_version, namespace) = match r.kind {
            Kind::Service => ("v1".to_string(), r.namespace.clone()),
            _ => (
                ferrolb_crds::v1alpha1::API_VERSION.to_string(),
                if r.namespace.is_empty() {
                    self.namespace.clone()
                } else {
                    r.namespace.clone()
                },
            ),
        };
        ObjectReference {
            api_version: Some(api_version),
            kind: Some(r.kind.to_string()),
            namespace: Some(namespace),
            name: Some(r.name.clone()),
            uid: self.uids.lock().expect("uid cache").get(r).cloned(),
            ..ObjectReference::default()
        }
    }
}

impl KubeSink {
    /// Sets (or, with `None`, removes) the `ferrolb.io/ip-allocated-from-pool` annotation, by
    /// server-side apply of that one field on the Service.
    pub async fn pool_annotation(
        &self,
        service: &ServiceKey,
        pool: Option<&str>,
    ) -> Result<(), Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &service.namespace);
        let mut metadata = json!({"name": service.name, "namespace": service.namespace});
        if let Some(p) = pool {
            metadata["annotations"] = json!({ ANNOTATION_ALLOCATED_FROM_POOL: p });
        }
        let patch = json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata});
        api.patch(&service.name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::Kube {
                what: format!("annotate Service {service} with its pool"),
                source,
            })?;
        Ok(())
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The server-side-apply body of a Service status write.
pub fn service_status_patch(w: &ServiceStatusWrite, now: Timestamp) -> serde_json::Value {
    let ingress: Vec<_> = w
        .ingress
        .iter()
        .map(|ip| json!({"ip": ip.to_string()}))
        .collect();
    let mut status = json!({ "loadBalancer": { "ingress": ingress } });
    if let Some(c) = &w.condition {
        status["conditions"] = json!([{
            "type": CONDITION_TYPE,
            "status": c.status_str(),
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": Time(now),
        }]);
    }
    json!({ "apiVersion": "v1", "kind": "Service", "status": status })
}

impl ControllerSink for KubeSink {
    async fn service_status(&mut self, w: &ServiceStatusWrite) -> Result<(), Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &w.service.namespace);
        let patch = service_status_patch(w, Timestamp::now());
        api.patch_status(&w.service.name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::Kube {
                what: format!("patch the status of Service {}", w.service),
                source,
            })?;
        Ok(())
    }

    async fn service_deleted(&mut self, service: &ServiceKey) -> Result<(), Error> {
        let r = crate::decide::service_ref(service);
        self.uids.lock().expect("uid cache").remove(&r);
        Ok(())
    }

    async fn event(&mut self, e: &ControllerEvent) -> Result<(), Error> {
        let ev = Event {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.to_string(),
            note: Some(truncate(&e.message, 1000)),
            action: match e.object.kind {
                Kind::Service => "Allocate".into(),
                _ => "Validate".into(),
            },
            secondary: None,
        };
        self.recorder
            .publish(&ev, &self.reference(&e.object))
            .await
            .map_err(|source| Error::Event {
                object: e.object.to_string(),
                source,
            })
    }

    async fn pool_status(&mut self, usage: &[PoolUsage]) -> Result<(), Error> {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &self.namespace);
        for u in usage {
            let status = IPAddressPoolStatus {
                assigned_ipv4: sat(u.assigned_v4),
                assigned_ipv6: sat(u.assigned_v6),
                available_ipv4: sat(u.available_v4),
                available_ipv6: sat(u.available_v6),
            };
            // Claim the write first, so that concurrent reconciles do not both send it.
            let previous = {
                let mut cache = self.pools.lock().expect("pool cache");
                if cache.get(&u.pool) == Some(&status) {
                    continue;
                }
                cache.insert(u.pool.clone(), status.clone())
            };
            let patch = json!({"status": status});
            if let Err(source) = api
                .patch_status(&u.pool, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                let mut cache = self.pools.lock().expect("pool cache");
                match previous {
                    Some(p) => cache.insert(u.pool.clone(), p),
                    None => cache.remove(&u.pool),
                };
                return Err(Error::Kube {
                    what: format!(
                        "patch the status of IPAddressPool {}/{}",
                        self.namespace, u.pool
                    ),
                    source,
                });
            }
        }
        Ok(())
    }

    async fn config_state(&mut self, errors: &[ConfigError]) -> Result<(), Error> {
        let list: Vec<ObjectError> = errors.iter().map(ObjectError::from).collect();
        if self.config.lock().expect("config cache").as_ref() == Some(&list) {
            return Ok(());
        }
        let api: Api<ConfigurationState> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = |s: &str| {
            format!(
                "{s} ConfigurationState {}/{CONFIG_STATE_NAME}",
                self.namespace
            )
        };
        let obj = json!({
            "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
            "kind": "ConfigurationState",
            "metadata": {"name": CONFIG_STATE_NAME, "namespace": self.namespace},
            "spec": {"component": "controller"},
        });
        api.patch(CONFIG_STATE_NAME, &apply_params(), &Patch::Apply(&obj))
            .await
            .map_err(|source| Error::Kube {
                what: what("apply"),
                source,
            })?;
        let status = ConfigurationStateStatus {
            result: if list.is_empty() {
                ConfigurationResult::Valid
            } else {
                ConfigurationResult::Invalid
            },
            error_count: u32::try_from(list.len()).unwrap_or(u32::MAX),
            error_summary: errors.first().map(|e| e.to_string()).unwrap_or_default(),
            errors: list.clone(),
            last_update: Some(Time(Timestamp::now())),
        };
        let patch = json!({
            "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
            "kind": "ConfigurationState",
            "status": status,
        });
        api.patch_status(CONFIG_STATE_NAME, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::Kube {
                what: what("patch the status of"),
                source,
            })?;
        *self.config.lock().expect("config cache") = Some(list);
        Ok(())
    }
}

fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
