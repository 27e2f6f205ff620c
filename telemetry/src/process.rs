//! What every long-running binary does at start-up: bind the telemetry listener, serve it in
//! the background, and turn SIGTERM / Ctrl-C into one shutdown signal many tasks can await.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Health, TelemetryError, serve};

/// A process-wide shutdown signal: cheap to clone, every clone's [`Shutdown::wait`] completes
/// once the signal fired.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Fires on SIGTERM or Ctrl-C (a task waits for them). Needs a tokio runtime.
    pub fn on_signals() -> Result<Shutdown, TelemetryError> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(TelemetryError::Signal)?;
        let (tx, shutdown) = Shutdown::manual();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
        Ok(shutdown)
    }

    /// A signal fired by sending `true` on the returned sender (tests, embedding).
    pub fn manual() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Completes once the signal fired (at once if it already did, or if its sender is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// What a long-running binary sets up before its own work: logging, one metrics registry with
/// the process metrics (`binary`'s build info and readiness), SIGTERM/Ctrl-C as a [`Shutdown`],
/// and the telemetry server on `addr`. Both ferrolb binaries start this way.
pub struct Process {
    /// The registry `/metrics` serves; register the binary's own metrics with
    /// [`Process::register`].
    pub registry: Arc<Mutex<Registry>>,
    /// What `/readyz` reports.
    pub health: Health,
    /// Fires on SIGTERM or Ctrl-C.
    pub shutdown: Shutdown,
    server: JoinHandle<Result<(), TelemetryError>>,
}

impl Process {
    /// Logging (`RUST_LOG` or `info`), the registry, the signal handler and the server on
    /// `addr` (a bind failure names the address). Needs a tokio runtime.
    pub async fn start(
        binary: &str,
        version: &str,
        log_format: crate::LogFormat,
        addr: SocketAddr,
    ) -> Result<Process, TelemetryError> {
        crate::init_logging(log_format, "info")?;
        let mut registry = Registry::default();
        let health = Health::default();
        crate::register_process_metrics(&mut registry, binary, version, health.clone());
        let registry = Arc::new(Mutex::new(registry));
        let shutdown = Shutdown::on_signals()?;
        let server = start_server(addr, registry.clone(), health.clone(), shutdown.clone()).await?;
        Ok(Process {
            registry,
            health,
            shutdown,
            server,
        })
    }

    /// Runs `f` on the registry (to register metrics; a scrape waits meanwhile).
    pub fn register<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.registry.lock().expect("registry lock"))
    }

    /// Stops the telemetry server (the binary's work is done).
    pub fn stop(self) {
        self.server.abort();
    }
}

/// Binds `addr` and serves `/metrics`, `/healthz`, `/readyz` until `shutdown` fires.
async fn start_server(
    addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    health: Health,
    shutdown: Shutdown,
) -> Result<JoinHandle<Result<(), TelemetryError>>, TelemetryError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    Ok(tokio::spawn(serve(
        listener,
        registry,
        health,
        shutdown.wait(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal() {
        let (tx, s) = Shutdown::manual();
        let a = tokio::spawn(s.clone().wait());
        let b = tokio::spawn(s.wait());
        tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            a.await.unwrap();
            b.await.unwrap();
        })
        .await
        .expect("both waiters complete");
    }
}
