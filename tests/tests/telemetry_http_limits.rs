//! The telemetry server under idle, slow and greedy clients (issue #15): idle connections are
//! closed, the connection count is capped, slow-loris heads and unread responses time out —
//! and a scrape works again once the pressure is gone.
mod telemetry_common;

use std::time::Duration;

use ferrolb_telemetry::ServerLimits;
use ferrolb_tests::require_root;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use telemetry_common::{Server, closed_within, get, netns_with, sample};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn limits() -> ServerLimits {
    ServerLimits {
        max_connections: 16,
        header_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
        ..ServerLimits::default()
    }
}

fn in_netns<F: Future<Output = ()>>(
    tag: &str,
    ip: &'static str,
    f: impl FnOnce() -> F + Send + 'static,
) {
    let ns = netns_with(tag, ip);
    ns.run_in(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f());
    });
}

#[test]
fn idle_connections_are_capped_and_closed_then_scrapes_work() {
    if !require_root("idle_connections_are_capped_and_closed_then_scrapes_work") {
        return;
    }
    in_netns("http-idle", "192.0.2.1", || async {
        let server = Server::start("192.0.2.1", Registry::default(), limits()).await;
        // 64 clients connect and never send a byte (a scraper that leaks connections).
        let mut idle = Vec::new();
        for _ in 0..64 {
            idle.push(TcpStream::connect(server.addr).await.unwrap());
        }
        // Every one is closed by the server: at once beyond the cap, after the header
        // deadline within it.
        for (i, s) in idle.iter_mut().enumerate() {
            assert!(
                closed_within(s, Duration::from_secs(3)).await,
                "idle connection {i} still open after 3 s"
            );
        }
        let m = get(server.addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        let rejected = sample(&m, "ferrolb_http_connections_rejected_total").unwrap();
        let timed_out = sample(&m, "ferrolb_http_connections_timed_out_total").unwrap();
        assert!(rejected >= 1.0, "{m}");
        assert!(timed_out >= 1.0, "{m}");
        assert_eq!(rejected + timed_out, 64.0, "{m}");
        // Only the scrape itself is open now.
        assert_eq!(
            sample(&m, "ferrolb_http_connections_open"),
            Some(1.0),
            "{m}"
        );
        server.stop().await;
    });
}

#[test]
fn slow_loris_head_times_out() {
    if !require_root("slow_loris_head_times_out") {
        return;
    }
    in_netns("http-loris", "192.0.2.2", || async {
        let server = Server::start("192.0.2.2", Registry::default(), limits()).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        // One header line every 100 ms, for at most 5 s: the head never ends.
        let mut closed = false;
        for i in 0..50 {
            if s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
                || closed_within(&mut s, Duration::from_millis(100)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "a head dribbled over 5 s was never cut off");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "closed only after {took:?}");
        let m = get(server.addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert_eq!(
            sample(&m, "ferrolb_http_connections_timed_out_total"),
            Some(1.0),
            "{m}"
        );
        server.stop().await;
    });
}

#[test]
fn a_client_that_never_reads_its_response_is_dropped() {
    if !require_root("a_client_that_never_reads_its_response_is_dropped") {
        return;
    }
    in_netns("http-unread", "192.0.2.3", || async {
        // A /metrics body of a few MB: larger than the socket buffers of both ends.
        let mut reg = Registry::default();
        let big: Family<Vec<(String, String)>, Counter> = Family::default();
        for i in 0..40_000 {
            big.get_or_create(&vec![("series".into(), format!("{i:0>40}"))])
                .inc();
        }
        reg.register("ferrolb_test_big", "many series", big);
        let server = Server::start("192.0.2.3", reg, limits()).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        // Never read; after the request deadline the server has let go of the connection.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let m = get(server.addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{}", &m[..m.len().min(200)]);
        assert_eq!(sample(&m, "ferrolb_http_connections_open"), Some(1.0));
        assert_eq!(
            sample(&m, "ferrolb_http_connections_timed_out_total"),
            Some(1.0)
        );
        drop(s);
        server.stop().await;
    });
}

#[test]
fn accept_backoff_doubles_from_the_minimum_and_caps() {
    let l = ServerLimits {
        accept_backoff_min: Duration::from_millis(10),
        accept_backoff_max: Duration::from_millis(1000),
        ..ServerLimits::default()
    };
    let pauses: Vec<u128> = (1..=9)
        .map(|n| ferrolb_telemetry::accept_backoff(&l, n).as_millis())
        .collect();
    assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    assert_eq!(
        ferrolb_telemetry::accept_backoff(&l, u32::MAX).as_millis(),
        1000
    );
    assert_eq!(ferrolb_telemetry::errno_label(Some(libc::EMFILE)), "EMFILE");
    assert_eq!(ferrolb_telemetry::errno_label(None), "other");
}
