//! The monitoring overlay: the PrometheusRule's groups pass `promtool check rules` and the
//! unit tests in deploy/overlays/monitoring/rules_test.yaml (`promtool test rules`); every
//! metric the alerts and the Grafana dashboard query is one the real binaries serve on
//! /metrics (both run in standalone mode on loopback and are scraped).
//! Skips without promtool (required under CI=true).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrolb_tests::lab::{TempDir, bin};
use ferrolb_tests::tools::{require_tool, workspace_root};
use ferrolb_tests::{Netns, Proc, require_root, wait_until};

const MONITORING: &str = "deploy/overlays/monitoring";

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The PrometheusRule's `spec` (a plain Prometheus rules file), as JSON (which is YAML).
fn rules_file() -> serde_json::Value {
    let rule: serde_json::Value =
        serde_saphyr::from_str(&read(&format!("{MONITORING}/prometheusrule.yaml"))).unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"].clone()
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    if !require_tool("alert_rules_pass_promtool_check_and_unit_tests", "promtool") {
        return;
    }
    let dir = TempDir::new("promtool");
    std::fs::write(dir.path().join("rules.yaml"), rules_file().to_string()).unwrap();
    std::fs::write(
        dir.path().join("rules_test.yaml"),
        read(&format!("{MONITORING}/rules_test.yaml")),
    )
    .unwrap();
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");
    promtool(dir.path(), &["test", "rules", "rules_test.yaml"]);

    // Every alert the issue asks for exists and has a unit test.
    let tests = read(&format!("{MONITORING}/rules_test.yaml"));
    for alert in [
        "FerrolbBGPSessionDown",
        "FerrolbBFDSessionDown",
        "FerrolbBFDEchoNotLooped",
        "FerrolbBFDEchoNotReturned",
        "FerrolbBFDAuthenticationFailing",
        "FerrolbPoolAlmostFull",
        "FerrolbPoolExhausted",
        "FerrolbL2Conflict",
        "FerrolbConfigInvalid",
        "FerrolbSpeakerNotReady",
    ] {
        assert!(
            tests.contains(&format!("alertname: {alert}\n    exp_alerts:\n    - ")),
            "{alert} has no firing test case"
        );
    }
}

/// Metric names in a PromQL expression: identifiers outside label matchers and strings that
/// are ours (`ferrolb_*`, `process_*`) or Prometheus' `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.chars().peekable();
    let mut depth = 0; // inside {...}
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            c if (c.is_ascii_alphabetic() || c == '_') && depth == 0 => {
                let mut id = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                        id.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if id.starts_with("ferrolb_") || id.starts_with("process_") || id == "up" {
                    names.insert(id);
                }
            }
            _ => {}
        }
    }
    names
}

fn dashboard_exprs() -> Vec<String> {
    let d: serde_json::Value =
        serde_json::from_str(&read(&format!("{MONITORING}/dashboard.json"))).unwrap();
    let panels = d["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "a useful dashboard");
    panels
        .iter()
        .flat_map(|p| {
            let t = p["targets"].as_array().expect("targets");
            assert!(!t.is_empty(), "panel {} has no query", p["title"]);
            t.iter().map(|t| t["expr"].as_str().unwrap().to_string())
        })
        .collect()
}

fn rule_exprs() -> Vec<String> {
    rules_file()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// Names a scrape declares: each `# TYPE` with the sample names its type produces.
fn served_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap_or(""));
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        }
    }
    names
}

/// Fetches a path from one binary's telemetry server.
type Getter<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

const POOL: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: prod, namespace: ferrolb-system}
spec:
  addresses: [192.0.2.100-192.0.2.110]
";

/// A BGP peer with BFD (echo mode) that never answers (192.0.2.1 does not exist): the
/// per-peer BGP, BFD and BFD echo series exist, at 0.
const PEER: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1, bfdProfile: fast}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: true}
";

/// Speaker series that appear only after an event, with the event.
const LAZY_SERIES: [(&str, &str); 1] = [(
    "ferrolb_speaker_bfd_echo_peer_loops",
    "set once an echo probe came back or got nothing back",
)];

