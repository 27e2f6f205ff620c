//! Shared by the telemetry server tests: a namespace with a test address, a server on it, and
//! a tiny HTTP client.
#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_telemetry::{Health, ServerLimits, serve_with};
use ferrolb_tests::Netns;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A namespace whose loopback carries `ip` (a documentation address).
pub fn netns_with(tag: &str, ip: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"])
        .unwrap();
    ns
}

/// A running server; `stop` shuts it down and returns how it ended.
pub struct Server {
    pub addr: SocketAddr,
    pub health: Health,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ferrolb_telemetry::TelemetryError>>,
}

impl Server {
    /// Binds `ip:0` and serves `registry` with `limits` (needs a tokio runtime).
    pub async fn start(ip: &str, registry: Registry, limits: ServerLimits) -> Server {
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Health::default();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            listener,
            Arc::new(Mutex::new(registry)),
            health.clone(),
            limits,
            async {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            health,
            stop: Some(tx),
            task,
        }
    }

    /// Whether the server task is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Shuts the server down; panics unless it stops cleanly within 5 s.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

/// One `GET path` with `Connection: close`; the whole response, or an error text.
pub async fn get(addr: SocketAddr, path: &str) -> String {
    let res = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    })
    .await;
    match res {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: no answer within 5 s".into(),
    }
}

/// The value of the first sample line starting with `prefix` in a /metrics response.
pub fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Whether the server closed `s` (EOF or reset) within `within`.
pub async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
