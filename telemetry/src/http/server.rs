//! The accept loop and the per-connection guards: accept errors never end the server, the
//! number of open connections is capped, and every connection has deadlines.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::metrics::HttpMetrics;
use super::{Health, respond};
use crate::TelemetryError;

/// Limits of the telemetry server. The defaults suit Prometheus scraping every few seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; more are accepted and closed at once (counted in
    /// `ferrolb_http_connections_rejected_total`), so they neither hold descriptors nor wait.
    pub max_connections: usize,
    /// Deadline for a request head (request line and headers), counted from when the server
    /// starts waiting for it: on a new connection and after each response of a keep-alive
    /// connection. So it also closes idle connections and slow-loris clients.
    pub header_timeout: Duration,
    /// Deadline for a whole request once its head arrived: the handler and writing the
    /// response (a client that never reads its response is dropped).
    pub request_timeout: Duration,
    /// First pause after a failed `accept()`; doubles while failures repeat.
    pub accept_backoff_min: Duration,
    /// Longest pause after a failed `accept()`.
    pub accept_backoff_max: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 128,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            accept_backoff_min: Duration::from_millis(10),
            accept_backoff_max: Duration::from_secs(1),
        }
    }
}

/// Pause after the `failures`-th consecutive failed `accept()` (1-based): exponential from
/// `min`, capped at `max`.
pub fn accept_backoff(limits: &ServerLimits, failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    limits
        .accept_backoff_min
        .saturating_mul(1 << shift)
        .min(limits.accept_backoff_max)
}

/// Serves with [`ServerLimits::default`] until `shutdown` completes (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Mutex<Registry>>,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TelemetryError> {
    serve_with(
        listener,
        registry,
        health,
        ServerLimits::default(),
        shutdown,
    )
    .await
}

/// Serves `/metrics`, `/healthz`, `/readyz` until `shutdown` completes. Registers the server's
/// own metrics (`ferrolb_http_*`) in `registry`. A failed `accept()` (EMFILE when descriptors
/// run out, ECONNABORTED, ...) is logged, counted and retried after a short pause: the server
/// only ends on shutdown.
pub async fn serve_with(
    listener: TcpListener,
    registry: Arc<Mutex<Registry>>,
    health: Health,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TelemetryError> {
    let metrics = HttpMetrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let local = listener.local_addr().ok();
    let mut failures: u32 = 0;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                failures = 0;
                a
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let pause = accept_backoff(&limits, failures);
                metrics.accept_error(&error);
                tracing::warn!(
                    listener = ?local,
                    %error,
                    errno = error.raw_os_error(),
                    consecutive = failures,
                    retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "telemetry listener failed to accept a connection; retrying"
                );
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.rejected.inc();
            tracing::debug!(%peer, max = limits.max_connections, "telemetry connection limit reached; closing");
            drop(stream);
            continue;
        };
        let registry = registry.clone();
        let health = health.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            metrics.open.inc();
            serve_connection(stream, peer, registry, health, limits, &metrics).await;
            metrics.open.dec();
            drop(permit);
        });
    }
}

/// One connection: hyper with a header deadline, plus a watchdog for the whole-request
/// deadline. The watchdog's deadline moves forward when a request head arrives.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    health: Health,
    limits: ServerLimits,
    metrics: &HttpMetrics,
) {
    let start = Instant::now();
    // Milliseconds after `start` at which the connection is dropped.
    let deadline = Arc::new(AtomicU64::new(millis(
        limits.header_timeout + limits.request_timeout,
    )));
    let svc = {
        let deadline = deadline.clone();
        service_fn(move |req: Request<Incoming>| {
            // The head arrived: this request has `request_timeout` for the rest, the next
            // head has `header_timeout` after that (hyper enforces the latter on its own).
            let until = start.elapsed() + limits.request_timeout + limits.header_timeout;
            deadline.store(millis(until), Ordering::Relaxed);
            let (status, ctype, body) = respond(req.method(), req.uri().path(), &registry, &health);
            let resp = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, ctype)
                .body(Full::new(Bytes::from(body)))
                .expect("static response parts are valid");
            async move { Ok::<_, Infallible>(resp) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    loop {
        let at = start + Duration::from_millis(deadline.load(Ordering::Relaxed));
        tokio::select! {
            res = &mut conn => {
                if let Err(error) = res {
                    if error.is_timeout() {
                        metrics.timed_out.inc();
                    }
                    tracing::debug!(%peer, %error, "telemetry connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(at) => {
                let now = start.elapsed();
                if millis(now) >= deadline.load(Ordering::Relaxed) {
                    metrics.timed_out.inc();
                    tracing::debug!(%peer, "telemetry request deadline passed; closing the connection");
                    return;
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
