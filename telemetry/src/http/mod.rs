//! The telemetry HTTP server: `/metrics`, `/healthz`, `/readyz`. It takes its listener and a
//! shutdown future as arguments (STYLE.md rule 4), so tests bind their own sockets.
//!
//! Hardened for flaky and hostile scrapers ([`ServerLimits`]): a failed `accept()` (EMFILE,
//! ...) is logged, counted and retried after a short back-off instead of ending the server;
//! open connections are capped; request heads and whole requests have deadlines, which also
//! close idle keep-alive connections.

mod metrics;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use prometheus_client::registry::Registry;

pub use metrics::{AcceptErrorLabels, HttpMetrics, errno_label};
pub use server::{ServerLimits, accept_backoff, serve, serve_with};

/// Liveness and readiness flags shared between the binary and the HTTP server.
/// Alive starts true (the process is up); ready starts false until the binary says so.
#[derive(Clone, Debug)]
pub struct Health {
    alive: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            alive: Arc::new(AtomicBool::new(true)),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn set_alive(&self, alive: bool) {
        self.alive.store(alive, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }
}

/// The pure request handler: method + path -> status, content type, body.
pub fn respond(
    method: &Method,
    path: &str,
    registry: &Mutex<Registry>,
    health: &Health,
) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
            match prometheus_client::encoding::text::encode(&mut body, &reg) {
                Ok(()) => (
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    format!("failed to encode metrics: {e}\n"),
                ),
            }
        }
        "/healthz" if health.is_alive() => (StatusCode::OK, TEXT, "ok\n".into()),
        "/healthz" => (StatusCode::SERVICE_UNAVAILABLE, TEXT, "not alive\n".into()),
        "/readyz" if health.is_ready() => (StatusCode::OK, TEXT, "ready\n".into()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, TEXT, "not ready\n".into()),
        _ => (StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    fn registry_with_counter() -> Mutex<Registry> {
        let mut reg = Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        reg.register("ferrolb_test_things", "Things counted by the test", c);
        Mutex::new(reg)
    }

    #[test]
    fn metrics_are_encoded_as_openmetrics_text() {
        let reg = registry_with_counter();
        let (status, ctype, body) = respond(&Method::GET, "/metrics", &reg, &Health::default());
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("application/openmetrics-text"));
        assert!(body.contains("ferrolb_test_things_total 3"), "{body}");
        assert!(body.ends_with("# EOF\n"));
    }

    #[test]
    fn readiness_follows_the_flag_and_liveness_starts_true() {
        let reg = registry_with_counter();
        let health = Health::default();
        assert_eq!(
            respond(&Method::GET, "/healthz", &reg, &health).0,
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/readyz", &reg, &health).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(
            respond(&Method::GET, "/readyz", &reg, &health).0,
            StatusCode::OK
        );
        health.set_alive(false);
        assert_eq!(
            respond(&Method::GET, "/healthz", &reg, &health).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        let reg = registry_with_counter();
        let h = Health::default();
        assert_eq!(
            respond(&Method::GET, "/nope", &reg, &h).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&Method::POST, "/metrics", &reg, &h).0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
