//! Kubernetes mode: kube-runtime reflectors for Services, EndpointSlices, Nodes, Namespaces,
//! Secrets (install namespace) and the ferrolb kinds, plus the other speakers'
//! `SpeakerState`s (for their links digest). This node's state is server-side applied to its
//! `SpeakerState` (object + status subresource); Service events go through the events API.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement, SpeakerState,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use super::{ClusterSource, ServiceEvent, Snapshot, speaker_pods};
use crate::Error;
use crate::links::{LINKS_ANNOTATION, parse_digest};

/// Field manager of the speaker's server-side applies.
pub const FIELD_MANAGER: &str = "ferrolb-speaker";

#[derive(Clone)]
struct Stores {
    pools: Store<IPAddressPool>,
    l2: Store<L2Advertisement>,
    bgp: Store<BGPAdvertisement>,
    peers: Store<BGPPeer>,
    communities: Store<Community>,
    bfd: Store<BFDProfile>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    namespaces: Store<Namespace>,
    secrets: Store<Secret>,
    states: Store<SpeakerState>,
    pods: Store<Pod>,
}

fn all<K: Clone + kube::Resource + 'static>(s: &Store<K>) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    s.state().iter().map(|o| (**o).clone()).collect()
}

impl Stores {
    fn snapshot(&self, node: &str, synced: bool) -> Snapshot {
        let resources = ClusterResources {
            pools: all(&self.pools),
            l2_advertisements: all(&self.l2),
            bgp_advertisements: all(&self.bgp),
            bgp_peers: all(&self.peers),
            communities: all(&self.communities),
            bfd_profiles: all(&self.bfd),
            services: all(&self.services),
            endpoint_slices: all(&self.slices),
            nodes: all(&self.nodes),
            namespaces: all(&self.namespaces),
            secrets: all(&self.secrets),
        };
        Snapshot {
            resources,
            ingress: None,
            peer_links: peer_links(&all(&self.states), node),
            errors: Vec::new(),
            synced,
            speakers: Some(speaker_pods(&all(&self.pods))),
        }
    }
}

/// Link digests of the other nodes' `SpeakerState`s.
pub fn peer_links(states: &[SpeakerState], me: &str) -> BTreeMap<String, Vec<crate::links::Link>> {
    let mut out = BTreeMap::new();
    for s in states {
        let node = &s.spec.node_name;
        if node.is_empty() || node == me {
            continue;
        }
        let digest = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LINKS_ANNOTATION));
        if let Some(Ok(links)) = digest.map(|d| parse_digest(d)) {
            out.insert(node.clone(), links);
        }
    }
    out
}

/// The Kubernetes [`ClusterSource`].
pub struct Kubernetes {
    client: Client,
    node: String,
    namespace: String,
    recorder: Recorder,
    rx: watch::Receiver<Arc<Snapshot>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Label of the speaker DaemonSet's Pods.
pub const SPEAKER_POD_SELECTOR: &str = "app.kubernetes.io/component=speaker";

fn watch_into<K>(api: Api<K>, changed: Arc<Notify>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    watch_with(api, watcher::Config::default(), changed)
}

fn watch_with<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => changed.notify_one(),
                Err(error) => {
                    warn!(kind = %K::kind(&Default::default()), %error, "watch failed; retrying")
                }
            }
        }
    });
    (store, task)
}