#[test]
fn rules_and_dashboard_query_only_metrics_the_binaries_serve() {
    if !require_root("rules_and_dashboard_query_only_metrics_the_binaries_serve") {
        return;
    }
    let dir = TempDir::new("monitoring");
    std::fs::write(dir.path().join("pool.yaml"), POOL).unwrap();
    std::fs::write(dir.path().join("peer.yaml"), PEER).unwrap();
    let manifests = dir.path().to_str().unwrap().to_string();
    // The controller on the host's loopback; the speaker (which dials BGP and sends BFD) in a
    // namespace of its own with one documentation address on a veth pair.
    let cport = free_port();
    let _controller = Proc::from_child(
        Command::new(bin("ferrolb-controller"))
            .args(["--manifests", &manifests])
            .args(["--metrics-addr", &format!("127.0.0.1:{cport}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn controller"),
    );
    let ns = Netns::new("mon");
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        .unwrap();
    ns.ip(&["link", "set", "d1", "up"]).unwrap();
    ns.ip(&["addr", "add", "192.0.2.11/24", "dev", "d0"])
        .unwrap();
    ns.ip(&["link", "set", "d0", "up"]).unwrap();
    let speaker = bin("ferrolb-speaker");
    let _speaker = ns.spawn(
        speaker.to_str().unwrap(),
        &["--node", "n1", "--no-l2", "--manifests", &manifests],
    );
    let mut served = BTreeSet::new();
    let scrapes: [(&str, Getter<'_>); 2] = [
        ("ferrolb-controller", Box::new(move |p| get(cport, p))),
        (
            "ferrolb-speaker",
            Box::new(|p| {
                ns.exec(
                    "curl",
                    &["-sf", "-m", "2", &format!("http://127.0.0.1:7473{p}")],
                )
                .ok()
            }),
        ),
    ];
    for (binary, get) in &scrapes {
        // Ready once synced; the per-peer series appear within a poll (500 ms) after that.
        let scrape = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            get("/readyz")?;
            let s = get("/metrics")?;
            (*binary == "ferrolb-controller" || s.contains("ferrolb_speaker_bfd_session_up{"))
                .then_some(s)
        });
        let scrape = scrape.unwrap_or_else(|| panic!("{binary}: no complete scrape"));
        assert!(
            scrape.contains(&format!("ferrolb_ready{{binary=\"{binary}\"}} 1")),
            "{scrape}"
        );
        assert!(
            scrape.contains("process_resident_memory_bytes "),
            "{scrape}"
        );
        served.extend(served_names(&scrape));
    }
    let speaker_scrape = (scrapes[1].1)("/metrics").unwrap();
    for line in [
        r#"ferrolb_speaker_bgp_session_up{peer="tor",address="192.0.2.1"} 0"#,
        r#"ferrolb_speaker_bfd_session_up{peer="tor",address="192.0.2.1"} 0"#,
        r#"ferrolb_speaker_bfd_echo_loop_ok{peer="tor",address="192.0.2.1"} 0"#,
        r#"ferrolb_speaker_bfd_auth_failures_total{peer="tor",address="192.0.2.1",reason="auth_bad_hash"} 0"#,
    ] {
        assert!(
            speaker_scrape.lines().any(|l| l == line),
            "{line} in\n{speaker_scrape}"
        );
    }
    served.insert("up".to_string()); // Prometheus' own, per target
    // Series that exist only after an event this lab cannot produce (no BFD peer answers).
    // Each must still be registered by the speaker under that name.
    let register = read("speaker/src/metrics/register.rs");
    for (name, why) in LAZY_SERIES {
        let short = name.trim_start_matches("ferrolb_speaker_");
        assert!(
            register.contains(&format!("\"{short}\"")),
            "{name} ({why}) is not registered in speaker/src/metrics/register.rs"
        );
        served.insert(name.to_string());
    }
    let mut used = BTreeSet::new();
    for e in rule_exprs().iter().chain(dashboard_exprs().iter()) {
        used.extend(metric_names(e));
    }
    assert!(used.len() > 25, "extraction found too little: {used:?}");
    let missing: Vec<&String> = used.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "queried but not served: {missing:?}\nserved: {served:?}"
    );
}

#[test]
fn metric_name_extraction_skips_labels_and_strings() {
    let n = metric_names(
        r#"max by (pool) (ferrolb_controller_addresses_in_use{pool="ferrolb_x"}) / up{job="speaker"} or process_open_fds"#,
    );
    let want: BTreeSet<String> = [
        "ferrolb_controller_addresses_in_use",
        "up",
        "process_open_fds",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(n, want);
}
