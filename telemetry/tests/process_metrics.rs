//! `process_*` and `ferrolb_build_info`: parsers on text captured from a Linux 6.1 host
//! (`cat /proc/self/stat` etc.), and the registered collector on this very process.

use ferrolb_telemetry::proc_metrics::{
    Stat, parse_boot_time, parse_max_fds, parse_rss_bytes, parse_stat,
};
use prometheus_client::registry::Registry;

// A command name with spaces and parentheses: parsing must start after the last ')'.
const STAT: &str = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1520 0 0 0 \
                    37 12 0 0 20 0 9 0 123456 27406336 1985 18446744073709551615 1 1 0 0 0 0 0 \
                    4096 1260 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

#[test]
fn stat_fields_by_number() {
    assert_eq!(
        parse_stat(STAT),
        Some(Stat {
            cpu_ticks: 37 + 12,
            start_ticks: 123_456,
            vsize: 27_406_336,
            rss_pages: 1985,
        })
    );
    assert_eq!(parse_stat("4242 (x) S 1 2"), None, "truncated");
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn limits_status_and_boot_time() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            20000                524288               files     \n";
    assert_eq!(parse_max_fds(limits), Some(20_000));
    assert_eq!(
        parse_max_fds("Max open files            unlimited            unlimited            files"),
        None
    );
    let status = "Name:\tferrolb\nVmPeak:\t   30000 kB\nVmRSS:\t    7940 kB\nThreads:\t3\n";
    assert_eq!(parse_rss_bytes(status), Some(7940 * 1024));
    assert_eq!(
        parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1764835200\nprocesses 9\n"),
        Some(1_764_835_200)
    );
}

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn this_process_is_described_truthfully() {
    let mut reg = Registry::default();
    let health = ferrolb_telemetry::Health::default();
    ferrolb_telemetry::register_process_metrics(&mut reg, "test-binary", "9.9.9", health.clone());
    // Burn a little CPU and hold a known extra fd so the values are not trivially zero.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    let held = std::fs::File::open("/proc/self/stat").unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    drop(held);
    assert!(
        text.contains("ferrolb_ready{binary=\"test-binary\"} 0\n"),
        "{text}"
    );
    health.set_ready(true);
    let mut again = String::new();
    prometheus_client::encoding::text::encode(&mut again, &reg).unwrap();
    assert!(
        again.contains("ferrolb_ready{binary=\"test-binary\"} 1\n"),
        "{again}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = value(&text, "process_start_time_seconds");
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "start {start}, now {now}"
    );
    let rss = value(&text, "process_resident_memory_bytes");
    assert!(rss > 1e6 && rss < 4e9, "rss {rss}");
    assert!(value(&text, "process_virtual_memory_bytes") >= rss);
    assert!(value(&text, "process_cpu_seconds_total") > 0.0);
    let fds = value(&text, "process_open_fds");
    assert!(fds >= 4.0, "stdin/out/err + the held file: {fds}");
    assert!(value(&text, "process_max_fds") >= fds);
    assert!(
        text.contains(&format!(
            "ferrolb_build_info{{binary=\"test-binary\",version=\"9.9.9\",revision=\"{}\"}} 1",
            ferrolb_telemetry::REVISION
        )),
        "{text}"
    );
}

#[test]
fn tokio_tasks_alive_counts_the_main_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reg = Registry::default();
        let health = ferrolb_telemetry::Health::default();
        ferrolb_telemetry::register_process_metrics(&mut reg, "test-binary", "9.9.9", health);
        let scrape = |reg: &Registry| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, reg).unwrap();
            text
        };
        let before = value(&scrape(&reg), "ferrolb_tokio_tasks_alive");
        // 50 tasks that stay alive until told: a leak of exactly this shape.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
            })
            .collect();
        let text = scrape(&reg);
        assert_eq!(value(&text, "ferrolb_tokio_workers"), 2.0, "{text}");
        let during = value(&text, "ferrolb_tokio_tasks_alive");
        assert!(during >= before + 50.0, "before {before}, during {during}");
        tx.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        // A finished task leaves the runtime's count just after its JoinHandle resolves (the
        // worker drops it after waking the joiner): wait for it, bounded (2 s).
        let mut after = value(&scrape(&reg), "ferrolb_tokio_tasks_alive");
        for _ in 0..200 {
            if after <= before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            after = value(&scrape(&reg), "ferrolb_tokio_tasks_alive");
        }
        assert!(after <= before, "before {before}, after {after}");
    });
}

#[test]
fn no_runtime_no_task_metrics() {
    let mut reg = Registry::default();
    ferrolb_telemetry::register_process_metrics(
        &mut reg,
        "test-binary",
        "9.9.9",
        ferrolb_telemetry::Health::default(),
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(!text.contains("ferrolb_tokio_tasks_alive"), "{text}");
}
