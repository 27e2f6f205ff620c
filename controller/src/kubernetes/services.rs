//! The leader's Service loop: the watch feeds a [`RecordStore`] of [`SlimService`]s and the
//! [`Queue`]; at most [`CONCURRENCY`] workers reconcile what the queue hands out; deletions and
//! re-lists release addresses. The rules of what runs when are the queue's (`queue.rs`); this
//! file only does the I/O and the timers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use ferrolb_cluster::kube::{Keyed, RecordStore, RecordWriter, log_watch_error, record_store};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::queue::{Next, Queue};
use super::reconcile::{Context, error_policy, reconcile};
use super::slim_service::SlimService;
use super::watch_backoff;
use crate::allocator::ServiceKey;

/// Reconciles running at once. Each may PATCH a status; more in flight would only open more
/// connections to the API server (each with its own TLS state) without allocating sooner.
pub const CONCURRENCY: usize = 16;

/// When a Service whose reconcile panicked is tried again.
const PANIC_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The queue and its wake-up, shared by the watch and the workers.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().expect("queue lock")
    }

    /// Changes the queue and wakes the loop that hands out work.
    fn with(&self, f: impl FnOnce(&mut Queue)) {
        f(&mut self.lock());
        self.wake.notify_one();
    }
}

/// What the watch tells the deletion task.
enum Change {
    Deleted(ServiceKey),
    Relisted,
}

/// Watches Services and reconciles them until `shutdown`, then lets running reconciles
/// finish. `reconcile_all` re-queues every Service (a pool or configuration change).
pub async fn run(
    client: Client,
    ctx: Arc<Context>,
    mut reconcile_all: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()>,
) {
    let (store, writer) = record_store::<SlimService>();
    // Events read the Services' UIDs from this store from now on (no second copy).
    ctx.sink.attach_services(store.clone());
    let shared = Arc::new(Shared::default());
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    tasks.spawn(watch(
        client,
        writer,
        store.clone(),
        shared.clone(),
        changes_tx,
    ));
    tasks.spawn(handle_changes(ctx.clone(), store.clone(), changes_rx));
    let mut workers = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while workers.try_join_next().is_some() {}
        let deadline = shared.lock().next_deadline();
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        tokio::select! {
            () = &mut shutdown => break,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => {}
            Some(()) = reconcile_all.recv() => {
                let keys = store.state();
                shared.with(|q| keys.iter().for_each(|s| q.push(s.key())));
            }
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
        while workers.len() < CONCURRENCY {
            let Some(key) = shared.lock().pop(Instant::now()) else {
                break;
            };
            let (ctx, shared, record) = (ctx.clone(), shared.clone(), store.get(&key));
            workers.spawn(async move {
                let work = async {
                    match record {
                        Some(svc) => match reconcile(svc.clone(), ctx.clone()).await {
                            Ok(next) => next,
                            Err(e) => error_policy(svc, &e, ctx.clone()),
                        },
                        // Deleted since it was queued.
                        None => Next::AwaitChange,
                    }
                };
                // A panic must not leave the Service marked running (never reconciled again).
                let next = AssertUnwindSafe(work).catch_unwind().await.unwrap_or_else(|_| {
                    ctx.metrics.error("Panic");
                    tracing::error!(service = %key, retry_in = ?PANIC_RETRY, "reconcile panicked");
                    Next::After(PANIC_RETRY)
                });
                shared.with(|q| q.done(&key, next, Instant::now()));
            });
        }
    }
    tasks.abort_all();
    while workers.join_next().await.is_some() {}
}

/// The Service watch: whole objects become [`SlimService`] records in the store; every
/// change queues its Service; a (re-)list queues them all.
async fn watch(
    client: Client,
    mut writer: RecordWriter<SlimService>,
    store: RecordStore<SlimService>,
    shared: Arc<Shared>,
    changes: mpsc::UnboundedSender<Change>,
) {
    let events =
        watcher(Api::<Service>::all(client), watcher::Config::default()).backoff(watch_backoff());
    futures::pin_mut!(events);
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                log_watch_error("Services", &e);
                continue;
            }
        };
        match ev {
            watcher::Event::Apply(s) => {
                let record = SlimService::from(s);
                let key = record.key().to_string();
                writer.apply(watcher::Event::Apply(record));
                shared.with(|q| q.push(&key));
            }
            watcher::Event::Delete(s) => {
                let record = SlimService::from(s);
                let key = record.service_key();
                shared.with(|q| q.forget(record.key()));
                writer.apply(watcher::Event::Delete(record));
                let _ = changes.send(Change::Deleted(key));
            }
            watcher::Event::Init => writer.apply(watcher::Event::Init),
            watcher::Event::InitApply(s) => {
                writer.apply(watcher::Event::InitApply(SlimService::from(s)));
            }
            watcher::Event::InitDone => {
                writer.apply(watcher::Event::InitDone);
                let keys = store.state();
                shared.with(|q| keys.iter().for_each(|s| q.push(s.key())));
                let _ = changes.send(Change::Relisted);
            }
        }
    }
}

/// Deleted Services release their addresses; after a (re-)list, so do the ones missing from
/// it (deleted while the watch was down).
async fn handle_changes(
    ctx: Arc<Context>,
    store: RecordStore<SlimService>,
    mut rx: mpsc::UnboundedReceiver<Change>,
) {
    while let Some(change) = rx.recv().await {
        let r = match change {
            Change::Deleted(key) => ctx.deleted(&key).await,
            Change::Relisted => ctx.resync(|k| store.get(&k.to_string()).is_some()).await,
        };
        if let Err(e) = r {
            ctx.metrics.error(e.reason());
            tracing::warn!(error = %e, "failed to release a deleted Service");
        }
    }
}
