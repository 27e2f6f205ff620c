//! Standalone mode: the cluster as `ferrolb-cluster` sees the manifests directory (one loader
//! for both binaries: inotify, per-file last good, limits), Service IPs from the controller's
//! `DIR/.ferrolb/status.yaml`, other speakers' links from `DIR/.ferrolb/speaker-*.yaml`; this
//! node's state goes to `DIR/.ferrolb/speaker-<node>.yaml` (written atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrolb_cluster::{ClusterView, Watcher};
use ferrolb_crds::v1alpha1::SpeakerState;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::info;

use super::{ClusterSource, ServiceEvent, Snapshot};
use crate::Error;
use crate::cluster::Workloads;
use crate::links::{LINKS_ANNOTATION, parse_digest};

/// Path of one node's state file.
pub fn state_file(dir: &Path, node: &str) -> PathBuf {
    dir.join(ferrolb_cluster::speaker_state_file(node))
}

/// The speaker's inputs in one view of the directory.
pub fn snapshot(view: &ClusterView, node: &str) -> Snapshot {
    let ingress = view
        .controller_status
        .as_ref()
        .map(|st| {
            st.services
                .iter()
                .map(|s| (format!("{}/{}", s.namespace, s.name), s.ips()))
                .collect()
        })
        .unwrap_or_default();
    let mut peer_links = BTreeMap::new();
    for (name, state) in &view.speakers {
        let digest = state
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LINKS_ANNOTATION));
        if let Some(Ok(links)) = digest.map(|d| parse_digest(d))
            && name != node
        {
            peer_links.insert(name.clone(), links);
        }
    }
    // Services and EndpointSlices become records; only the rest is copied.
    let r = &view.resources;
    let resources = ferrolb_crds::ClusterResources {
        services: Vec::new(),
        endpoint_slices: Vec::new(),
        pools: r.pools.clone(),
        l2_advertisements: r.l2_advertisements.clone(),
        bgp_advertisements: r.bgp_advertisements.clone(),
        bgp_peers: r.bgp_peers.clone(),
        communities: r.communities.clone(),
        bfd_profiles: r.bfd_profiles.clone(),
        nodes: r.nodes.clone(),
        namespaces: r.namespaces.clone(),
        secrets: r.secrets.clone(),
    };
    Snapshot {
        resources,
        workloads: Workloads::from_objects(&r.services, &r.endpoint_slices),
        ingress: Some(ingress),
        peer_links,
        errors: view.file_errors.iter().map(ToString::to_string).collect(),
        synced: true,
        speakers: None,
    }
}

/// The standalone [`ClusterSource`]: a [`Watcher`] on DIR, each view turned into a
/// [`Snapshot`] as it arrives.
pub struct Standalone {
    dir: PathBuf,
    node: String,
    rx: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<()>,
}

impl Standalone {
    /// Reads DIR once (so the first snapshot is complete), then follows its changes.
    pub fn start(
        dir: impl Into<PathBuf>,
        node: impl Into<String>,
        metrics: ferrolb_cluster::Metrics,
    ) -> Result<Standalone, Error> {
        let dir = dir.into();
        let node = node.into();
        let watcher = Watcher::start(ferrolb_cluster::Options::speaker(&dir, &node), metrics)?;
        let mut views = watcher.subscribe();
        let first = views.borrow_and_update().clone();
        let (tx, rx) = watch::channel(Arc::new(snapshot(&first, &node)));
        info!(dir = %dir.display(), "standalone mode: watching the manifests directory");
        let me = node.clone();
        let task = tokio::spawn(async move {
            let _watcher = watcher;
            while views.changed().await.is_ok() {
                let view = views.borrow_and_update().clone();
                if tx.send(Arc::new(snapshot(&view, &me))).is_err() {
                    return;
                }
            }
        });
        Ok(Standalone {
            dir,
            node,
            rx,
            task,
        })
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClusterSource for Standalone {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    fn publish(&self, state: SpeakerState) -> BoxFuture<'static, Result<(), Error>> {
        let path = state_file(&self.dir, &self.node);
        let node = self.node.clone();
        Box::pin(async move {
            let text = serde_saphyr::to_string(&state)
                .map_err(|source| Error::Serialize { node, source })?;
            tokio::task::spawn_blocking(move || {
                ferrolb_cluster::write_atomic(&path, text.as_bytes())
                    .map_err(|source| Error::WriteState { path, source })
            })
            .await
            .expect("file write does not panic")
        })
    }

    fn service_event(&self, event: ServiceEvent) -> BoxFuture<'static, Result<(), Error>> {
        // No event store in standalone mode: the event is a log line (and the speaker's state
        // file says which IPs this node owns).
        Box::pin(async move {
            info!(service = %event.service, reason = %event.reason, message = %event.message, "service event");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_becomes_the_speakers_snapshot() {
        let mut view = ClusterView::default();
        let status = "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 192.0.2.200\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n";
        view.controller_status = Some(serde_saphyr::from_str(status).unwrap());
        let state = "apiVersion: ferrolb.io/v1alpha1\nkind: SpeakerState\nmetadata:\n  name: n2\n  annotations: {ferrolb.io/l2-links: \"eth0=192.0.2.0/24\"}\nspec: {nodeName: n2}\n";
        view.speakers
            .insert("n2".into(), serde_saphyr::from_str(state).unwrap());
        let snap = snapshot(&view, "n1");
        assert_eq!(
            snap.ingress.unwrap()["default/web"],
            vec!["192.0.2.200".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(snap.peer_links["n2"][0].name, "eth0");
        assert!(snap.synced);
    }
}
