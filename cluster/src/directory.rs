//! The loader: the manifests directory, each file's last good objects, and the state files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};
use ferrolb_crds::v1alpha1::SpeakerState;
use ferrolb_crds::yaml::{UnknownField, load_str_with};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::files::{Read, Sig, read_if_changed};
use crate::{ClusterView, FileError, Limits, Metrics, STATE_DIR};

/// What to read and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// The manifests directory.
    pub dir: PathBuf,
    /// Also read the state files in `DIR/.ferrolb/` (the controller's status and the other
    /// speakers' states): speakers need them, the controller does not.
    pub state_files: bool,
    /// This node (its own `speaker-NODE.yaml` is not read).
    pub node: Option<String>,
    /// Limits of one scan.
    pub limits: Limits,
    /// A change applies once the directory has been quiet this long...
    pub debounce: Duration,
    /// ... or at the latest this long after the first notification.
    pub max_delay: Duration,
    /// Full rescan interval (a safety net behind the notifications).
    pub rescan: Duration,
}

impl Options {
    /// Defaults: manifests only, 20 ms quiet period (200 ms at most), rescan every 30 s.
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            state_files: false,
            node: None,
            limits: Limits::default(),
            debounce: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            rescan: Duration::from_secs(30),
        }
    }

    /// A speaker's options: manifests plus the state files, except `node`'s own.
    pub fn speaker(dir: impl Into<PathBuf>, node: impl Into<String>) -> Options {
        Options {
            state_files: true,
            node: Some(node.into()),
            ..Options::new(dir)
        }
    }
}

/// What one [`Directory::scan`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The view changed (a new generation).
    pub changed: bool,
    /// A file changed while it was read: scan again shortly.
    pub unsettled: bool,
}

/// One manifest file.
#[derive(Debug, Default)]
struct Entry {
    /// Version last read (`None`: read at the next scan).
    sig: Option<Sig>,
    /// Objects of the last version that loaded.
    good: Option<Arc<ClusterResources>>,
    unknown: Vec<UnknownField>,
    error: Option<FileError>,
}

/// One state file (parsed whole, last good kept).
#[derive(Debug)]
struct Slot<T> {
    sig: Option<Sig>,
    /// Bytes of the last version read (a rewrite with the same content changes nothing).
    bytes: Vec<u8>,
    good: Option<T>,
    error: Option<FileError>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            sig: None,
            bytes: Vec::new(),
            good: None,
            error: None,
        }
    }
}

/// The manifests directory as last read. [`Directory::scan`] reads what changed (blocking
/// file I/O: run it off the async threads); [`Directory::view`] is the result.
#[derive(Debug)]
pub struct Directory {
    opts: Options,
    metrics: Metrics,
    files: BTreeMap<String, Entry>,
    status: Slot<StandaloneStatus>,
    speakers: BTreeMap<String, Slot<SpeakerState>>,
    dir_error: Option<FileError>,
    view: Arc<ClusterView>,
}

