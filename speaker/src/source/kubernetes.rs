//! Kubernetes mode: kube-runtime reflectors for Services, EndpointSlices, Nodes, Namespaces,
//! Secrets (install namespace) and the ferrolb kinds, plus the other speakers'
//! `SpeakerState`s (for their links digest). This node's state is server-side applied to its
//! `SpeakerState` (object + status subresource) and `ConfigurationState` `speaker-<node>`,
//! both owned by the Node; Events (events.k8s.io) name the object's UID and resource version.

mod records;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use ferrolb_crds::ClusterResources;
use ferrolb_crds::config::{ConfigError, Kind};
use ferrolb_crds::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigurationState, IPAddressPool,
    L2Advertisement, SpeakerState,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tracing::debug;

use ferrolb_cluster::kube::{
    Keyed, RecordStore, WatchBackoff, log_watch_error, record_store, trim,
};
pub use writes::{apply_bodies, config_state_bodies, config_state_name, regarding};

use super::{ClusterSource, ServiceEvent, Snapshot, speaker_pods};
use crate::Error;
use crate::cluster::{ServiceRecord, SliceRecord, Workloads};
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
    services: RecordStore<ServiceRecord>,
    slices: RecordStore<SliceRecord>,
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
            services: Vec::new(),
            endpoint_slices: Vec::new(),
            nodes: all(&self.nodes),
            namespaces: all(&self.namespaces),
            secrets: all(&self.secrets),
        };
        Snapshot {
            resources,
            // The records are shared with the stores, not copied.
            workloads: Workloads {
                services: self.services.state(),
                slices: self.slices.state(),
            },
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
    stores: Stores,
    /// Configuration errors already sent as Events (each is sent once per process).
    reported: Arc<Mutex<BTreeSet<String>>>,
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

/// Page size of the Service and EndpointSlice lists. A page is held twice while it turns
/// into records (the JSON text and the decoded objects): kube's default of 500 made the
/// initial list the speaker's peak memory; 100 objects per page keep it small at the cost
/// of more list requests (100 for 10,000 Services).
pub const LIST_PAGE: u32 = 100;

/// Jitter of the speakers' reconnect backoff: each delay lengthened by up to a quarter, so
/// that a thousand speakers do not re-list in the same instant after an API server outage.
pub const BACKOFF_JITTER: f64 = 0.25;

/// The reconnect backoff of every reflector ([`WatchBackoff`] with [`BACKOFF_JITTER`]).
pub fn watch_backoff() -> WatchBackoff {
    WatchBackoff::new(BACKOFF_JITTER)
}

/// Label of the speaker DaemonSet's Pods.
pub const SPEAKER_POD_SELECTOR: &str = "app.kubernetes.io/component=speaker";

fn watch_into<K>(api: Api<K>, changed: Arc<Notify>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    watch_with(api, watcher::Config::default(), changed, |ev| {
        Some(ev.modify(trim::<K>))
    })
}

/// A reflector over `api` whose store keeps what `keep` makes of each object (the object
/// trimmed); `changed` is notified after every event.
fn watch_with<K, R>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
    keep: fn(watcher::Event<K>) -> Option<watcher::Event<R>>,
) -> (Store<R>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
    R: reflector::Lookup + Clone + Send + Sync + 'static,
    R::DynamicType: std::hash::Hash + Eq + Clone + Default + Send + Sync,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, config)
        .backoff(watch_backoff())
        .filter_map(move |r| std::future::ready(r.map(keep).transpose()));
    let stream = reflector::reflector(writer, events);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => changed.notify_one(),
                Err(error) => watch_failed::<K>(&error),
            }
        }
    });
    (store, task)
}

/// A watch of `api` into a [`RecordStore`] of what `record` makes of each object (the
/// Services and EndpointSlices: many, so no whole object is kept).
fn watch_records<K, R>(
    api: Api<K>,
    changed: Arc<Notify>,
    record: fn(watcher::Event<K>) -> Option<watcher::Event<R>>,
) -> (RecordStore<R>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
    R: Keyed + Send + Sync + 'static,
{
    let (store, mut writer) = record_store();
    let config = watcher::Config::default().page_size(LIST_PAGE);
    let events = watcher(api, config).backoff(watch_backoff());
    let task = tokio::spawn(async move {
        futures::pin_mut!(events);
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) => {
                    if let Some(ev) = record(ev) {
                        writer.apply(ev);
                        changed.notify_one();
                    }
                }
                Err(error) => watch_failed::<K>(&error),
            }
        }
    });
    (store, task)
}

