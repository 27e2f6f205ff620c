//! Standalone mode end to end, without network: YAML in a temporary directory, the
//! controller's loop in-process, assertions on `DIR/.ferrolb/status.yaml` as read back from
//! disk (what the speakers and the lab read).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_cluster::{Directory, Options};
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::standalone::{Standalone, StandaloneOptions};
use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};
use prometheus_client::registry::Registry;

/// A unique temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "ferrolb-ctl-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_status(dir: &Path) -> StandaloneStatus {
    let text = std::fs::read_to_string(dir.join(STATUS_FILE)).expect("status file exists");
    serde_saphyr::from_str(&text).expect("status file parses")
}

fn ips(st: &StandaloneStatus, name: &str) -> Vec<IpAddr> {
    st.service("default", name)
        .unwrap_or_else(|| panic!("no entry for {name} in {st:#?}"))
        .ips()
}

const POOLS: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata:
  name: small
  namespace: ferrolb-system
spec:
  addresses:
    - 192.0.2.10-192.0.2.12
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata:
  name: pinned
  namespace: ferrolb-system
spec:
  addresses: [198.51.100.0/30, 2001:db8::/126]
  autoAssign: false
";

fn service(name: &str, extra_annotations: &str, spec_extra: &str) -> String {
    format!(
        "\
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
  annotations: {{{extra_annotations}}}
spec:
  type: LoadBalancer
  ports: [{{port: 80, protocol: TCP}}]
{spec_extra}"
    )
}

/// The controller fed by the directory loader, one scan per step (what the run loop does on
/// each notification).
struct Ctl {
    dir: Directory,
    ctl: Standalone,
}

impl Ctl {
    async fn start(opts: &StandaloneOptions) -> Ctl {
        Ctl::start_with(opts, Metrics::default()).await
    }

    async fn start_with(opts: &StandaloneOptions, metrics: Metrics) -> Ctl {
        let mut dir = Directory::new(Options::new(&opts.dir), Default::default());
        dir.scan();
        let ctl = Standalone::start(opts, metrics, &dir.view()).await.unwrap();
        Ctl { dir, ctl }
    }

    /// Reads the directory and applies its view; whether the status file was written.
    async fn step(&mut self) -> bool {
        self.dir.scan();
        self.ctl.apply(&self.dir.view()).await.unwrap()
    }
}

