//! Process metrics with the names every Prometheus client uses (`process_*`), read from
//! `/proc/self` at each scrape: resident and virtual memory, CPU seconds, open and maximum file
//! descriptors, start time. Parsing is pure ([`parse_stat`], [`parse_max_fds`]) and tested on
//! captured text; the collector only reads the files.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The fields of `/proc/self/stat` we export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set, pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat` (proc(5)): fields after the command name, which is in parentheses
/// and may itself contain spaces and parentheses, so parsing starts after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: num(14)?.checked_add(num(15)?)?,
        start_ticks: num(22)?,
        vsize: num(23)?,
        rss_pages: num(24)?,
    })
}

/// The soft "Max open files" limit from `/proc/PID/limits` (`None` when unlimited).
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// `VmRSS` from `/proc/PID/status`, in bytes.
pub fn parse_rss_bytes(text: &str) -> Option<u64> {
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Reads `/proc/self` on every scrape. Register it with [`register_process_metrics`].
#[derive(Debug)]
struct ProcessCollector {
    ticks: u64,
    boot_time: Option<u64>,
    /// The runtime the binary registered from (its main one), for the task count.
    runtime: Option<tokio::runtime::Handle>,
}

impl ProcessCollector {
    fn new() -> Self {
        ProcessCollector {
            ticks: crate::sys::clock_ticks_per_second().unwrap_or(100),
            boot_time: std::fs::read_to_string("/proc/stat")
                .ok()
                .as_deref()
                .and_then(parse_boot_time),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let stat = read("/proc/self/stat").as_deref().and_then(parse_stat);
        if let Some(s) = stat {
            let c = ConstCounter::new(s.cpu_ticks as f64 / self.ticks as f64);
            c.encode(enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
            gauge(
                &mut enc,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.vsize as f64,
            )?;
            if let Some(boot) = self.boot_time {
                let start = boot as f64 + s.start_ticks as f64 / self.ticks as f64;
                gauge(
                    &mut enc,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds",
                    start,
                )?;
            }
        }
        if let Some(rss) = read("/proc/self/status")
            .as_deref()
            .and_then(parse_rss_bytes)
        {
            gauge(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss as f64,
            )?;
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries: not counted.
            let n = dir.count().saturating_sub(1);
            gauge(
                &mut enc,
                "process_open_fds",
                "Number of open file descriptors",
                n as f64,
            )?;
        }
        if let Some(rt) = &self.runtime {
            // A task leak shows here long before it shows in RSS.
            let m = rt.metrics();
            gauge(
                &mut enc,
                "ferrolb_tokio_tasks_alive",
                "Tokio tasks alive in the main runtime (spawned and not finished)",
                m.num_alive_tasks() as f64,
            )?;
            gauge(
                &mut enc,
                "ferrolb_tokio_workers",
                "Worker threads of the main tokio runtime",
                m.num_workers() as f64,
            )?;
        }
        if let Some(max) = read("/proc/self/limits").as_deref().and_then(parse_max_fds) {
            gauge(
                &mut enc,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

/// Registers the `process_*` metrics, `ferrolb_build_info` and `ferrolb_ready` in
/// `registry`: call once per binary with its name, `env!("CARGO_PKG_VERSION")` and the
/// [`crate::Health`] its `/readyz` serves.
pub fn register_process_metrics(
    registry: &mut Registry,
    binary: &str,
    version: &str,
    health: crate::Health,
) {
    registry.register_collector(Box::new(ProcessCollector::new()));
    crate::build_info::register_build_info(registry, binary, version);
    crate::build_info::register_ready(registry, binary, health);
}