impl Kubernetes {
    /// Starts the reflectors; the first snapshot marked `synced` comes once every list is in.
    pub fn start(
        client: Client,
        node: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Kubernetes {
        let node = node.into();
        let namespace = namespace.into();
        let changed = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let ns = |c: &Client| c.clone();
        macro_rules! w {
            ($api:expr) => {{
                let (s, t) = watch_into($api, changed.clone());
                tasks.push(t);
                s
            }};
        }
        let c = &client;
        let stores = Stores {
            pools: w!(Api::namespaced(ns(c), &namespace)),
            l2: w!(Api::namespaced(ns(c), &namespace)),
            bgp: w!(Api::namespaced(ns(c), &namespace)),
            peers: w!(Api::namespaced(ns(c), &namespace)),
            communities: w!(Api::namespaced(ns(c), &namespace)),
            bfd: w!(Api::namespaced(ns(c), &namespace)),
            services: w!(Api::all(ns(c))),
            slices: w!(Api::all(ns(c))),
            nodes: w!(Api::all(ns(c))),
            namespaces: w!(Api::all(ns(c))),
            secrets: w!(Api::namespaced(ns(c), &namespace)),
            states: w!(Api::namespaced(ns(c), &namespace)),
            pods: {
                let (s, t) = watch_with(
                    Api::namespaced(ns(c), &namespace),
                    watcher::Config::default().labels(SPEAKER_POD_SELECTOR),
                    changed.clone(),
                );
                tasks.push(t);
                s
            },
        };
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let me = node.clone();
        tasks.push(tokio::spawn(async move {
            let s = stores.clone();
            let ready = async move {
                let _ = s.pools.wait_until_ready().await;
                let _ = s.l2.wait_until_ready().await;
                let _ = s.bgp.wait_until_ready().await;
                let _ = s.peers.wait_until_ready().await;
                let _ = s.communities.wait_until_ready().await;
                let _ = s.bfd.wait_until_ready().await;
                let _ = s.services.wait_until_ready().await;
                let _ = s.slices.wait_until_ready().await;
                let _ = s.nodes.wait_until_ready().await;
                let _ = s.namespaces.wait_until_ready().await;
                let _ = s.secrets.wait_until_ready().await;
                let _ = s.states.wait_until_ready().await;
                let _ = s.pods.wait_until_ready().await;
            };
            ready.await;
            debug!("every reflector has its initial list");
            loop {
                if tx.send(Arc::new(stores.snapshot(&me, true))).is_err() {
                    return;
                }
                changed.notified().await;
            }
        }));
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.to_string(),
                instance: Some(node.clone()),
            },
        );
        Kubernetes {
            client,
            node,
            namespace,
            recorder,
            rx,
            tasks,
        }
    }
}

/// The server-side apply bodies for a `SpeakerState`: the object (metadata + spec) and its
/// status.
pub fn apply_bodies(state: &SpeakerState) -> (serde_json::Value, serde_json::Value) {
    let object = serde_json::json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "SpeakerState",
        "metadata": {
            "name": state.metadata.name,
            "namespace": state.metadata.namespace,
            "annotations": state.metadata.annotations,
        },
        "spec": state.spec,
    });
    let status = serde_json::json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "SpeakerState",
        "status": state.status,
    });
    (object, status)
}

impl ClusterSource for Kubernetes {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    fn publish(&self, state: SpeakerState) -> BoxFuture<'static, Result<(), Error>> {
        let api: Api<SpeakerState> = Api::namespaced(self.client.clone(), &self.namespace);
        let node = self.node.clone();
        Box::pin(async move {
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let (object, status) = apply_bodies(&state);
            api.patch(&node, &pp, &Patch::Apply(&object))
                .await
                .map_err(|source| Error::Kube {
                    action: format!("applying SpeakerState {node}"),
                    source,
                })?;
            api.patch_status(&node, &pp, &Patch::Apply(&status))
                .await
                .map_err(|source| Error::Kube {
                    action: format!("applying the status of SpeakerState {node}"),
                    source,
                })?;
            Ok(())
        })
    }

    fn service_event(&self, event: ServiceEvent) -> BoxFuture<'static, Result<(), Error>> {
        let recorder = self.recorder.clone();
        Box::pin(async move {
            let (namespace, name) = event
                .service
                .split_once('/')
                .unwrap_or(("default", event.service.as_str()));
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(namespace.to_string()),
                name: Some(name.to_string()),
                ..Default::default()
            };
            let ev = Event {
                type_: EventType::Normal,
                reason: event.reason.clone(),
                note: Some(event.message.clone()),
                action: "Announce".into(),
                secondary: None,
            };
            recorder
                .publish(&ev, &reference)
                .await
                .map_err(|source| Error::Kube {
                    action: format!(
                        "recording event {} on Service {}",
                        event.reason, event.service
                    ),
                    source,
                })
        })
    }
}

#[cfg(test)]
mod tests;
