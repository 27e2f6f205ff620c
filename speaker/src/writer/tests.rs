//! The writer against a fake source that can hang and fail: handing over never waits,
//! states coalesce, failures are retried with backoff, events keep their order and bound.

use std::sync::atomic::{AtomicUsize, Ordering};

use ferrolb_crds::v1alpha1::SpeakerStateSpec;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use super::*;
use crate::Error;
use crate::source::Snapshot;

#[derive(Default)]
struct Inner {
    /// Every write that reached the source, in order, with its (paused-clock) time.
    log: Mutex<Vec<(String, Duration)>>,
    /// Writes to fail before the first success.
    fail: AtomicUsize,
}

/// A source whose writes wait for a permit of `gate` (closed: they hang).
struct Fake {
    inner: Arc<Inner>,
    gate: Arc<Semaphore>,
    start: Instant,
    rx: watch::Receiver<Arc<Snapshot>>,
}

impl Fake {
    fn new(permits: usize) -> (Arc<Fake>, Arc<Inner>, Arc<Semaphore>) {
        let inner = Arc::new(Inner::default());
        let gate = Arc::new(Semaphore::new(permits));
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let fake = Arc::new(Fake {
            inner: inner.clone(),
            gate: gate.clone(),
            start: Instant::now(),
            rx,
        });
        (fake, inner, gate)
    }

    fn write(&self, what: String) -> BoxFuture<'static, Result<(), Error>> {
        let (inner, gate, start) = (self.inner.clone(), self.gate.clone(), self.start);
        Box::pin(async move {
            gate.acquire().await.expect("gate").forget();
            inner.log.lock().unwrap().push((what, start.elapsed()));
            let failing = inner
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                Err(Error::WriteState {
                    path: "fake".into(),
                    source: std::io::Error::other("injected failure"),
                })
            } else {
                Ok(())
            }
        })
    }
}

impl ClusterSource for Fake {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }
    fn publish(&self, state: SpeakerState) -> BoxFuture<'static, Result<(), Error>> {
        self.write(format!("state {}", state.spec.node_name))
    }
    fn service_event(&self, event: ServiceEvent) -> BoxFuture<'static, Result<(), Error>> {
        self.write(format!("event {}", event.reason))
    }
    fn config_state(&self, errors: Vec<ConfigError>) -> BoxFuture<'static, Result<(), Error>> {
        self.write(format!("config {}", errors.len()))
    }
}

fn state(tag: &str) -> SpeakerState {
    SpeakerState::new(
        "n1",
        SpeakerStateSpec {
            node_name: tag.to_string(),
        },
    )
}

fn event(reason: &str) -> ServiceEvent {
    ServiceEvent {
        service: "default/web".into(),
        reason: reason.into(),
        message: String::new(),
    }
}

fn log(inner: &Inner) -> Vec<String> {
    inner
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(w, _)| w.clone())
        .collect()
}

fn errors(m: &Metrics, kind: &str) -> u64 {
    m.status_write_errors
        .get_or_create(&KindLabel { kind: kind.into() })
        .get()
}

#[tokio::test(start_paused = true)]
async fn a_hanging_source_never_blocks_and_only_the_latest_state_is_written() {
    let (fake, inner, gate) = Fake::new(0);
    let w = Writer::start(fake, Metrics::default());
    w.state(state("s1"));
    tokio::task::yield_now().await; // s1 is now being written (hanging)
    for tag in ["s2", "s3", "s4"] {
        w.state(state(tag));
    }
    assert!(!w.flush(Duration::from_secs(3)).await, "the source hangs");
    gate.add_permits(10);
    assert!(w.flush(Duration::from_secs(1)).await);
    assert_eq!(log(&inner), ["state s1", "state s4"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_state_is_retried_with_backoff_until_written() {
    let (fake, inner, _gate) = Fake::new(100);
    inner.fail.store(3, Ordering::SeqCst);
    let metrics = Metrics::default();
    let w = Writer::start(fake, metrics.clone());
    w.state(state("s1"));
    assert!(w.flush(Duration::from_secs(10)).await);
    let times: Vec<Duration> = inner.log.lock().unwrap().iter().map(|(_, t)| *t).collect();
    assert_eq!(
        times.len(),
        4,
        "three failures, then the write that succeeds"
    );
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [RETRY_MIN, RETRY_MIN * 2, RETRY_MIN * 4]);
    assert_eq!(errors(&metrics, KIND_STATE), 3);
}

#[tokio::test(start_paused = true)]
async fn a_newer_state_replaces_a_failed_one_without_waiting_for_the_retry() {
    let (fake, inner, _gate) = Fake::new(100);
    inner.fail.store(1, Ordering::SeqCst);
    let w = Writer::start(fake, Metrics::default());
    w.state(state("old"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    w.state(state("new"));
    assert!(w.flush(Duration::from_secs(1)).await);
    let entries = inner.log.lock().unwrap().clone();
    assert_eq!(log(&inner), ["state old", "state new"]);
    assert!(
        entries[1].1 < RETRY_MIN,
        "written at once: {:?}",
        entries[1].1
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_backoff_is_capped() {
    assert_eq!(next_delay(None), RETRY_MIN);
    let mut d = None;
    for _ in 0..20 {
        d = Some(next_delay(d));
    }
    assert_eq!(d, Some(RETRY_MAX));
}

#[tokio::test(start_paused = true)]
async fn events_keep_their_order_and_the_queue_is_bounded() {
    let (fake, inner, gate) = Fake::new(0);
    let metrics = Metrics::default();
    let w = Writer::start(fake, metrics.clone());
    w.event(event("e0"));
    tokio::task::yield_now().await; // e0 is being written (hanging)
    let extra = 5;
    for i in 1..=EVENT_QUEUE + extra {
        w.event(event(&format!("e{i}")));
    }
    w.config(Vec::new());
    gate.add_permits(10_000);
    assert!(w.flush(Duration::from_secs(5)).await);
    let written = log(&inner);
    assert_eq!(errors(&metrics, KIND_EVENT_DROPPED), extra as u64);
    // e0 was in flight; e1..e5 were the oldest queued and are dropped; the config state
    // goes first in the next round, then the events in order.
    let mut want = vec!["event e0".to_string(), "config 0".to_string()];
    want.extend((1 + extra..=EVENT_QUEUE + extra).map(|i| format!("event e{i}")));
    assert_eq!(written, want);
}

#[tokio::test(start_paused = true)]
async fn a_failed_event_is_counted_and_not_retried() {
    let (fake, inner, _gate) = Fake::new(100);
    inner.fail.store(1, Ordering::SeqCst);
    let metrics = Metrics::default();
    let w = Writer::start(fake, metrics.clone());
    w.event(event("lost"));
    w.event(event("kept"));
    assert!(w.flush(Duration::from_secs(1)).await);
    assert_eq!(log(&inner), ["event lost", "event kept"]);
    assert_eq!(errors(&metrics, KIND_EVENT), 1);
}
