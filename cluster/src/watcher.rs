//! Drives a [`Directory`] from file-system notifications: a change applies once the directory
//! has been quiet for `debounce` (at most `max_delay` after the first notification), or
//! [`SETTLE`](crate::pending::SETTLE) after it when it arrived whole into a quiet directory
//! (see [`crate::pending`]); a full rescan every `rescan` catches anything the notifications
//! missed. Idle, nothing runs.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::pending::{Note, Pending};
use crate::{ClusterView, Directory, Error, Metrics, Options, STATE_DIR};

/// A running watcher: the latest view on a `watch` channel. Dropping it stops the task.
#[derive(Debug)]
pub struct Watcher {
    rx: watch::Receiver<Arc<ClusterView>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Sets up the notifications, reads the directory once (so the first view is complete),
    /// then follows changes on a task. Must be called inside a tokio runtime.
    pub fn start(opts: Options, metrics: Metrics) -> Result<Watcher, Error> {
        std::fs::read_dir(&opts.dir).map_err(|source| Error::ReadDir {
            path: opts.dir.clone(),
            source,
        })?;
        if opts.state_files {
            // Speakers write their state files here; create it so it can be watched.
            let _ = std::fs::create_dir_all(opts.dir.join(STATE_DIR));
        }
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let filter = EventFilter::new(&opts);
        let notifier = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let note = match &res {
                Ok(ev) if !filter.relevant(ev) => return,
                Ok(ev) => note_of(ev),
                Err(_) => Note::Rescan,
            };
            let _ = ev_tx.send(note);
        })
        .map_err(|source| Error::Watch {
            path: opts.dir.clone(),
            source,
        })?;
        let mut watches = Watches {
            notifier,
            dir: opts.dir.clone(),
            state_files: opts.state_files,
            watched: Vec::new(),
        };
        watches.refresh();
        let mut dir = Directory::new(opts.clone(), metrics);
        dir.scan();
        let view = dir.view();
        info!(dir = %opts.dir.display(), generation = view.generation, errors = view.file_errors.len(), "watching the manifests directory");
        let (tx, rx) = watch::channel(view);
        let task = tokio::spawn(follow(dir, watches, ev_rx, tx));
        Ok(Watcher { rx, task })
    }

    /// The latest view (each change is a new `Arc` with a higher generation).
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.rx.clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a (relevant) notification says about its files: see [`Note`].
fn note_of(ev: &notify::Event) -> Note {
    if ev.need_rescan() {
        return Note::Rescan;
    }
    let writing = matches!(
        ev.kind,
        EventKind::Create(CreateKind::File | CreateKind::Any)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
    );
    match ev.paths.first() {
        Some(p) if writing => Note::Writing(p.clone()),
        _ => Note::Done(ev.paths.clone()),
    }
}

/// Which notifications can change the view.
struct EventFilter {
    dir: PathBuf,
    /// Our own state file (`speaker-NODE.*`): the speaker writing it must not wake itself.
    own_prefix: Option<String>,
}

impl EventFilter {
    fn new(opts: &Options) -> EventFilter {
        EventFilter {
            dir: opts.dir.clone(),
            own_prefix: opts.node.as_ref().map(|n| format!("speaker-{n}.")),
        }
    }

    fn relevant(&self, ev: &notify::Event) -> bool {
        if ev.need_rescan() {
            return true;
        }
        // Opening or reading a file (the loader itself does) changes nothing.
        if let EventKind::Access(kind) = ev.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return false;
        }
        ev.paths.iter().any(|p| {
            // Events on the parent directory matter only for DIR itself (removed, recreated).
            if !p.starts_with(&self.dir) {
                return false;
            }
            let own = self.own_prefix.as_ref().is_some_and(|own| {
                p.parent().is_some_and(|d| d.ends_with(STATE_DIR))
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(own.as_str()))
            });
            !own
        })
    }
}

/// The inotify watches: DIR's parent (DIR removed or recreated), DIR, and `DIR/.ferrolb`.
struct Watches {
    notifier: RecommendedWatcher,
    dir: PathBuf,
    state_files: bool,
    /// (path, inode) of what is watched.
    watched: Vec<(PathBuf, u64)>,
}

impl Watches {
    /// (Re-)adds the watch of every path whose inode changed (a directory removed and
    /// recreated is a new inode; the old watch died with the old one).
    fn refresh(&mut self) {
        let mut want = Vec::new();
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            want.push(parent.to_path_buf());
        }
        want.push(self.dir.clone());
        if self.state_files {
            let state = self.dir.join(STATE_DIR);
            if self.dir.is_dir() {
                let _ = std::fs::create_dir_all(&state);
            }
            want.push(state);
        }
        for path in want {
            let ino = std::fs::metadata(&path).map(|m| m.ino()).ok();
            let old = self.watched.iter().position(|(p, _)| *p == path);
            if old.map(|i| Some(self.watched[i].1)) == Some(ino) {
                continue;
            }
            if let Some(i) = old {
                let _ = self.notifier.unwatch(&path);
                self.watched.remove(i);
            }
            let Some(ino) = ino else { continue };
            match self.notifier.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    debug!(path = %path.display(), "watching");
                    self.watched.push((path, ino));
                }
                Err(error) => {
                    warn!(path = %path.display(), %error, "cannot watch; changes there are seen at the periodic rescan")
                }
            }
        }
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

async fn follow(
    mut dir: Directory,
    mut watches: Watches,
    mut events: mpsc::UnboundedReceiver<Note>,
    tx: watch::Sender<Arc<ClusterView>>,
) {
    let opts = dir.options().clone();
    let mut rescan = tokio::time::interval_at(Instant::now() + opts.rescan, opts.rescan);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = Pending::default();
    loop {
        let due = pending.due(opts.debounce, opts.max_delay);
        tokio::select! {
            ev = events.recv() => {
                let Some(note) = ev else { return };
                pending.note(note, Instant::now());
                continue;
            }
            _ = async { tokio::time::sleep_until(due.expect("guarded")).await }, if due.is_some() => {}
            _ = rescan.tick() => debug!(dir = %watches.dir().display(), "periodic rescan"),
            _ = tx.closed() => return,
        }
        pending.scanned(Instant::now());
        let Ok((d, scan)) = tokio::task::spawn_blocking(move || {
            let scan = dir.scan();
            (dir, scan)
        })
        .await
        else {
            warn!("directory scan panicked; the watcher stops");
            return;
        };
        dir = d;
        watches.refresh();
        if scan.unsettled {
            pending.again(Instant::now());
        }
        if scan.changed {
            let view = dir.view();
            debug!(generation = view.generation, "manifests directory changed");
            if tx.send(view).is_err() {
                return;
            }
        }
    }
}
