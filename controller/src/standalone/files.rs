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
    /// Contents seen last (compared on every scan).
    contents: Vec<u8>,
    /// Objects of the last version that loaded without error.
    good: Option<ClusterResources>,
    /// Errors of the current contents.
    errors: Vec<FileError>,
}

/// The directory and what each file holds.
#[derive(Debug)]
pub struct ManifestDir {
    dir: PathBuf,
    files: BTreeMap<String, FileState>,
    /// Errors of the directory itself (unreadable, too many files).
    dir_errors: Vec<FileError>,
}

impl ManifestDir {
    /// A directory not scanned yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            dir_errors: Vec::new(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory; returns true when any file appeared, disappeared or changed.
    /// A file that does not load keeps its last good objects in force.
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

        let before = self.files.len();
        self.files
            .retain(|name, _| names.binary_search(name).is_ok());
        changed |= self.files.len() != before;

        for name in names {
            let path = self.dir.join(&name);
            let contents = match read_bounded(&path) {
                Ok(c) => c,
                Err(message) => {
                    let state = self.files.entry(name.clone()).or_default();
                    let err = FileError {
                        file: name,
                        line: None,
                        message,
                        kept_previous: state.good.is_some(),
                    };
                    if state.errors != [err.clone()] {
                        state.errors = vec![err];
                        state.contents.clear();
                        changed = true;
                    }
                    continue;
                }
            };
            let state = self.files.entry(name.clone()).or_default();
            if state.contents == contents && (state.good.is_some() || !state.errors.is_empty()) {
                continue;
            }
            changed = true;
            state.contents = contents;
            let text = String::from_utf8_lossy(&state.contents);
            let loaded = load_str(&name, &text);
            if loaded.errors.is_empty() {
                state.good = Some(loaded.resources);
                state.errors.clear();
            } else {
                let kept = state.good.is_some();
                state.errors = loaded
                    .errors
                    .iter()
                    .map(|e| file_error(&name, e, kept))
                    .collect();
            }
        }
        Ok(changed)
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
        } => (Some(*line), format!("{what}: {message}")),
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
