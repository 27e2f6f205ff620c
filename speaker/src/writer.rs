//! The speaker's writes to its source (the `SpeakerState`, the configuration state, Service
//! events), off the data path: the run loop hands each write to [`Writer`] and goes on, one
//! task makes the writes. A slow or unreachable API server (restarting, or serving its
//! custom resources late) therefore never delays a decision or a driver call.
//!
//! - The state and the configuration state are **coalesced**: only the latest of each is
//!   kept; a newer one replaces one not written yet. A failed write is retried with backoff
//!   ([`RETRY_MIN`] doubling to [`RETRY_MAX`]) until it succeeds or a newer one replaces it.
//! - Events are written in order, from a queue bounded at [`EVENT_QUEUE`]; when it is full the
//!   oldest is dropped (logged, counted). A failed event is logged and counted, not retried
//!   (as `kubectl` would show a missing event, not a stalled speaker).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_crds::config::ConfigError;
use ferrolb_crds::v1alpha1::SpeakerState;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::metrics::{KindLabel, Metrics};
use crate::source::{ClusterSource, ServiceEvent};

/// First retry delay of a failed state write.
pub const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest retry delay of a failed state write.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// Service events waiting to be written, at most.
pub const EVENT_QUEUE: usize = 256;

/// `kind` label of `ferrolb_speaker_status_write_errors_total`.
pub const KIND_STATE: &str = "speaker_state";
/// See [`KIND_STATE`].
pub const KIND_CONFIG: &str = "configuration_state";
/// See [`KIND_STATE`].
pub const KIND_EVENT: &str = "event";
/// See [`KIND_STATE`]: events dropped because the queue was full.
pub const KIND_EVENT_DROPPED: &str = "event_dropped";
/// Every `kind` label (pre-registered, so each series exists from the start).
pub const KINDS: [&str; 4] = [KIND_STATE, KIND_CONFIG, KIND_EVENT, KIND_EVENT_DROPPED];

#[derive(Default)]
struct Pending {
    state: Option<SpeakerState>,
    config: Option<Vec<ConfigError>>,
    events: VecDeque<ServiceEvent>,
    /// Something was handed over since the writer last took the queue (a failed write put
    /// back for its retry is not fresh).
    fresh: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.state.is_none() && self.config.is_none() && self.events.is_empty()
    }
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    /// `true` while nothing is pending or being written.
    idle: watch::Sender<bool>,
}

/// Hands writes to the writer task; dropping it stops the task after its current write.
pub struct Writer {
    shared: Arc<Shared>,
    metrics: Metrics,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Writer {
    /// Starts the writer task for `source`.
    pub fn start(source: Arc<dyn ClusterSource>, metrics: Metrics) -> Writer {
        let (idle, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            idle,
        });
        let task = tokio::spawn(write_loop(shared.clone(), source, metrics.clone()));
        Writer {
            shared,
            metrics,
            task,
        }
    }

    fn submit(&self, f: impl FnOnce(&mut Pending)) {
        let mut p = self.shared.pending.lock().expect("writer queue");
        f(&mut p);
        p.fresh = true;
        self.shared.idle.send_replace(false);
        drop(p);
        self.shared.wake.notify_one();
    }

    /// Publishes `state` (replacing a state not written yet).
    pub fn state(&self, state: SpeakerState) {
        self.submit(|p| p.state = Some(state));
    }

    /// Reports the validation result (replacing one not written yet).
    pub fn config(&self, errors: Vec<ConfigError>) {
        self.submit(|p| p.config = Some(errors));
    }

    /// Records `event` on its Service (after the events before it).
    pub fn event(&self, event: ServiceEvent) {
        self.submit(|p| {
            if p.events.len() >= EVENT_QUEUE
                && let Some(old) = p.events.pop_front()
            {
                warn!(service = %old.service, reason = %old.reason, queued = EVENT_QUEUE, "event queue full; dropping the oldest event");
                count(&self.metrics, KIND_EVENT_DROPPED);
            }
            p.events.push_back(event);
        });
    }

