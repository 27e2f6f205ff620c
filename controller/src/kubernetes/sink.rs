//! The Kubernetes [`ControllerSink`]: status subresources (server-side apply, field manager
//! `ferrolb-controller` on every write) and `events.k8s.io/v1` Events (see [`super::events`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ferrolb_cluster::kube::RecordStore;
use ferrolb_crds::config::{ConfigError, Kind, ObjectRef};
use ferrolb_crds::service::ANNOTATION_ALLOCATED_FROM_POOL;
use ferrolb_crds::v1alpha1::{
    ConfigurationResult, ConfigurationState, ConfigurationStateStatus, IPAddressPoolStatus,
    ObjectError,
};
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::slim_service::SlimService;
use crate::allocator::{PoolUsage, ServiceKey};
use crate::error::Error;
use crate::sink::{CONDITION_TYPE, ControllerEvent, ControllerSink, ServiceStatusWrite};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "ferrolb-controller";
/// Name of the controller's `ConfigurationState`.
pub const CONFIG_STATE_NAME: &str = "controller";

/// Identity of an object at a version: what an Event's `regarding` needs so that
/// `kubectl describe` (which selects Events by `involvedObject.uid`) shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectIdentity {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion` when last seen.
    pub resource_version: Option<String>,
}

/// Writes to the API server. Cheap to clone (shared client and caches).
#[derive(Clone)]
pub struct KubeSink {
    pub(super) client: Client,
    pub(super) namespace: String,
    /// `reportingInstance` of our Events (the pod name).
    pub(super) instance: String,
    /// Identities of the objects Events are about (Services only until the watch cache is
    /// attached: then their identity is read from it, see [`KubeSink::attach_services`]).
    uids: Arc<Mutex<HashMap<ObjectRef, ObjectIdentity>>>,
    /// The leader's Service watch cache, once it exists.
    services: Arc<OnceLock<RecordStore<SlimService>>>,
    /// Pool status last written (only changes are patched; forgotten when a pool is deleted
    /// and created again).
    pools: Arc<Mutex<HashMap<String, IPAddressPoolStatus>>>,
    /// Configuration errors last written.
    config: Arc<Mutex<Option<Vec<ObjectError>>>>,
}

impl KubeSink {
    /// A sink writing with `client`; ferrolb objects live in `namespace`.
    pub fn new(client: Client, namespace: impl Into<String>, instance: Option<String>) -> Self {
        Self {
            instance: instance.unwrap_or_else(|| FIELD_MANAGER.into()),
            client,
            namespace: namespace.into(),
            uids: Arc::default(),
            services: Arc::default(),
            pools: Arc::default(),
            config: Arc::default(),
        }
    }

    /// Reads Services' identities from the watch cache from now on, and forgets the ones
    /// remembered so far (a second copy of 10,000 UIDs is ~2 MB: BENCHMARKS.md).
    pub fn attach_services(&self, store: RecordStore<SlimService>) {
        if self.services.set(store).is_ok() {
            self.uids
                .lock()
                .expect("uid cache")
                .retain(|r, _| r.kind != Kind::Service);
        }
    }

    /// Remembers the uid and resourceVersion of an object (Events about it carry them).
    /// Services need not be remembered once the watch cache is attached.
    pub fn remember(&self, kind: Kind, meta: &kube::api::ObjectMeta) {
        if kind == Kind::Service && self.services.get().is_some() {
            return;
        }
        let Some(uid) = &meta.uid else { return };
        let r = ObjectRef::new(kind, meta);
        let id = ObjectIdentity {
            uid: uid.clone(),
            resource_version: meta.resource_version.clone(),
        };
        let previous = self.uids.lock().expect("uid cache").insert(r.clone(), id);
        // A pool deleted and created again under the same name: its status is empty again.
        if kind == Kind::IPAddressPool && previous.is_some_and(|p| &p.uid != uid) {
            self.pools.lock().expect("pool cache").remove(&r.name);
        }
    }

    /// The status last written to pool `name`.
    pub(super) fn pool_written(&self, name: &str) -> Option<IPAddressPoolStatus> {
        self.pools.lock().expect("pool cache").get(name).cloned()
    }

