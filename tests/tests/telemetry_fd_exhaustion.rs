//! Issue #15: a scraper that leaks connections until the process runs out of file descriptors
//! made `accept()` fail with EMFILE, and the first failure ended the telemetry server for good.
//! Here the process's own descriptor limit is lowered (with `prlimit` on our PID, so no unsafe
//! code), the table is filled with held connections and then files, a scrape is queued while
//! `accept()` fails — and once the pressure goes, that scrape and new ones are answered.
//!
//! The only test in this binary: the limit is process-wide.
mod telemetry_common;

use std::process::Command;
use std::time::Duration;

use ferrolb_telemetry::ServerLimits;
use ferrolb_tests::require_root;
use prometheus_client::registry::Registry;
use telemetry_common::{Server, get, netns_with, sample};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sets this process's soft RLIMIT_NOFILE (the hard limit stays).
fn set_soft_nofile(n: u64) {
    let pid = std::process::id().to_string();
    let out = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:")])
        .output()
        .expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn soft_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// Restores the limit even when the test panics.
struct RestoreLimit(u64);
impl Drop for RestoreLimit {
    fn drop(&mut self) {
        set_soft_nofile(self.0);
    }
}

fn is_emfile(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMFILE)
}

/// Opens /dev/null until EMFILE (no await: the server cannot take a descriptor meanwhile).
fn fill(files: &mut Vec<std::fs::File>) {
    for _ in 0..1000 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) if is_emfile(&e) => return,
            Err(e) => panic!("open: {e}"),
        }
    }
    panic!("the descriptor limit did not take effect");
}

#[test]
fn scrapes_work_again_after_descriptors_run_out() {
    if !require_root("scrapes_work_again_after_descriptors_run_out") {
        return;
    }
    let ns = netns_with("http-fds", "192.0.2.4");
    ns.run_in(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run());
    });
}

async fn run() {
    let limits = ServerLimits {
        // Nothing is closed by a deadline while the table is full: only fd pressure counts.
        header_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
        max_connections: 10_000,
        accept_backoff_min: Duration::from_millis(5),
        accept_backoff_max: Duration::from_millis(50),
    };
    let server = Server::start("192.0.2.4", Registry::default(), limits).await;
    assert!(
        get(server.addr, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );

    let restore = RestoreLimit(soft_nofile());
    set_soft_nofile(open_fds() + 200);

    // 1. Leaked scraper connections until the table is full (each costs the process two
    //    descriptors: ours and the server's).
    let mut held = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect(server.addr).await {
            Ok(s) => held.push(s),
            Err(e) if is_emfile(&e) => break,
            Err(e) => panic!("connect: {e}"),
        }
        tokio::task::yield_now().await;
    }
    assert!(
        held.len() >= 20,
        "only {} connections before EMFILE",
        held.len()
    );
    // 2. Whatever the server freed or left: fill the rest with files.
    let mut files = Vec::new();
    fill(&mut files);
    // 3. Room for one more scrape: it connects (the kernel completes the handshake), then the
    //    table is filled again, so the server's accept() has no descriptor left.
    let mut queued = None;
    while queued.is_none() {
        // Free one descriptor: a file, else one of the held connections.
        if files.pop().is_none() {
            assert!(held.pop().is_some(), "no descriptor could be freed");
        }
        match TcpStream::connect(server.addr).await {
            Ok(s) => queued = Some(s),
            Err(e) if is_emfile(&e) => continue,
            Err(e) => panic!("connect: {e}"),
        }
    }
    fill(&mut files);
    let mut queued = queued.unwrap();
    queued
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.is_running(), "the server ended on EMFILE");

    // 4. The pressure goes.
    drop(files);
    drop(held);
    drop(restore);

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), queued.read_to_end(&mut answer))
        .await
        .expect("the queued scrape is answered within 5 s")
        .expect("read the queued scrape");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let m = get(server.addr, "/metrics").await;
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    let emfile = sample(&m, "ferrolb_http_accept_errors_total{error=\"EMFILE\"}").unwrap_or(0.0);
    assert!(emfile >= 1.0, "{m}");
    server.stop().await;
}