/// Logs a failed watch of `K` (it is retried with backoff).
fn watch_failed<K: Resource>(error: &watcher::Error)
where
    K::DynamicType: Default,
{
    log_watch_error(&K::kind(&Default::default()), error);
}

/// [`trim`], and what the speaker never reads of a Node's status (its image list alone is
/// often tens of KiB): it reads labels, the UID and the conditions.
pub fn trim_node(n: &mut Node) {
    trim(n);
    if let Some(s) = n.status.as_mut() {
        s.images = None;
        s.node_info = None;
        s.volumes_attached = None;
        s.volumes_in_use = None;
        s.capacity = None;
        s.allocatable = None;
    }
}

impl Stores {
    /// One watch per kind into a new store; `changed` is notified after every event.
    fn watch(
        client: &Client,
        namespace: &str,
        changed: &Arc<Notify>,
    ) -> (Stores, Vec<tokio::task::JoinHandle<()>>) {
        let mut tasks = Vec::new();
        let c = || client.clone();
        macro_rules! w {
            ($api:expr) => {{
                let (s, t) = watch_into($api, changed.clone());
                tasks.push(t);
                s
            }};
        }
        macro_rules! with {
            ($started:expr) => {{
                let (s, t) = $started;
                tasks.push(t);
                s
            }};
        }
        let stores = Stores {
            pools: w!(Api::namespaced(c(), namespace)),
            l2: w!(Api::namespaced(c(), namespace)),
            bgp: w!(Api::namespaced(c(), namespace)),
            peers: w!(Api::namespaced(c(), namespace)),
            communities: w!(Api::namespaced(c(), namespace)),
            bfd: w!(Api::namespaced(c(), namespace)),
            services: with!(watch_records(
                Api::<Service>::all(c()),
                changed.clone(),
                records::service_event
            )),
            slices: with!(watch_records(
                Api::<EndpointSlice>::all(c()),
                changed.clone(),
                records::slice_event
            )),
            nodes: with!(watch_with(
                Api::<Node>::all(c()),
                watcher::Config::default(),
                changed.clone(),
                |ev| Some(ev.modify(trim_node))
            )),
            namespaces: w!(Api::all(c())),
            secrets: w!(Api::namespaced(c(), namespace)),
            states: w!(Api::namespaced(c(), namespace)),
            pods: with!(watch_with(
                Api::<Pod>::namespaced(c(), namespace),
                watcher::Config::default().labels(SPEAKER_POD_SELECTOR),
                changed.clone(),
                |ev| Some(ev.modify(trim::<Pod>))
            )),
        };
        (stores, tasks)
    }

    /// Resolves once every store has its initial list.
    async fn wait_until_ready(&self) {
        let _ = self.pools.wait_until_ready().await;
        let _ = self.l2.wait_until_ready().await;
        let _ = self.bgp.wait_until_ready().await;
        let _ = self.peers.wait_until_ready().await;
        let _ = self.communities.wait_until_ready().await;
        let _ = self.bfd.wait_until_ready().await;
        self.services.wait_until_ready().await;
        self.slices.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.states.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
    }

