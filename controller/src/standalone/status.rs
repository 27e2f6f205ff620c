//! The standalone [`ControllerSink`]: builds a [`StandaloneStatus`] in memory and writes it to
//! `DIR/.ferrolb/status.yaml` atomically (temporary file + rename) when it changed.

use std::path::{Path, PathBuf};

use ferrolb_crds::config::ConfigError;
use ferrolb_crds::standalone::{
    ConditionEntry, ConfigErrorEntry, EventEntry, IngressEntry, MAX_EVENTS, PoolEntry, STATUS_FILE,
    ServiceEntry, StandaloneStatus,
};

use crate::allocator::{PoolUsage, ServiceKey};
use crate::error::Error;
use crate::sink::{ControllerEvent, ControllerSink, ServiceStatusWrite};
use ferrolb_cluster::FileError;
use ferrolb_crds::yaml::UnknownField;

/// The status file of a manifests directory.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
    status: StandaloneStatus,
    file_errors: Vec<ConfigErrorEntry>,
    object_errors: Vec<ConfigErrorEntry>,
    /// What is on disk (generation excluded from the comparison).
    written: Option<StandaloneStatus>,
}

impl StatusFile {
    /// The status file of `dir` (not read yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(STATUS_FILE),
            status: StandaloneStatus::default(),
            file_errors: Vec::new(),
            object_errors: Vec::new(),
            written: None,
        }
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file a previous run wrote (absent: empty). Its Service entries are the
    /// assignments to restore; its generation and events carry on.
    pub fn load(&mut self) -> Result<&StandaloneStatus, Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                // A file we cannot parse is treated as absent: addresses are re-allocated.
                match serde_saphyr::from_str::<StandaloneStatus>(&text) {
                    Ok(s) => {
                        self.status = s;
                        self.written = Some(self.status.clone());
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "status file does not parse; starting empty");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "read the status file",
                    path: self.path.clone(),
                    source,
                });
            }
        }
        Ok(&self.status)
    }

    /// The status as it will be written.
    pub fn status(&self) -> &StandaloneStatus {
        &self.status
    }

    /// Sets the errors of files that do not load.
    pub fn set_file_errors(&mut self, errors: &[FileError]) {
        self.file_errors = errors
            .iter()
            .map(|e| ConfigErrorEntry {
                file: Some(e.file.clone()),
                line: e.line,
                message: e.to_string(),
                kept_previous: e.kept_previous,
                ..ConfigErrorEntry::default()
            })
            .collect();
        self.merge_errors();
    }

    /// Sets the fields of loaded documents that ferrolb does not know.
    pub fn set_unknown_fields(&mut self, unknown: &[UnknownField]) {
        self.status.config_warnings = unknown
            .iter()
            .map(|u| ConfigErrorEntry {
                file: Some(u.file.clone()),
                line: Some(u.line),
                field: Some(u.path.clone()),
                message: u.to_string(),
                ..ConfigErrorEntry::default()
            })
            .collect();
    }

    fn merge_errors(&mut self) {
        self.status.config_errors = self
            .file_errors
            .iter()
            .chain(&self.object_errors)
            .cloned()
            .collect();
    }

    /// Writes the file if it differs from what is on disk. Returns whether it wrote.
    pub fn flush(&mut self) -> Result<bool, Error> {
        if let Some(w) = &self.written {
            let mut a = w.clone();
            a.generation = self.status.generation;
            if a == self.status {
                return Ok(false);
            }
        }
        self.status.generation += 1;
        let text = serde_saphyr::to_string(&self.status).map_err(Error::EncodeStatus)?;
        write_atomic(&self.path, text.as_bytes())?;
        self.written = Some(self.status.clone());
        Ok(true)
    }
}

/// Writes `path` atomically ([`ferrolb_cluster::write_atomic`]).
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    ferrolb_cluster::write_atomic(path, contents).map_err(|source| Error::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    })
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl ControllerSink for StatusFile {
    async fn service_status(&mut self, w: &ServiceStatusWrite) -> Result<(), Error> {
        let list = &mut self.status.services;
        let pos = list
            .iter()
            .position(|s| s.namespace == w.service.namespace && s.name == w.service.name);
        let Some(condition) = &w.condition else {
            if let Some(i) = pos {
                list.remove(i);
            }
            return Ok(());
        };
        let entry = ServiceEntry {
            namespace: w.service.namespace.clone(),
            name: w.service.name.clone(),
            ingress: w.ingress.iter().map(|&ip| IngressEntry { ip }).collect(),
            pool: w.pool.clone(),
            condition: ConditionEntry {
                status: condition.status_str().to_string(),
                reason: condition.reason.clone(),
                message: condition.message.clone(),
            },
        };
        match pos {
            Some(i) => list[i] = entry,
            None => {
                list.push(entry);
                list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            }
        }
        Ok(())
    }

    async fn service_deleted(&mut self, service: &ServiceKey) -> Result<(), Error> {
        self.status
            .services
            .retain(|s| !(s.namespace == service.namespace && s.name == service.name));
        Ok(())
    }

    async fn event(&mut self, e: &ControllerEvent) -> Result<(), Error> {
        self.status.events.push(EventEntry {
            time: now_rfc3339(),
            object: e.object.to_string(),
            type_: if e.warning { "Warning" } else { "Normal" }.to_string(),
            reason: e.reason.to_string(),
            message: e.message.clone(),
        });
        let n = self.status.events.len();
        if n > MAX_EVENTS {
            self.status.events.drain(..n - MAX_EVENTS);
        }
        Ok(())
    }

    async fn pool_status(&mut self, usage: &[PoolUsage]) -> Result<(), Error> {
        self.status.pools = usage
            .iter()
            .map(|u| PoolEntry {
                name: u.pool.clone(),
                assigned_ipv4: u.assigned_v4,
                available_ipv4: u.available_v4,
                assigned_ipv6: u.assigned_v6,
                // Saturates at 2^63−1 like IPAddressPool.status (docs/configuration.md).
                available_ipv6: u.available_v6.min(i64::MAX as u64),
            })
            .collect();
        Ok(())
    }

    async fn config_state(&mut self, errors: &[ConfigError]) -> Result<(), Error> {
        self.object_errors = errors
            .iter()
            .map(|e| ConfigErrorEntry {
                kind: Some(e.object.kind.to_string()),
                namespace: Some(e.object.namespace.clone()).filter(|n| !n.is_empty()),
                object_name: Some(e.object.name.clone()),
                field: Some(e.field.clone()).filter(|f| !f.is_empty()),
                message: e.to_string(),
                kept_previous: e.kept_previous,
                ..ConfigErrorEntry::default()
            })
            .collect();
        self.merge_errors();
        Ok(())
    }
}
