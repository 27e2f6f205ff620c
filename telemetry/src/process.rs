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

/// Binds `addr` and serves `/metrics`, `/healthz`, `/readyz` until `shutdown` fires.
pub async fn start_server(
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