    /// Once every list is in, a snapshot for `node` after each change, until `tx` is closed.
    async fn publish(self, node: String, tx: watch::Sender<Arc<Snapshot>>, changed: Arc<Notify>) {
        self.wait_until_ready().await;
        debug!("every reflector has its initial list");
        loop {
            if tx.send(Arc::new(self.snapshot(&node, true))).is_err() {
                return;
            }
            changed.notified().await;
        }
    }
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
        let (stores, mut tasks) = Stores::watch(&client, &namespace, &changed);
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        tasks.push(tokio::spawn(stores.clone().publish(
            node.clone(),
            tx,
            changed,
        )));
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
            stores,
            reported: Arc::default(),
            rx,
            tasks,
        }
    }

    /// UID and resource version of an object as the reflectors last saw it.
    fn seen(&self, kind: Kind, namespace: &str, name: &str) -> Option<(String, String)> {
        fn meta<K>(s: &Store<K>, ns: &str, name: &str) -> Option<(String, String)>
        where
            K: Resource + Clone + 'static,
            K::DynamicType: std::hash::Hash + Eq + Clone + Default,
        {
            let o = s.get(&reflector::ObjectRef::new(name).within(ns))?;
            let m = o.meta();
            Some((
                m.uid.clone()?,
                m.resource_version.clone().unwrap_or_default(),
            ))
        }
        let s = &self.stores;
        match kind {
            Kind::IPAddressPool => meta(&s.pools, namespace, name),
            Kind::L2Advertisement => meta(&s.l2, namespace, name),
            Kind::BGPAdvertisement => meta(&s.bgp, namespace, name),
            Kind::BGPPeer => meta(&s.peers, namespace, name),
            Kind::Community => meta(&s.communities, namespace, name),
            Kind::BFDProfile => meta(&s.bfd, namespace, name),
            Kind::Service => {
                let r = s.services.get(&format!("{namespace}/{name}"))?;
                Some((
                    r.uid.as_ref()?.to_string(),
                    r.resource_version
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                ))
            }
        }
    }

    /// UID of this node's Node object, once listed.
    fn node_uid(&self) -> Option<String> {
        self.stores
            .nodes
            .get(&reflector::ObjectRef::new(&self.node))
            .and_then(|n| n.metadata.uid.clone())
    }
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
        let (namespace, name) = event
            .service
            .split_once('/')
            .unwrap_or(("default", event.service.as_str()));
        let reference = regarding(
            Kind::Service,
            namespace,
            name,
            self.seen(Kind::Service, namespace, name),
        );
        Box::pin(async move {
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

    fn config_state(&self, errors: Vec<ConfigError>) -> BoxFuture<'static, Result<(), Error>> {
        let api: Api<ConfigurationState> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = config_state_name(&self.node);
        let now = k8s_openapi::jiff::Timestamp::now();
        let (object, status) = config_state_bodies(
            &self.node,
            &self.namespace,
            self.node_uid().as_deref(),
            &errors,
            Some(Time(now)),
        );
        // One Warning Event per error this process has not reported yet, on the invalid
        // object (the controller reports the same errors as `controller`; the reporting
        // instance tells the speakers apart).
        let fresh: Vec<(ObjectReference, String)> = {
            let mut reported = self.reported.lock().expect("reported errors");
            errors
                .iter()
                .filter(|e| reported.insert(e.to_string()))
                .map(|e| {
                    let o = &e.object;
                    let ns = if o.namespace.is_empty() {
                        self.namespace.as_str()
                    } else {
                        o.namespace.as_str()
                    };
                    let r = regarding(o.kind, ns, &o.name, self.seen(o.kind, ns, &o.name));
                    (r, e.to_string())
                })
                .collect()
        };
        let recorder = self.recorder.clone();
        let reported = self.reported.clone();
        Box::pin(async move {
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            let what = |s: &str| format!("{s} ConfigurationState {name}");
            api.patch(&name, &pp, &Patch::Apply(&object))
                .await
                .map_err(|source| Error::Kube {
                    action: what("applying"),
                    source,
                })?;
            api.patch_status(&name, &pp, &Patch::Apply(&status))
                .await
                .map_err(|source| Error::Kube {
                    action: what("applying the status of"),
                    source,
                })?;
            let mut fresh = fresh.into_iter();
            while let Some((reference, message)) = fresh.next() {
                let ev = Event {
                    type_: EventType::Warning,
                    reason: "InvalidConfiguration".into(),
                    note: Some(message.clone()),
                    action: "Validate".into(),
                    secondary: None,
                };
                if let Err(source) = recorder.publish(&ev, &reference).await {
                    // This one and the rest are sent with the next report.
                    let mut reported = reported.lock().expect("reported errors");
                    reported.remove(&message);
                    for (_, m) in fresh {
                        reported.remove(&m);
                    }
                    return Err(Error::Kube {
                        action: format!("recording event InvalidConfiguration: {message}"),
                        source,
                    });
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
