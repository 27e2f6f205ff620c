//! Reading one file: only when it changed, bounded in size, never half-written.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// A file (or the directory) that does not load now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// File name relative to DIR (`.` for the directory itself).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// What is wrong, with the limit when a limit was exceeded.
    pub reason: String,
    /// Whether the last good version of the file (or of the directory) stays in force.
    pub kept_previous: bool,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.reason)?,
            None => write!(f, "{}: {}", self.file, self.reason)?,
        }
        if self.kept_previous {
            f.write_str(" (last good version kept)")?;
        }
        Ok(())
    }
}

/// What identifies one version of a file without reading it: a rewrite changes the times (ns),
/// a rename-over changes the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sig {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Sig {
    fn of(m: &std::fs::Metadata) -> Sig {
        Sig {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// The outcome of [`read_if_changed`].
pub(crate) enum Read {
    /// Same version as `old`.
    Unchanged,
    /// The file is not there (or is not a regular file).
    Gone,
    /// A new version, read whole.
    Changed(Sig, Vec<u8>),
    /// A new version that cannot be read; `Some(sig)` when it is known (not retried until it
    /// changes again).
    Failed(Option<Sig>, String),
    /// The file changed while it was read: read again later.
    Unsettled,
}

/// Reads `path` when its signature differs from `old`, at most `max_bytes`.
pub(crate) fn read_if_changed(path: &Path, old: Option<Sig>, max_bytes: u64) -> Read {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Read::Gone,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Gone,
        Err(e) => return Read::Failed(None, format!("cannot read: {e}")),
    };
    let sig = Sig::of(&meta);
    if old == Some(sig) {
        return Read::Unchanged;
    }
    let too_big =
        |len: u64| format!("file is {len} bytes, more than the limit of {max_bytes} bytes");
    if sig.len > max_bytes {
        return Read::Failed(Some(sig), too_big(sig.len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(sig.len).unwrap_or(0));
    let read =
        std::fs::File::open(path).and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Gone,
        Err(e) => return Read::Failed(Some(sig), format!("cannot read: {e}")),
    }
    // A writer still at work (or a file replaced meanwhile) shows as a changed signature:
    // the bytes may be torn, so they are not used.
    match std::fs::metadata(path) {
        Ok(m) if Sig::of(&m) == sig => {}
        _ => return Read::Unsettled,
    }
    if bytes.len() as u64 > max_bytes {
        return Read::Failed(Some(sig), too_big(bytes.len() as u64));
    }
    Read::Changed(sig, bytes)
}

/// Writes `path` through a temporary file in the same directory and a rename, so a reader
/// never sees half of it. Creates the parent directory when needed.
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