impl Directory {
    /// A directory not read yet (its view is empty, generation 0).
    pub fn new(opts: Options, metrics: Metrics) -> Directory {
        Directory {
            opts,
            metrics,
            files: BTreeMap::new(),
            status: Slot::default(),
            speakers: BTreeMap::new(),
            dir_error: None,
            view: Arc::new(ClusterView::default()),
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The view as of the last scan.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.clone()
    }

    /// Reads every file whose version changed; a new view when anything did.
    pub fn scan(&mut self) -> Scan {
        let mut scan = Scan::default();
        let dir_error = self.scan_manifests(&mut scan);
        if dir_error != self.dir_error {
            if let Some(e) = &dir_error {
                warn!(dir = %self.opts.dir.display(), error = %e, "manifests directory not applied");
            }
            self.dir_error = dir_error;
            scan.changed = true;
        }
        if self.opts.state_files {
            self.scan_state_files(&mut scan);
        }
        if scan.changed || self.view.generation == 0 {
            scan.changed = true;
            self.rebuild();
        }
        scan
    }

    /// Returns the directory's own error (unreadable, too many files): then nothing in it is
    /// applied and every file keeps what it had.
    fn scan_manifests(&mut self, scan: &mut Scan) -> Option<FileError> {
        let dir = self.opts.dir.clone();
        let kept = !self.files.is_empty();
        let names = match list(&dir, |n| n.ends_with(".yaml") || n.ends_with(".yml")) {
            Ok(names) => names,
            Err(e) => {
                self.metrics.rejected("dir_unreadable");
                return Some(FileError {
                    file: ".".into(),
                    line: None,
                    reason: format!("cannot read the directory {}: {e}", dir.display()),
                    kept_previous: kept,
                });
            }
        };
        let max = self.opts.limits.max_files;
        if names.len() > max {
            self.metrics.rejected("too_many_files");
            return Some(FileError {
                file: ".".into(),
                line: None,
                reason: format!(
                    "{} manifest files, more than the limit of {max}: the new state of the directory is refused",
                    names.len()
                ),
                kept_previous: kept,
            });
        }
        let before = self.files.len();
        self.files.retain(|n, _| names.binary_search(n).is_ok());
        if self.files.len() != before {
            scan.changed = true;
        }
        for name in names {
            let entry = self.files.entry(name.clone()).or_default();
            let read =
                read_if_changed(&dir.join(&name), entry.sig, self.opts.limits.max_file_bytes);
            let changed = match read {
                Read::Unchanged => false,
                Read::Unsettled => {
                    scan.unsettled = true;
                    false
                }
                Read::Gone => {
                    self.files.remove(&name);
                    true
                }
                Read::Failed(sig, reason) => {
                    let reason_label = if reason.starts_with("file is") {
                        "too_big"
                    } else {
                        "unreadable"
                    };
                    entry.sig = sig;
                    reject(entry, &name, None, reason, &self.metrics, reason_label)
                }
                Read::Changed(sig, bytes) => {
                    entry.sig = Some(sig);
                    load(entry, &name, &bytes, &self.opts.limits, &self.metrics)
                }
            };
            scan.changed |= changed;
        }
        None
    }

    fn scan_state_files(&mut self, scan: &mut Scan) {
        let state = self.opts.dir.join(STATE_DIR);
        let max = self.opts.limits.max_file_bytes;
        let status_name = STATUS_FILE.to_string();
        scan.changed |= read_slot(
            &mut self.status,
            &self.opts.dir.join(STATUS_FILE),
            &status_name,
            max,
            scan,
        );
        let mine = self.opts.node.as_ref().map(|n| format!("speaker-{n}.yaml"));
        let names = list(&state, |n| {
            n.starts_with("speaker-") && n.ends_with(".yaml") && Some(n) != mine.as_deref()
        })
        .unwrap_or_default();
        let before = self.speakers.len();
        self.speakers.retain(|n, _| names.binary_search(n).is_ok());
        scan.changed |= before != self.speakers.len();
        for name in names {
            let slot = self.speakers.entry(name.clone()).or_default();
            let label = format!("{STATE_DIR}/{name}");
            scan.changed |= read_slot(slot, &state.join(&name), &label, max, scan);
        }
    }

    fn rebuild(&mut self) {
        let mut resources = ClusterResources::default();
        let mut file_errors: Vec<FileError> = self.dir_error.iter().cloned().collect();
        let mut unknown_fields = Vec::new();
        for e in self.files.values() {
            if let Some(good) = &e.good {
                resources.extend(ClusterResources::clone(good));
            }
            unknown_fields.extend(e.unknown.iter().cloned());
            file_errors.extend(e.error.iter().cloned());
        }
        file_errors.extend(self.status.error.iter().cloned());
        let mut speakers = BTreeMap::new();
        for slot in self.speakers.values() {
            file_errors.extend(slot.error.iter().cloned());
            if let Some(s) = &slot.good
                && !s.spec.node_name.is_empty()
            {
                speakers.insert(s.spec.node_name.clone(), s.clone());
            }
        }
        let set = |g: &prometheus_client::metrics::gauge::Gauge, n: usize| {
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set(&self.metrics.file_errors, file_errors.len());
        set(&self.metrics.unknown_fields, unknown_fields.len());
        set(
            &self.metrics.files,
            self.files.values().filter(|e| e.good.is_some()).count(),
        );
        self.metrics.reloads.inc();
        self.view = Arc::new(ClusterView {
            generation: self.view.generation + 1,
            resources,
            file_errors,
            unknown_fields,
            controller_status: self.status.good.clone(),
            speakers,
        });
    }
}

/// Parses a new version of a manifest file: all of it loads, or the last good version stays.
/// Returns whether the entry changed.
fn load(entry: &mut Entry, name: &str, bytes: &[u8], limits: &Limits, metrics: &Metrics) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return reject(
            entry,
            name,
            None,
            "file is not UTF-8".into(),
            metrics,
            "parse",
        );
    };
    let loaded = load_str_with(name, text, &limits.parse);
    if let Some(first) = loaded.errors.first() {
        let (line, mut reason) = describe(first);
        if loaded.errors.len() > 1 {
            reason.push_str(&format!(" (and {} more errors)", loaded.errors.len() - 1));
        }
        for e in &loaded.errors {
            warn!(file = %name, kept_previous = entry.good.is_some(), error = %e, "manifest file does not load");
        }
        return reject(entry, name, line, reason, metrics, "parse");
    }
    for u in &loaded.unknown_fields {
        warn!(file = %u.file, object = %u.object, field = %u.path, suggestion = ?u.suggestion, "{u}");
    }
    info!(file = %name, objects = loaded.resources.services.len(), "manifest file loaded");
    entry.good = Some(Arc::new(loaded.resources));
    entry.unknown = loaded.unknown_fields;
    entry.error = None;
    true
}

