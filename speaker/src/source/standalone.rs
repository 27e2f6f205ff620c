//! Standalone mode: `*.yaml`/`*.yml` files directly in DIR (polled; each file keeps its last
//! good content while an edit breaks it), Service IPs from the controller's
//! `DIR/.ferrolb/status.yaml`, other speakers' links from `DIR/.ferrolb/speaker-*.yaml`; this
//! node's state goes to `DIR/.ferrolb/speaker-<node>.yaml` (written atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};
use ferrolb_crds::v1alpha1::SpeakerState;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{ClusterSource, ServiceEvent, Snapshot};
use crate::Error;
use crate::links::{LINKS_ANNOTATION, parse_digest};

/// Files larger than this are not read.
const MAX_FILE_BYTES: u64 = 8 << 20;
/// At most this many files per scan.
const MAX_FILES: usize = 1000;

/// The directory of the state files (`DIR/.ferrolb`).
pub fn state_dir(dir: &Path) -> PathBuf {
    dir.join(".ferrolb")
}

/// Path of one node's state file.
pub fn state_file(dir: &Path, node: &str) -> PathBuf {
    state_dir(dir).join(format!("speaker-{node}.yaml"))
}

#[derive(Default)]
struct FileState {
    contents: Vec<u8>,
    good: Option<ClusterResources>,
    errors: Vec<String>,
}

/// The directory's content, rescanned by [`Dir::scan`].
pub struct Dir {
    dir: PathBuf,
    node: String,
    files: BTreeMap<String, FileState>,
    status: Option<(Vec<u8>, StandaloneStatus)>,
    status_error: Option<String>,
    peers: BTreeMap<String, (Vec<u8>, Option<SpeakerState>)>,
    dir_error: Option<String>,
}

impl Dir {
    pub fn new(dir: impl Into<PathBuf>, node: impl Into<String>) -> Dir {
        Dir {
            dir: dir.into(),
            node: node.into(),
            files: BTreeMap::new(),
            status: None,
            status_error: None,
            peers: BTreeMap::new(),
            dir_error: None,
        }
    }

    /// Reads what changed since the last scan; returns whether anything did.
    pub fn scan(&mut self) -> bool {
        let mut changed = false;
        let mut seen = Vec::new();
        match list(&self.dir, |n| n.ends_with(".yaml") || n.ends_with(".yml")) {
            Ok(names) => {
                if self.dir_error.take().is_some() {
                    changed = true;
                }
                for name in names.into_iter().take(MAX_FILES) {
                    let Some(bytes) = read_bounded(&self.dir.join(&name)) else {
                        continue;
                    };
                    seen.push(name.clone());
                    let st = self.files.entry(name.clone()).or_default();
                    if st.contents == bytes && (st.good.is_some() || !st.errors.is_empty()) {
                        continue;
                    }
                    changed = true;
                    st.contents = bytes;
                    let text = String::from_utf8_lossy(&st.contents);
                    let loaded = ferrolb_crds::yaml::load_str(&name, &text);
                    if loaded.errors.is_empty() {
                        st.good = Some(loaded.resources);
                        st.errors.clear();
                    } else {
                        st.errors = loaded.errors.iter().map(|e| e.to_string()).collect();
                        warn!(file = %name, errors = ?st.errors, kept_previous = st.good.is_some(), "manifest file does not load");
                    }
                }
            }
            Err(e) => {
                let msg = format!("{}: {e}", self.dir.display());
                if self.dir_error.as_ref() != Some(&msg) {
                    warn!(dir = %self.dir.display(), error = %e, "cannot list the manifests directory");
                    self.dir_error = Some(msg);
                    changed = true;
                }
                return changed;
            }
        }
        let before = self.files.len();
        self.files.retain(|n, _| seen.contains(n));
        changed |= before != self.files.len();

        // The controller's status file.
        let status_path = self.dir.join(STATUS_FILE);
        match read_bounded(&status_path) {
            Some(bytes) => {
                if self.status.as_ref().map(|s| &s.0) != Some(&bytes) {
                    match serde_saphyr::from_slice::<StandaloneStatus>(&bytes) {
                        Ok(st) => {
                            self.status = Some((bytes, st));
                            self.status_error = None;
                            changed = true;
                        }
                        Err(e) => {
                            // Written atomically, so this is a real error: keep the last good.
                            let msg = format!("{}: {e}", status_path.display());
                            if self.status_error.as_ref() != Some(&msg) {
                                warn!(file = %status_path.display(), error = %e, "controller status file does not parse");
                                self.status_error = Some(msg);
                                changed = true;
                            }
                        }
                    }
                }
            }
            None => {
                if self.status.take().is_some() {
                    changed = true;
                }
            }
        }

        // Other speakers' state files.
        let sdir = state_dir(&self.dir);
        let mine = format!("speaker-{}.yaml", self.node);
        let names = list(&sdir, |n| {
            n.starts_with("speaker-") && n.ends_with(".yaml") && n != mine
        })
        .unwrap_or_default();
        let before: Vec<String> = self.peers.keys().cloned().collect();
        self.peers.retain(|n, _| names.contains(n));
        changed |= before.len() != self.peers.len();
        for name in names.into_iter().take(MAX_FILES) {
            let Some(bytes) = read_bounded(&sdir.join(&name)) else {
                continue;
            };
            if self.peers.get(&name).map(|p| &p.0) == Some(&bytes) {
                continue;
            }
            let parsed = serde_saphyr::from_slice::<SpeakerState>(&bytes).ok();
            self.peers.insert(name, (bytes, parsed));
            changed = true;
        }
        changed
    }