    /// Waits until everything handed over so far is written (or given up, for events), at
    /// most `limit`. Returns whether it was.
    pub async fn flush(&self, limit: Duration) -> bool {
        let mut idle = self.shared.idle.subscribe();
        tokio::time::timeout(limit, idle.wait_for(|i| *i))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

fn count(metrics: &Metrics, kind: &str) {
    metrics
        .status_write_errors
        .get_or_create(&KindLabel {
            kind: kind.to_string(),
        })
        .inc();
}

/// The next retry delay after `last`.
fn next_delay(last: Option<Duration>) -> Duration {
    last.map_or(RETRY_MIN, |d| (d * 2).min(RETRY_MAX))
}

async fn write_loop(shared: Arc<Shared>, source: Arc<dyn ClusterSource>, metrics: Metrics) {
    // A failed state or configuration write waits for its retry until `retry_at`; a newer
    // one handed over meanwhile is written at once.
    let mut state_delay: Option<Duration> = None;
    let mut config_delay: Option<Duration> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        let work = {
            let mut p = shared.pending.lock().expect("writer queue");
            if p.is_empty() {
                shared.idle.send_replace(true);
                None
            } else {
                Some(std::mem::take(&mut *p))
            }
        };
        let Some(mut work) = work else {
            shared.wake.notified().await;
            continue;
        };
        if let Some(at) = retry_at {
            // Only retries are pending: wait for their time, unless something new arrives.
            if !work.fresh && Instant::now() < at {
                put_back(&shared, &mut work);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => retry_at = None,
                    _ = shared.wake.notified() => {}
                }
                continue;
            }
            retry_at = None;
        }
        if let Some(errors) = work.config.take() {
            match source.config_state(errors.clone()).await {
                Ok(()) => {
                    config_delay = None;
                    info!(errors = errors.len(), "configuration state reported");
                }
                Err(error) => {
                    count(&metrics, KIND_CONFIG);
                    let d = next_delay(config_delay);
                    config_delay = Some(d);
                    warn!(%error, retry_in = ?d, "failed to report the configuration state; retrying");
                    keep_unless_newer(&shared, |p| &mut p.config, errors);
                    retry_at = Some(Instant::now() + d);
                }
            }
        }
        if let Some(state) = work.state.take() {
            match source.publish(state.clone()).await {
                Ok(()) => state_delay = None,
                Err(error) => {
                    count(&metrics, KIND_STATE);
                    let d = next_delay(state_delay);
                    state_delay = Some(d);
                    warn!(%error, retry_in = ?d, "failed to publish the speaker state; retrying");
                    keep_unless_newer(&shared, |p| &mut p.state, state);
                    retry_at =
                        Some(retry_at.map_or(Instant::now() + d, |r| r.min(Instant::now() + d)));
                }
            }
        }
        for ev in work.events.drain(..) {
            let (service, reason) = (ev.service.clone(), ev.reason.clone());
            if let Err(error) = source.service_event(ev).await {
                count(&metrics, KIND_EVENT);
                warn!(%service, %reason, %error, "failed to record a Service event");
            }
        }
    }
}

/// Puts a failed write back for its retry, unless a newer one was handed over meanwhile.
fn keep_unless_newer<T>(shared: &Shared, slot: impl FnOnce(&mut Pending) -> &mut Option<T>, v: T) {
    let mut p = shared.pending.lock().expect("writer queue");
    let s = slot(&mut p);
    if s.is_none() {
        *s = Some(v);
    }
}

/// Returns taken work to the queue (newer items handed over meanwhile win).
fn put_back(shared: &Shared, work: &mut Pending) {
    let mut p = shared.pending.lock().expect("writer queue");
    if p.state.is_none() {
        p.state = work.state.take();
    }
    if p.config.is_none() {
        p.config = work.config.take();
    }
    let mut events = std::mem::take(&mut work.events);
    events.append(&mut p.events);
    p.events = events;
}

#[cfg(test)]
mod tests;