async fn settle(ctl: &mut Ctl) -> bool {
    ctl.step().await
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn assigns_edits_breaks_deletes_and_restores() {
    let dir = TempDir::new("e2e");
    dir.write("pools.yaml", POOLS);
    dir.write(
        "svc.yaml",
        &(service("a", "", "") + &service("b", "ferrolb.io/address-pool: pinned", "")),
    );
    let opts = StandaloneOptions::new(&dir.0);
    let mut ctl = Ctl::start(&opts).await;

    // 1. Assignment: lowest free address of the auto pool; the pinned pool for b.
    let st = read_status(&dir.0);
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.10")]);
    assert_eq!(ips(&st, "b"), vec![ip("198.51.100.0")]);
    let a = st.service("default", "a").unwrap();
    assert_eq!(a.pool.as_deref(), Some("small"));
    assert_eq!(a.condition.status, "True");
    assert_eq!(a.condition.reason, "IPAllocated");
    let small = st.pool("small").unwrap();
    assert_eq!((small.assigned_ipv4, small.available_ipv4), (1, 2));
    assert!(
        st.events
            .iter()
            .any(|e| e.reason == "IPAllocated" && e.object == "Service default/a")
    );
    let gen1 = st.generation;

    // Nothing changed: no write.
    assert!(!ctl.step().await);
    assert!(!ctl.step().await);
    assert_eq!(read_status(&dir.0).generation, gen1);

    // 2. An edit that adds Services: c gets the next address, a and b keep theirs; a
    //    dual-stack Service gets one address per family from the pinned pool.
    dir.write(
        "svc.yaml",
        &(service("a", "", "")
            + &service("b", "ferrolb.io/address-pool: pinned", "")
            + &service("c", "", "")
            + &service(
                "d",
                "ferrolb.io/address-pool: pinned",
                "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n",
            )),
    );
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    assert!(st.generation > gen1);
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.10")]);
    assert_eq!(ips(&st, "b"), vec![ip("198.51.100.0")]);
    assert_eq!(ips(&st, "c"), vec![ip("192.0.2.11")]);
    assert_eq!(ips(&st, "d"), vec![ip("2001:db8::"), ip("198.51.100.1")]);

    // 3. A broken file: reported with file:line, the last good version stays in force.
    dir.write(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  type: LoadBalancer\n  ports: {not: [a list\n",
    );
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    let err = st
        .config_errors
        .iter()
        .find(|e| e.file.as_deref() == Some("svc.yaml"))
        .unwrap_or_else(|| panic!("no error for svc.yaml in {:#?}", st.config_errors));
    assert!(err.line.is_some_and(|l| l >= 1), "{err:?}");
    assert!(err.kept_previous);
    assert!(err.message.starts_with("svc.yaml:"), "{}", err.message);
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.10")]);
    assert_eq!(ips(&st, "c"), vec![ip("192.0.2.11")]);
    assert_eq!(st.services.len(), 4);

    // An invalid pool edit: the object is reported, its last good version stays in force.
    dir.write(
        "pools.yaml",
        &POOLS.replace("192.0.2.10-192.0.2.12", "192.0.2.12-192.0.2.10"),
    );
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    let perr = st
        .config_errors
        .iter()
        .find(|e| e.kind.as_deref() == Some("IPAddressPool"))
        .unwrap_or_else(|| panic!("no pool error in {:#?}", st.config_errors));
    assert_eq!(perr.object_name.as_deref(), Some("small"));
    assert!(perr.kept_previous, "{perr:?}");
    assert_eq!(st.pool("small").unwrap().available_ipv4, 1);
    dir.write("pools.yaml", POOLS);

    // 4. Fix the file and delete c: its address is free again and goes to the next Service.
    dir.write(
        "svc.yaml",
        &(service("a", "", "")
            + &service("b", "ferrolb.io/address-pool: pinned", "")
            + &service(
                "d",
                "ferrolb.io/address-pool: pinned",
                "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n",
            )),
    );
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    assert!(st.service("default", "c").is_none());
    assert!(st.config_errors.is_empty(), "{:#?}", st.config_errors);
    assert_eq!(st.pool("small").unwrap().assigned_ipv4, 1);
    assert!(
        st.events
            .iter()
            .any(|e| e.reason == "IPReleased" && e.object == "Service default/c")
    );
    let before_restart = st.clone();
    drop(ctl);

    // 5. Restart on the same directory, with a new Service listed *before* the others
    //    (name order): recorded assignments are restored first, so nobody moves and the
    //    newcomer gets the free address.
    let mut text = service("0-new", "", "");
    text += &service("a", "", "");
    text += &service("b", "ferrolb.io/address-pool: pinned", "");
    text += &service(
        "d",
        "ferrolb.io/address-pool: pinned",
        "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n",
    );
    dir.write("svc.yaml", &text);
    let ctl = Ctl::start(&opts).await;
    let st = read_status(&dir.0);
    for name in ["a", "b", "d"] {
        assert_eq!(
            ips(&st, name),
            ips(&before_restart, name),
            "{name} moved on restart"
        );
    }
    assert_eq!(ips(&st, "0-new"), vec![ip("192.0.2.11")]);
    assert!(st.generation > before_restart.generation);
    drop(ctl);
}

#[tokio::test]
async fn failures_are_explained() {
    let dir = TempDir::new("fail");
    dir.write("pools.yaml", POOLS);
    dir.write(
        "svc.yaml",
        &(service("x1", "", "")
            + &service("x2", "", "")
            + &service("x3", "", "")
            + &service("x4", "", "")
            + &service(
                "v6",
                "ferrolb.io/address-pool: small",
                "  ipFamilies: [IPv6]\n",
            )
            + &service("zwant", "ferrolb.io/loadBalancerIPs: 192.0.2.10", "")
            + &service("other", "", "  loadBalancerClass: example.com/other\n")
            + &service("nolb", "", "").replace("type: LoadBalancer", "type: ClusterIP")),
    );
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut ctl = Ctl::start_with(&StandaloneOptions::new(&dir.0), metrics).await;
    let st = read_status(&dir.0);
    let text = metrics_text(&registry);
    // x4 finds no free address, v6 no IPv6 in its pool, zwant asks for a taken one.
    for (reason, n) in [
        ("PoolExhausted", 1),
        ("FamilyUnavailable", 1),
        ("IPInUse", 1),
        ("NotInPool", 0),
    ] {
        let line = format!("ferrolb_controller_services_pending{{reason=\"{reason}\"}} {n}\n");
        assert!(text.contains(&line), "want {line} in\n{text}");
    }
    let x4 = st.service("default", "x4").unwrap();
    assert!(x4.ingress.is_empty());
    assert_eq!(x4.condition.status, "False");
    assert_eq!(x4.condition.reason, "PoolExhausted");
    assert_eq!(x4.condition.message, "pool small has no free IPv4 address");
    let want = st.service("default", "zwant").unwrap();
    assert_eq!(want.condition.reason, "IPInUse");
    assert_eq!(
        want.condition.message,
        "requested 192.0.2.10 is held by default/x1"
    );
    let v6 = st.service("default", "v6").unwrap();
    assert_eq!(v6.condition.status, "False");
    assert!(st.events.iter().any(|e| e.reason == "AllocationFailed"
        && e.object == "Service default/x4"
        && e.type_ == "Warning"));
    // Not ours: no entry at all.
    assert!(st.service("default", "other").is_none());
    assert!(st.service("default", "nolb").is_none());
    // Deleting the pending Services empties the gauge.
    dir.write("svc.yaml", &service("x1", "", ""));
    assert!(settle(&mut ctl).await);
    let text = metrics_text(&registry);
    assert!(
        text.contains("ferrolb_controller_services_pending{reason=\"PoolExhausted\"} 0\n"),
        "{text}"
    );
}

fn metrics_text(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[tokio::test]
async fn run_loop_picks_up_edits_and_stops() {
    let dir = TempDir::new("loop");
    dir.write("pools.yaml", POOLS);
    dir.write("svc.yaml", &service("a", "", ""));
    let opts = StandaloneOptions::new(&dir.0);
    let health = ferrolb_telemetry::Health::default();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ferrolb_controller::standalone::run(
        opts,
        Metrics::default(),
        health.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    let st = wait_for(&dir.0, |st| {
        st.service("default", "a")
            .is_some_and(|s| !s.ingress.is_empty())
    })
    .await;
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.10")]);
    assert!(health.is_ready());
    dir.write("svc.yaml", &(service("a", "", "") + &service("b", "", "")));
    let st = wait_for(&dir.0, |st| {
        st.service("default", "b")
            .is_some_and(|s| !s.ingress.is_empty())
    })
    .await;
    assert_eq!(ips(&st, "b"), vec![ip("192.0.2.11")]);
    stop(tx, task).await;
}

/// Stops a `run` task through its shutdown channel (bounded: 10 s).
async fn stop(
    tx: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ferrolb_controller::error::Error>>,
) {
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run stops on shutdown")
        .unwrap()
        .unwrap();
}

/// Polls the status file (bounded: 500 x 10 ms) until `f` holds.
async fn wait_for(dir: &Path, f: impl Fn(&StandaloneStatus) -> bool) -> StandaloneStatus {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(dir.join(STATUS_FILE))
            && let Ok(st) = serde_saphyr::from_str::<StandaloneStatus>(&text)
            && f(&st)
        {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("status file never reached the expected state");
}

#[tokio::test]
async fn pool_shrink_keeps_the_address_and_reports_it() {
    let dir = TempDir::new("outside");
    dir.write("pools.yaml", POOLS);
    dir.write("svc.yaml", &(service("a", "", "") + &service("b", "", "")));
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut ctl = Ctl::start_with(&StandaloneOptions::new(&dir.0), metrics).await;
    assert_eq!(ips(&read_status(&dir.0), "a"), vec![ip("192.0.2.10")]);
    // The pool no longer contains .10 (and gains a /64 of IPv6).
    dir.write(
        "pools.yaml",
        &POOLS.replace(
            "    - 192.0.2.10-192.0.2.12",
            "    - 192.0.2.11-192.0.2.12\n    - 2001:db8:1::/64",
        ),
    );
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    let a = st.service("default", "a").unwrap();
    assert_eq!(a.ips(), vec![ip("192.0.2.10")], "the address never moves");
    assert_eq!(a.condition.status, "True");
    assert_eq!(a.condition.reason, "IPOutsidePool");
    assert_eq!(a.pool, None);
    assert_eq!(ips(&st, "b"), vec![ip("192.0.2.11")]);
    assert!(st.events.iter().any(|e| e.reason == "IPOutsidePool"
        && e.object == "Service default/a"
        && e.type_ == "Warning"));
    let small = st.pool("small").unwrap();
    assert_eq!((small.assigned_ipv4, small.available_ipv4), (1, 1));
    // Regression: this was u64::MAX while the docs and IPAddressPool.status say 2^63−1.
    assert_eq!(
        small.available_ipv6,
        i64::MAX as u64,
        "a /64 saturates at 2^63−1"
    );
    let text = metrics_text(&registry);
    assert!(
        text.contains(&format!(
            "ferrolb_controller_addresses_available{{pool=\"small\",family=\"ipv6\"}} {}",
            i64::MAX
        )),
        "{text}"
    );
    assert!(
        text.contains("ferrolb_controller_addresses_available{pool=\"small\",family=\"ipv4\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ferrolb_controller_events_total{reason=\"IPOutsidePool\"} 1"),
        "{text}"
    );
    // Restart: the outside address is restored as it is.
    drop(ctl);
    let _ctl = Ctl::start(&StandaloneOptions::new(&dir.0)).await;
    let st = read_status(&dir.0);
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.10")]);
    assert_eq!(ips(&st, "b"), vec![ip("192.0.2.11")]);
}

#[tokio::test]
async fn in_place_rewrite_and_oversized_file_never_free_addresses() {
    use std::io::Write as _;
    let dir = TempDir::new("settle");
    dir.write("pools.yaml", POOLS);
    let full = service("a", "", "") + &service("b", "", "");
    dir.write("svc.yaml", &full);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ferrolb_controller::standalone::run(
        StandaloneOptions::new(&dir.0),
        Metrics::default(),
        ferrolb_telemetry::Health::default(),
        async move {
            let _ = rx.await;
        },
    ));
    let before = wait_for(&dir.0, |st| st.services.len() == 2).await;
    // Truncated, then written in two pieces (as `cp` or an editor does): the empty and the
    // half file never apply.
    let text = full.clone() + &service("c", "", "");
    let (one, two) = text.split_at(text.len() / 2);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.0.join("svc.yaml"))
        .unwrap();
    f.write_all(one.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    f.write_all(two.as_bytes()).unwrap();
    drop(f);
    let st = wait_for(&dir.0, |st| st.services.len() == 3).await;
    assert_eq!(ips(&st, "a"), ips(&before, "a"));
    assert_eq!(ips(&st, "b"), ips(&before, "b"));
    assert_eq!(ips(&st, "c"), vec![ip("192.0.2.12")]);
    // The file grows past the 8 MiB limit: refused, its Services keep their addresses.
    let big = format!("{full}# {}\n", "x".repeat(9 << 20));
    dir.write("svc.yaml", &big);
    let st = wait_for(&dir.0, |st| !st.config_errors.is_empty()).await;
    let e = &st.config_errors[0];
    assert!(e.kept_previous, "{e:?}");
    assert!(
        e.message.contains("more than the limit of 8388608 bytes"),
        "{e:?}"
    );
    assert_eq!(st.services.len(), 3);
    assert!(
        !st.events.iter().any(|e| e.reason == "IPReleased"),
        "{:#?}",
        st.events
    );
    stop(tx, task).await;
}

#[tokio::test]
async fn more_than_a_thousand_files_keep_every_service_and_typos_are_warned() {
    let dir = TempDir::new("many");
    dir.write(
        "pools.yaml",
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: big, namespace: ferrolb-system}\nspec:\n  addresses: [198.18.0.0/20]\n  autoAsign: true\n",
    );
    for i in 0..1500 {
        dir.write(
            &format!("svc-{i:04}.yaml"),
            &service(&format!("s{i:04}"), "", ""),
        );
    }
    let mut ctl = Ctl::start(&StandaloneOptions::new(&dir.0)).await;
    let st = read_status(&dir.0);
    assert_eq!(st.services.len(), 1500);
    assert!(st.services.iter().all(|s| s.ingress.len() == 1));
    assert!(!ctl.step().await, "nothing changed, nothing released");
    assert_eq!(
        st.config_warnings
            .iter()
            .map(|w| w.message.as_str())
            .collect::<Vec<_>>(),
        [
            "pools.yaml:1: IPAddressPool \"big\": unknown field spec.autoAsign (ignored); did you mean spec.autoAssign?"
        ]
    );
}

#[tokio::test]
async fn restart_with_a_broken_file_keeps_the_addresses_recorded_for_it() {
    let dir = TempDir::new("orphans");
    dir.write("pools.yaml", POOLS);
    let good = service("b", "", "") + &service("c", "", "");
    dir.write("svc.yaml", &good);
    let ctl = Ctl::start(&StandaloneOptions::new(&dir.0)).await;
    let before = read_status(&dir.0);
    assert_eq!(ips(&before, "c"), vec![ip("192.0.2.11")]);
    drop(ctl);

    // Restart while svc.yaml is broken (it never loads in this run), with a new Service in
    // another file: b and c keep their addresses, the newcomer gets the free one.
    dir.write("svc.yaml", &(good.clone() + "  oops: [\n"));
    dir.write("new.yaml", &service("a", "", ""));
    let mut ctl = Ctl::start(&StandaloneOptions::new(&dir.0)).await;
    let st = read_status(&dir.0);
    assert_eq!(ips(&st, "b"), ips(&before, "b"), "{st:#?}");
    assert_eq!(ips(&st, "c"), ips(&before, "c"));
    assert_eq!(ips(&st, "a"), vec![ip("192.0.2.12")]);
    assert!(
        st.config_errors
            .iter()
            .any(|e| e.file.as_deref() == Some("svc.yaml"))
    );

    // Fixed: same addresses. Then c is really deleted: released.
    dir.write("svc.yaml", &good);
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    assert_eq!(ips(&st, "b"), ips(&before, "b"));
    assert_eq!(ips(&st, "c"), ips(&before, "c"));
    dir.write("svc.yaml", &service("b", "", ""));
    assert!(settle(&mut ctl).await);
    let st = read_status(&dir.0);
    assert!(st.service("default", "c").is_none());
    assert_eq!(st.pool("small").unwrap().assigned_ipv4, 2);
}
