//! The manifests directory: `*.yaml` / `*.yml` files directly in it, each loaded on its own,
//! each keeping its last good content when an edit breaks it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferrolb_crds::ClusterResources;
use ferrolb_crds::yaml::load_str;

use crate::error::Error;

/// At most this many files are read per scan (bounded work).
pub const MAX_FILES: usize = 1000;
/// Files larger than this are reported and not read.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// A file that does not load: `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// File name within the directory.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// What is wrong.
    pub message: String,
    /// Whether an earlier good version of the file stays in force.
    pub kept_previous: bool,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if self.kept_previous {
            f.write_str(" (last good version kept)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct FileState {
    /// What was applied last.
    seen: Option<Observed>,
    /// Objects of the last version that loaded without error.
    good: Option<ClusterResources>,
    /// Errors of the current contents.
    errors: Vec<FileError>,
}

/// What one read of a file gave.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Observed {
    Contents(Vec<u8>),
    Unreadable(String),
    Removed,
}

/// The directory and what each file holds.
///
/// A change is applied only once two consecutive scans read the same thing (file contents,
/// or the file's absence): a file caught in the middle of being rewritten (`cp` truncates
/// first) must not look like "these Services were deleted" and free their addresses. The
/// very first scan applies at once.
#[derive(Debug)]
pub struct ManifestDir {
    dir: PathBuf,
    files: BTreeMap<String, FileState>,
    /// Errors of the directory itself (too many files).
    dir_errors: Vec<FileError>,
    /// Changes seen once, waiting for a second identical read.
    pending: BTreeMap<String, Observed>,
    scans: u64,
}

impl ManifestDir {
    /// A directory not scanned yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            dir_errors: Vec::new(),
            pending: BTreeMap::new(),
            scans: 0,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether some file has never loaded (it has errors and no last good version): the
    /// objects in it are unknown.
    pub fn has_unloaded_files(&self) -> bool {
        self.files
            .values()
            .any(|f| f.good.is_none() && !f.errors.is_empty())
    }

    /// Whether changes were seen that are not applied yet (waiting for a second read).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads the directory; returns true when a file appeared, disappeared or changed (and
    /// read the same twice in a row). A file that does not load keeps its last good objects
    /// in force.
    pub fn scan(&mut self) -> Result<bool, Error> {
        let io = |source| Error::Io {
            what: "read the manifests directory",
            path: self.dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            if entry
                .file_type()
                .map(|t| t.is_file() || t.is_symlink())
                .unwrap_or(false)
            {
                names.push(name);
            }
        }
        names.sort();
        let mut dir_errors = Vec::new();
        if names.len() > MAX_FILES {
            dir_errors.push(FileError {
                file: names[MAX_FILES].clone(),
                line: None,
                message: format!("more than {MAX_FILES} manifest files; the rest are ignored"),
                kept_previous: false,
            });
            names.truncate(MAX_FILES);
        }
        let mut changed = dir_errors != self.dir_errors;
        self.dir_errors = dir_errors;

        let mut observed: BTreeMap<String, Observed> = names
            .into_iter()
            .map(|name| {
                let obs = match read_bounded(&self.dir.join(&name)) {
                    Ok(c) => Observed::Contents(c),
                    Err(m) => Observed::Unreadable(m),
                };
                (name, obs)
            })
            .collect();
        for name in self.files.keys() {
            observed.entry(name.clone()).or_insert(Observed::Removed);
        }
        let first = self.scans == 0;
        self.scans += 1;
        let mut pending = BTreeMap::new();
        for (name, obs) in observed {
            let applied = self.files.get(&name).and_then(|s| s.seen.as_ref());
            if applied == Some(&obs) || (applied.is_none() && obs == Observed::Removed) {
                continue;
            }
            if first || self.pending.get(&name) == Some(&obs) {
                self.apply(name, obs);
                changed = true;
            } else {
                pending.insert(name, obs);
            }
        }
        self.pending = pending;
        Ok(changed)
    }

    fn apply(&mut self, name: String, obs: Observed) {
        let state = match obs {
            Observed::Removed => {
                self.files.remove(&name);
                return;
            }
            _ => self.files.entry(name.clone()).or_default(),
        };
        let kept = state.good.is_some();
        match &obs {
            Observed::Contents(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let loaded = load_str(&name, &text);
                if loaded.errors.is_empty() {
                    state.good = Some(loaded.resources);
                    state.errors.clear();
                } else {
                    for e in &loaded.errors {
                        tracing::warn!(file = %name, kept_previous = kept, error = %e, "manifest file does not load");
                    }
                    state.errors = loaded
                        .errors
                        .iter()
                        .map(|e| file_error(&name, e, kept))
                        .collect();
                }
            }
            Observed::Unreadable(message) => {
                tracing::warn!(file = %name, kept_previous = kept, error = %message, "manifest file cannot be read");
                state.errors = vec![FileError {
                    file: name.clone(),
                    line: None,
                    message: message.clone(),
                    kept_previous: kept,
                }];
            }
            Observed::Removed => {}
        }
        state.seen = Some(obs);
    }

    /// Every object in force: the last good version of each file, merged in file-name order.
    pub fn resources(&self) -> ClusterResources {
        let mut all = ClusterResources::default();
        for state in self.files.values() {
            if let Some(good) = &state.good {
                all.extend(good.clone());
            }
        }
        all
    }

    /// Every file error, sorted by file.
    pub fn errors(&self) -> Vec<FileError> {
        self.dir_errors
            .iter()
            .chain(self.files.values().flat_map(|s| s.errors.iter()))
            .cloned()
            .collect()
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "file is {} bytes, more than the {MAX_FILE_BYTES} bytes read",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

fn file_error(name: &str, e: &ferrolb_crds::Error, kept_previous: bool) -> FileError {
    use ferrolb_crds::Error as E;
    let (line, message) = match e {
        E::Yaml {
            line,
            what,
            message,
            ..
        } => (
            Some(*line),
            // The parser's message carries a source snippet after its first line; the
            // first line says it all (the snippet is in the controller's log).
            format!("{what}: {}", message.lines().next().unwrap_or_default()),
        ),
        E::Object { line, message, .. } => (Some(*line), message.clone()),
        other => (None, other.to_string()),
    };
    FileError {
        file: name.to_string(),
        line,
        message,
        kept_previous,
    }
}
