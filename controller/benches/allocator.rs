//! Allocator benchmarks (see BENCHMARKS.md, section "Allocator").
//!
//! `cargo bench -p ferrolb-controller --bench allocator`
//!
//! Workload: N Services, mixed IPv4 / IPv6 / dual-stack (Require and Prefer) / shared keys /
//! pinned to an `autoAssign: false` pool, in 4 namespaces, over 5 pools including two IPv6
//! /64s and one IPv4 pool with `avoidBuggyIPs` that fills up and overflows into the next.
//! Addresses are documentation ranges plus 198.18.0.0/15 (RFC 2544, reserved for benchmarks)
//! for the large IPv4 space; nothing is sent anywhere, this is pure computation.
//!
//! Times are the benchmark thread's **CPU time** (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: the machine is 2 cores shared with other engineers' builds (load average ~10), so
//! wall time mostly measures how long the thread waited for a core. Set
//! `FERROLB_BENCH_WALL=1` to measure wall time instead.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_main};
use ferrolb_controller::allocator::{
    Allocator, Assignment, Family, FamilyPolicy, Pool, Port, Request, ServiceAllocation,
    ServiceKey, Sharing,
};

/// CPU time of the calling thread, in ns (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_ns() -> u64 {
    cpu_time::ThreadTime::now().as_duration().as_nanos() as u64
}

/// Criterion measurement: thread CPU time.
struct CpuTime;

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            t if t < 1e9 => (1e6, "ms"),
            _ => (1e9, "s"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "elem/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

const NAMESPACES: [&str; 4] = ["team-a", "team-b", "team-c", "default"];

fn pools() -> Vec<Pool> {
    let only = |ns: &str, prio: i32| ServiceAllocation {
        priority: Some(prio),
        namespaces: [ns.to_owned()].into(),
        ..Default::default()
    };
    vec![
        Pool::parse("team-a-v4", &["192.0.2.0/24"])
            .unwrap()
            .avoid_buggy_ips(true)
            .service_allocation(only("team-a", 1)),
        Pool::parse("bench-dual", &["198.18.0.0/15", "2001:db8:1::/64"])
            .unwrap()
            .service_allocation(ServiceAllocation {
                priority: Some(2),
                ..Default::default()
            }),
        Pool::parse("team-c-v6", &["2001:db8:2::/64"])
            .unwrap()
            .service_allocation(only("team-c", 1)),
        Pool::parse("default-v4", &["198.51.100.0/24", "203.0.113.0/24"])
            .unwrap()
            .service_allocation(only("default", 1)),
        Pool::parse("manual-v6", &["2001:db8:3::/112"])
            .unwrap()
            .auto_assign(false),
    ]
}

fn requests(n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| {
            let ns = NAMESPACES[i % NAMESPACES.len()];
            let r = Request::new(ServiceKey::new(ns, format!("svc-{i}")));
            match i % 8 {
                0 | 1 => r,
                2 => r.families(FamilyPolicy::SingleStack, &[Family::V6]),
                3 => r.families(FamilyPolicy::RequireDualStack, &[Family::V4, Family::V6]),
                4 => r.families(FamilyPolicy::PreferDualStack, &[Family::V6, Family::V4]),
                5 | 6 => r.sharing(Sharing {
                    // Groups of 16 sharers, each on its own port.
                    key: format!("k{}", i / 64),
                    ports: BTreeSet::from([Port::tcp(1000 + (i % 64) as u16)]),
                    local_selector: None,
                }),
                _ => r
                    .families(FamilyPolicy::SingleStack, &[Family::V6])
                    .pool("manual-v6"),
            }
        })
        .collect()
}

fn fresh() -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(pools()).expect("valid pools");
    a
}

fn filled(reqs: &[Request]) -> Allocator {
    let mut a = fresh();
    for r in reqs {
        a.allocate(r).expect("the workload fits its pools");
    }
    a
}

fn bench_allocate<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("allocate_mixed");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for n in [1_000usize, 10_000, 100_000] {
        let reqs = requests(n);
        // Every request of the workload succeeds (checked once, outside the timing).
        drop(filled(&reqs));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &reqs, |b, reqs| {
            b.iter_batched(
                fresh,
                |mut a| {
                    for r in reqs {
                        black_box(a.allocate(r).ok());
                    }
                    a
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench_allocate_one<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("allocate_one_more");
    for n in [1_000usize, 10_000, 100_000] {
        let mut a = filled(&requests(n));
        let extra = [
            Request::new(ServiceKey::new("team-b", "extra-v4")),
            Request::new(ServiceKey::new("team-b", "extra-v6"))
                .families(FamilyPolicy::SingleStack, &[Family::V6]),
            Request::new(ServiceKey::new("team-b", "extra-dual"))
                .families(FamilyPolicy::RequireDualStack, &[Family::V4, Family::V6]),
        ];
        g.throughput(Throughput::Elements(extra.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                for r in &extra {
                    black_box(a.allocate(r).expect("room left"));
                }
                for r in &extra {
                    a.release(&r.service);
                }
            })
        });
    }
    g.finish();
}

/// Free space fragmented into 50,000 one-address holes (100k IPv4 Services, every other one
/// deleted): the lowest free address is still one lookup, not a scan.
fn bench_fragmented<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("allocate_one_fragmented");
    let mut a = fresh();
    let n = 100_000;
    let keys: Vec<ServiceKey> = (0..n)
        .map(|i| ServiceKey::new("team-b", format!("frag-{i}")))
        .collect();
    for k in &keys {
        a.allocate(&Request::new(k.clone())).expect("room");
    }
    for k in keys.iter().skip(1).step_by(2) {
        a.release(k);
    }
    let usage = a.pool_usage("bench-dual").expect("pool");
    assert_eq!(usage.assigned_v4, n as u64 / 2);
    let extra = Request::new(ServiceKey::new("team-b", "extra"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("50000_holes", |b| {
        b.iter(|| {
            black_box(a.allocate(&extra).expect("a hole"));
            a.release(&extra.service);
        })
    });
    g.finish();
}

/// What the reconciler does after a pool edit: allocate again for every Service (all kept).
fn bench_reprocess<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("reprocess_all");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        let reqs = requests(n);
        let mut a = filled(&reqs);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                for r in &reqs {
                    let got = a.allocate(r).expect("kept");
                    debug_assert!(!got.changed);
                    black_box(got);
                }
            })
        });
    }
    g.finish();
}

fn bench_restore<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for n in [10_000usize, 100_000] {
        let saved: Vec<Assignment> = filled(&requests(n)).assignments();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &saved, |b, saved| {
            b.iter_batched(
                || saved.clone(),
                |list| {
                    let mut a = fresh();
                    let report = a.restore(list);
                    assert!(report.conflicts.is_empty());
                    a
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn run<M: Measurement + 'static>(c: &mut Criterion<M>) {
    bench_allocate(c);
    bench_allocate_one(c);
    bench_fragmented(c);
    bench_reprocess(c);
    bench_restore(c);
}

fn cpu() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

fn wall() -> Criterion<WallTime> {
    Criterion::default()
}

fn benches() {
    if std::env::var_os("FERROLB_BENCH_WALL").is_some() {
        run(&mut wall().configure_from_args());
    } else {
        run(&mut cpu().configure_from_args());
    }
}

criterion_main!(benches);
