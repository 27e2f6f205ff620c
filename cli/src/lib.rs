//! `kubectl ferrolb`: what ferrolb is doing, at a glance, and why a Service is Pending.
//!
//! The data is gathered by [`gather`] (Kubernetes, or a standalone manifests directory) into
//! [`Inputs`]; [`report::status`] and [`report::why`] are pure functions of it (unit-tested
//! with fixtures); [`render`] prints tables, JSON or YAML.

pub mod gather;
pub mod inputs;
pub mod render;
pub mod report;

pub use inputs::Inputs;

/// Everything that can go wrong in the plugin.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("failed to read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {path}: {message}")]
    Parse { path: String, message: String },
    #[error("failed to list {kind} from the Kubernetes API")]
    Kube {
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to write the output as {format}: {message}")]
    Output { format: String, message: String },
}
