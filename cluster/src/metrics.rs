//! The loader's metrics (registered by the binary under its own registry).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of [`Metrics::rejections`]: `reason` = `too_big`, `unreadable`, `parse`,
/// `too_many_files`, `dir_unreadable`.
pub type ReasonLabels = Vec<(String, String)>;

/// Counters and gauges of the manifests directory.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Files (and the directory) that do not load now.
    pub file_errors: Gauge,
    /// Unknown fields in the loaded documents.
    pub unknown_fields: Gauge,
    /// Manifest files in force.
    pub files: Gauge,
    /// New versions refused (the last good one kept), by reason.
    pub rejections: Family<ReasonLabels, Counter>,
    /// Views published (each one a change).
    pub reloads: Counter,
}

impl Metrics {
    /// Registers everything under `ferrolb_standalone_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("ferrolb_standalone");
        r.register(
            "file_errors",
            "Manifest files (or the directory) that do not load now; their last good version stays in force",
            self.file_errors.clone(),
        );
        r.register(
            "unknown_fields",
            "Fields in the manifest files that ferrolb does not know (typos); see the warnings",
            self.unknown_fields.clone(),
        );
        r.register("files", "Manifest files in force", self.files.clone());
        r.register(
            "file_rejections",
            "New versions of a file or of the directory refused, by reason",
            self.rejections.clone(),
        );
        r.register(
            "reloads",
            "Changed views of the manifests directory",
            self.reloads.clone(),
        );
    }

    pub(crate) fn rejected(&self, reason: &str) {
        self.rejections
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }
}
