//! Bounds on what one directory scan reads.

use ferrolb_crds::yaml::ParseLimits;

/// Limits of the loader. Exceeding a per-file limit keeps that file's last good objects (with
/// an error naming the file, the value and the limit); exceeding `max_files` refuses the new
/// state of the whole directory and keeps the last good one. Nothing is ever truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Manifest files in the directory.
    pub max_files: usize,
    /// Parse cost per file (objects per file, depth, nodes, alias expansion).
    pub parse: ParseLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 8 << 20,
            max_files: 10_000,
            parse: ParseLimits::default(),
        }
    }
}
