//! Shared telemetry for ferrolb binaries: structured logging set-up and the small HTTP server
//! that serves `/metrics` (Prometheus text), `/healthz` and `/readyz`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrolb_telemetry::TelemetryError> {
//! use ferrolb_telemetry::{Health, LogFormat, serve};
//! use prometheus_client::registry::Registry;
//! use std::sync::{Arc, Mutex};
//!
//! ferrolb_telemetry::init_logging(LogFormat::Text, "info")?;
//! let registry = Arc::new(Mutex::new(Registry::default()));
//! let health = Health::default();
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:7472").await.unwrap();
//! health.set_ready(true);
//! serve(listener, registry, health, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod build_info;
mod http;
mod logging;
pub mod proc_metrics;
mod process;
mod sys;

pub use build_info::{REVISION, register_build_info};
pub use http::{
    AcceptErrorLabels, Health, HttpMetrics, ServerLimits, accept_backoff, errno_label, respond,
    serve, serve_with,
};
pub use logging::{JsonLine, LogFormat, init_logging, log_dispatch};
pub use proc_metrics::register_process_metrics;
pub use process::{Process, Shutdown};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("unknown log format {0:?}: expected \"text\" or \"json\"")]
    LogFormat(String),
    #[error("failed to parse log filter {filter:?}")]
    LogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("failed to install the global tracing subscriber")]
    LogInit(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("failed to bind the telemetry listener on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to install the SIGTERM handler")]
    Signal(#[source] std::io::Error),
}
