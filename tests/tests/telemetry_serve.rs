//! The telemetry server over real TCP, inside a namespace of the test's own.
mod telemetry_common;

use std::sync::{Arc, Mutex};

use ferrolb_telemetry::{Health, serve};
use ferrolb_tests::{Netns, require_root};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use telemetry_common::get;

#[test]
fn serves_metrics_health_and_readiness_over_tcp() {
    if !require_root("serves_metrics_health_and_readiness_over_tcp") {
        return;
    }
    let ns = Netns::new("telem");
    ns.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"])
        .unwrap();
    ns.run_in(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reg = Registry::default();
            let g: Gauge = Gauge::default();
            g.set(7);
            reg.register("ferrolb_demo", "demo gauge", g);
            let listener = tokio::net::TcpListener::bind("192.0.2.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let health = Health::default();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve(
                listener,
                Arc::new(Mutex::new(reg)),
                health.clone(),
                async {
                    let _ = rx.await;
                },
            ));
            let m = get(addr, "/metrics").await;
            assert!(m.starts_with("HTTP/1.1 200"), "{m}");
            assert!(m.contains("ferrolb_demo 7"), "{m}");
            assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
            health.set_ready(true);
            assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
            assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
            tx.send(()).unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(5), server)
                .await
                .expect("server stops on shutdown")
                .unwrap()
                .unwrap();
        });
    });
}
