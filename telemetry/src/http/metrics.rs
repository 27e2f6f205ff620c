//! The telemetry server's own metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of `ferrolb_http_accept_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AcceptErrorLabels {
    /// `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, `ECONNABORTED` or `other`.
    pub error: String,
}

/// Counters and gauges of the HTTP server (cheap to clone: shared handles).
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics {
    /// Failed `accept()` calls by error.
    pub accept_errors: Family<AcceptErrorLabels, Counter>,
    /// Connections closed at once because `max_connections` were open.
    pub rejected: Counter,
    /// Connections closed by the header or request deadline.
    pub timed_out: Counter,
    /// Connections open now.
    pub open: Gauge,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = HttpMetrics::default();
        registry.register(
            "ferrolb_http_accept_errors",
            "Failed accept() calls on the telemetry listener, by error",
            m.accept_errors.clone(),
        );
        registry.register(
            "ferrolb_http_connections_rejected",
            "Telemetry connections closed at once because the connection limit was reached",
            m.rejected.clone(),
        );
        registry.register(
            "ferrolb_http_connections_timed_out",
            "Telemetry connections closed by the header or request deadline",
            m.timed_out.clone(),
        );
        registry.register(
            "ferrolb_http_connections_open",
            "Telemetry connections open now",
            m.open.clone(),
        );
        m
    }

    /// Counts one failed `accept()`.
    pub fn accept_error(&self, error: &std::io::Error) {
        let label = errno_label(error.raw_os_error());
        self.accept_errors
            .get_or_create(&AcceptErrorLabels {
                error: label.to_string(),
            })
            .inc();
    }
}

/// Bounded label values for accept errors.
pub fn errno_label(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOBUFS) => "ENOBUFS",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::ECONNABORTED) => "ECONNABORTED",
        _ => "other",
    }
}
