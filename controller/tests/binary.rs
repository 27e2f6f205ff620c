//! The `ferrolb-controller` binary in standalone mode, as the lab runs it: status file,
//! `/metrics`, `/readyz`, clean exit on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};

struct Guard(Child, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, out))
}

#[test]
fn standalone_binary_serves_status_metrics_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("ferrolb-ctl-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/lab/manifests");
    for f in std::fs::read_dir(&manifests).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .args([
            "--manifests",
            dir.to_str().unwrap(),
            "--metrics-addr",
            &addr,
        ])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(child, dir.clone());

    let mut status = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(dir.join(STATUS_FILE))
            && let Ok(st) = serde_saphyr::from_str::<StandaloneStatus>(&text)
        {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = status.expect("status file written");
    let l2 = st.service("default", "web-l2").unwrap();
    assert_eq!(
        l2.ips(),
        vec!["192.0.2.200".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(l2.pool.as_deref(), Some("l2-pool"));
    let bgp = st.service("default", "web-bgp").unwrap();
    assert_eq!(bgp.pool.as_deref(), Some("bgp-pool"));
    assert!(bgp.ips()[0].to_string().starts_with("203.0.113."));

    let mut ready = None;
    for _ in 0..300 {
        if let Some((200, _)) = get(&addr, "/readyz") {
            ready = Some(());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ready.expect("/readyz answers 200");
    let (code, metrics) = get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("ferrolb_controller_addresses_in_use{pool=\"l2-pool\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrolb_controller_addresses_total{pool=\"l2-pool\"} 11"),
        "{metrics}"
    );
    assert!(metrics.contains("ferrolb_controller_reconcile_duration_seconds_count"));

    // SIGTERM: clean exit, status 0.
    let pid = guard.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut exit = None;
    for _ in 0..250 {
        if let Some(s) = guard.0.try_wait().unwrap() {
            exit = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exit = exit.expect("exits within 5 s of SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

/// Regression: the namespace was a hard-coded default although install.yaml sets
/// `POD_NAMESPACE`; `--namespace` now defaults to it.
#[test]
fn namespace_defaults_to_pod_namespace() {
    let help = |env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
        cmd.arg("--help").env_remove("POD_NAMESPACE");
        if let Some(ns) = env {
            cmd.env("POD_NAMESPACE", ns);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        help(Some("lb-ns")).contains("[env: POD_NAMESPACE=lb-ns]"),
        "{}",
        help(Some("lb-ns"))
    );
    assert!(help(None).contains("[default: ferrolb-system]"));
}