    /// Records (or forgets) the status written to pool `name`.
    pub(super) fn set_pool_written(&self, name: &str, status: Option<IPAddressPoolStatus>) {
        let mut cache = self.pools.lock().expect("pool cache");
        match status {
            Some(s) => cache.insert(name.to_string(), s),
            None => cache.remove(name),
        };
    }

    /// The `regarding` reference of an Event about `r`: apiVersion, kind, namespace, name,
    /// and the uid and resourceVersion last seen.
    pub fn reference(&self, r: &ObjectRef) -> ObjectReference {
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
        let id = self.identity(r);
        ObjectReference {
            api_version: Some(api_version),
            kind: Some(r.kind.to_string()),
            namespace: Some(namespace),
            name: Some(r.name.clone()),
            uid: id.as_ref().map(|i| i.uid.clone()),
            resource_version: id.and_then(|i| i.resource_version),
            ..ObjectReference::default()
        }
    }
}

impl KubeSink {
    /// The uid and resourceVersion last seen of `r`.
    fn identity(&self, r: &ObjectRef) -> Option<ObjectIdentity> {
        if r.kind == Kind::Service
            && let Some(store) = self.services.get()
        {
            return store
                .get(&format!("{}/{}", r.namespace, r.name))
                .and_then(|s| {
                    Some(ObjectIdentity {
                        uid: s.uid()?.to_string(),
                        resource_version: s.resource_version().map(str::to_string),
                    })
                });
        }
        self.uids.lock().expect("uid cache").get(r).cloned()
    }

    /// Writes a Service's status and its `ferrolb.io/ip-allocated-from-pool` annotation in
    /// one server-side apply on `services/{name}/status` (the status subresource of a Service
    /// accepts metadata): one PATCH per allocation. Returns the Service as written.
    pub async fn apply_service_status(&self, w: &ServiceStatusWrite) -> Result<Service, Error> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &w.service.namespace);
        let patch = service_status_patch(w, Timestamp::now());
        api.patch_status(&w.service.name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(|source| Error::Kube {
                what: format!("patch the status of Service {}", w.service),
                source,
            })
    }

    /// Sets (or, with `None`, removes) the `ferrolb.io/ip-allocated-from-pool` annotation, by
    /// server-side apply of that one field on the Service itself. Needed only to remove an
    /// annotation that earlier ferrolb versions applied this way: the status write does not
    /// own that field, so it cannot remove it.
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

impl KubeSink {
    /// The errors our `ConfigurationState` lists (what the previous leader reported); empty
    /// when it does not exist yet.
    pub async fn reported_config_errors(&self) -> Result<Vec<ObjectError>, Error> {
        let api: Api<ConfigurationState> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.get_opt(CONFIG_STATE_NAME).await {
            Ok(state) => Ok(state
                .and_then(|s| s.status)
                .map(|s| s.errors)
                .unwrap_or_default()),
            Err(source) => Err(Error::Kube {
                what: format!(
                    "read ConfigurationState {}/{CONFIG_STATE_NAME}",
                    self.namespace
                ),
                source,
            }),
        }
    }
}

pub(super) fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The server-side-apply body of a Service status write: name, namespace, the pool
/// annotation (absent: removed) and the status.
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
    let mut metadata = json!({"name": w.service.name, "namespace": w.service.namespace});
    if let Some(p) = &w.pool {
        metadata["annotations"] = json!({ ANNOTATION_ALLOCATED_FROM_POOL: p });
    }
    json!({ "apiVersion": "v1", "kind": "Service", "metadata": metadata, "status": status })
}

impl ControllerSink for KubeSink {
    async fn service_status(&mut self, w: &ServiceStatusWrite) -> Result<(), Error> {
        self.apply_service_status(w).await.map(drop)
    }

    async fn service_deleted(&mut self, service: &ServiceKey) -> Result<(), Error> {
        let r = crate::decide::service_ref(service);
        self.uids.lock().expect("uid cache").remove(&r);
        Ok(())
    }

    async fn event(&mut self, e: &ControllerEvent) -> Result<(), Error> {
        self.publish(e).await
    }

    async fn pool_status(&mut self, usage: &[PoolUsage]) -> Result<(), Error> {
        self.write_pool_status(usage).await
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