    /// Everything in force now.
    pub fn snapshot(&self) -> Snapshot {
        let mut resources = ClusterResources::default();
        let mut errors = Vec::new();
        for st in self.files.values() {
            if let Some(good) = &st.good {
                resources.extend(good.clone());
            }
            errors.extend(st.errors.iter().cloned());
        }
        errors.extend(self.dir_error.iter().cloned());
        errors.extend(self.status_error.iter().cloned());
        let ingress = self
            .status
            .as_ref()
            .map(|(_, st)| {
                st.services
                    .iter()
                    .map(|s| (format!("{}/{}", s.namespace, s.name), s.ips()))
                    .collect()
            })
            .unwrap_or_default();
        let mut peer_links = BTreeMap::new();
        for (_, state) in self.peers.values() {
            let Some(state) = state else { continue };
            let node = state.spec.node_name.clone();
            let digest = state
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LINKS_ANNOTATION));
            if let Some(Ok(links)) = digest.map(|d| parse_digest(d))
                && !node.is_empty()
                && node != self.node
            {
                peer_links.insert(node, links);
            }
        }
        Snapshot {
            resources,
            ingress: Some(ingress),
            peer_links,
            errors,
            synced: true,
            speakers: None,
        }
    }
}

fn list(dir: &Path, keep: impl Fn(&str) -> bool) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str()
            && keep(name)
            && !name.starts_with('.')
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE_BYTES {
        warn!(file = %path.display(), size = meta.len(), "file too large, not read");
        return None;
    }
    std::fs::read(path).ok()
}

/// Writes through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The standalone [`ClusterSource`]: a task rescans DIR every `poll` interval.
pub struct Standalone {
    dir: PathBuf,
    node: String,
    rx: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<()>,
}

impl Standalone {
    /// Scans once (so the first snapshot is complete), then keeps polling on a task.
    pub fn start(
        dir: impl Into<PathBuf>,
        node: impl Into<String>,
        poll: Duration,
    ) -> Result<Standalone, Error> {
        let dir = dir.into();
        let node = node.into();
        std::fs::read_dir(&dir).map_err(|source| Error::ReadDir {
            path: dir.clone(),
            source,
        })?;
        let mut d = Dir::new(dir.clone(), node.clone());
        d.scan();
        let (tx, rx) = watch::channel(Arc::new(d.snapshot()));
        info!(dir = %dir.display(), "standalone mode: watching the manifests directory");
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (d2, changed) = tokio::task::spawn_blocking(move || {
                    let c = d.scan();
                    (d, c)
                })
                .await
                .expect("directory scan does not panic");
                d = d2;
                if changed && tx.send(Arc::new(d.snapshot())).is_err() {
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
                write_atomic(&path, text.as_bytes())
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

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrolb-spk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const POOL: &str = "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ferrolb-system}\nspec: {addresses: [192.0.2.200-192.0.2.210]}\n";

    #[test]
    fn reads_files_keeps_the_last_good_version_and_reads_status_and_peer_links() {
        let d = tmpdir("scan");
        std::fs::write(d.join("pool.yaml"), POOL).unwrap();
        std::fs::write(d.join("notes.txt"), "ignored").unwrap();
        let mut dir = Dir::new(&d, "n1");
        assert!(dir.scan());
        assert!(!dir.scan(), "nothing changed");
        assert_eq!(dir.snapshot().resources.pools.len(), 1);

        std::fs::write(d.join("pool.yaml"), "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: 7, autoAssign: [}\n").unwrap();
        assert!(dir.scan());
        let snap = dir.snapshot();
        assert_eq!(snap.resources.pools.len(), 1, "last good version kept");
        assert_eq!(snap.errors.len(), 1);
        assert!(snap.errors[0].contains("pool.yaml"), "{:?}", snap.errors);

        std::fs::create_dir_all(state_dir(&d)).unwrap();
        std::fs::write(d.join(STATUS_FILE), "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 192.0.2.200\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n").unwrap();
        std::fs::write(
            state_file(&d, "n2"),
            "apiVersion: ferrolb.io/v1alpha1\nkind: SpeakerState\nmetadata:\n  name: n2\n  annotations: {ferrolb.io/l2-links: \"eth0=192.0.2.0/24\"}\nspec: {nodeName: n2}\n",
        )
        .unwrap();
        assert!(dir.scan());
        let snap = dir.snapshot();
        assert_eq!(
            snap.ingress.unwrap()["default/web"],
            vec!["192.0.2.200".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(snap.peer_links["n2"][0].name, "eth0");

        std::fs::remove_file(d.join("pool.yaml")).unwrap();
        assert!(dir.scan());
        assert!(
            dir.snapshot().resources.pools.is_empty(),
            "a deleted file takes its objects away"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