/// Keeps the last good version of a file and records why the new one is refused.
fn reject(
    entry: &mut Entry,
    name: &str,
    line: Option<u64>,
    reason: String,
    metrics: &Metrics,
    label: &str,
) -> bool {
    metrics.rejected(label);
    let error = FileError {
        file: name.to_string(),
        line,
        reason,
        kept_previous: entry.good.is_some(),
    };
    warn!(file = %name, error = %error, "manifest file refused");
    let changed = entry.error.as_ref() != Some(&error);
    entry.error = Some(error);
    changed
}

/// Line and one-sentence reason of a loader error.
fn describe(e: &ferrolb_crds::Error) -> (Option<u64>, String) {
    use ferrolb_crds::Error as E;
    match e {
        // The parser's message carries a source snippet after its first line.
        E::Yaml {
            line,
            what,
            message,
            ..
        } => {
            let mut lines = message.lines();
            let mut reason = format!("{what}: {}", lines.next().unwrap_or_default());
            if let Some(limits) = lines.find(|l| l.contains("parse limits")) {
                reason.push(' ');
                reason.push_str(limits.trim());
            }
            (Some(*line), reason)
        }
        E::Object { line, message, .. } => (Some(*line), message.clone()),
        E::Limit {
            what, value, limit, ..
        } => (
            None,
            format!("{value} {what}, more than the limit of {limit} per file"),
        ),
        other => (None, other.to_string()),
    }
}

/// Reads one state file into `slot`; returns whether it changed.
fn read_slot<T: DeserializeOwned>(
    slot: &mut Slot<T>,
    path: &Path,
    label: &str,
    max: u64,
    scan: &mut Scan,
) -> bool {
    let fail = |slot: &mut Slot<T>, reason: String| {
        let error = FileError {
            file: label.to_string(),
            line: None,
            reason,
            kept_previous: slot.good.is_some(),
        };
        let changed = slot.error.as_ref() != Some(&error);
        if changed {
            warn!(file = label, error = %error, "state file does not load");
        }
        slot.error = Some(error);
        changed
    };
    match read_if_changed(path, slot.sig, max) {
        Read::Unchanged => false,
        Read::Unsettled => {
            scan.unsettled = true;
            false
        }
        Read::Gone => {
            let changed = slot.good.is_some() || slot.error.is_some();
            *slot = Slot::default();
            changed
        }
        Read::Failed(sig, reason) => {
            slot.sig = sig;
            fail(slot, reason)
        }
        Read::Changed(sig, bytes) => {
            slot.sig = Some(sig);
            if bytes == slot.bytes && slot.error.is_none() {
                return false;
            }
            match serde_saphyr::from_slice::<T>(&bytes) {
                Ok(v) => {
                    slot.bytes = bytes;
                    slot.good = Some(v);
                    slot.error = None;
                    true
                }
                Err(e) => fail(
                    slot,
                    e.to_string().lines().next().unwrap_or_default().to_string(),
                ),
            }
        }
    }
}

/// Names of the regular files (or symlinks to them) directly in `dir` that `keep` accepts,
/// sorted; hidden names are skipped.
fn list(dir: &Path, keep: impl Fn(&str) -> bool) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') || !keep(&name) {
            continue;
        }
        // Symlinks count when they point at a file (a ConfigMap mount is made of them).
        let is_file = match entry.file_type() {
            Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()),
            Ok(t) => t.is_file(),
            Err(_) => false,
        };
        if is_file {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}
