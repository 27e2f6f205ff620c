//! The Service work queue: which Services to reconcile and when, without I/O.
//!
//! Each Service (by `namespace/name`) is queued at most once and reconciled by at most one
//! worker at a time; one that changes while its reconcile runs is reconciled again right after.
//! A reconcile that asks to run again later (a failed allocation, an error's backoff) gets a
//! deadline; a newer outcome replaces it. This replaces kube-runtime's `Controller`, whose
//! scheduler, runner and store each keyed every Service by an `ObjectRef` (name, namespace,
//! UID and resourceVersion copied again): ~9 MB at 10,000 Services (BENCHMARKS.md).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// What to do with a Service after its reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing until the Service or the configuration changes.
    AwaitChange,
    /// Reconcile again after this long.
    After(Duration),
}

/// The queue's state. Keys are shared (`Arc<str>`) between its sets.
#[derive(Default)]
pub struct Queue {
    order: VecDeque<Arc<str>>,
    queued: HashSet<Arc<str>>,
    running: HashSet<Arc<str>>,
    /// Running keys that changed meanwhile: queued again when their reconcile ends.
    again: HashSet<Arc<str>>,
    deadlines: HashMap<Arc<str>, Instant>,
    by_deadline: BTreeSet<(Instant, Arc<str>)>,
}

impl Queue {
    /// Queues `key` (a change, a re-list, a configuration change) unless it already is;
    /// a running key runs again after its current reconcile.
    pub fn push(&mut self, key: &str) {
        if self.running.contains(key) {
            if !self.again.contains(key) {
                self.again.insert(key.into());
            }
        } else if !self.queued.contains(key) {
            let key: Arc<str> = key.into();
            self.queued.insert(key.clone());
            self.order.push_back(key);
        }
    }

    /// The next key to reconcile, now marked running, first moving every key whose deadline
    /// is at or before `now` into the queue.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<str>> {
        while let Some((at, key)) = self.by_deadline.first().cloned() {
            if at > now {
                break;
            }
            self.by_deadline.remove(&(at, key.clone()));
            self.deadlines.remove(&key);
            self.push(&key);
        }
        let key = self.order.pop_front()?;
        self.queued.remove(&key);
        self.running.insert(key.clone());
        Some(key)
    }

    /// The reconcile of `key` ended with `next` at `now`: its old deadline goes, a new one is
    /// set for [`Next::After`], and a key that changed meanwhile is queued again at once.
    pub fn done(&mut self, key: &str, next: Next, now: Instant) {
        let Some(key) = self.running.take(key) else {
            return;
        };
        if let Some(at) = self.deadlines.remove(&key) {
            self.by_deadline.remove(&(at, key.clone()));
        }
        if let Next::After(delay) = next {
            let at = now + delay;
            self.deadlines.insert(key.clone(), at);
            self.by_deadline.insert((at, key.clone()));
        }
        if self.again.remove(&key) {
            self.push(&key);
        }
    }

    /// The earliest deadline, for the driver's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Forgets a deleted Service's deadline (a queued key is skipped when its record is gone).
    pub fn forget(&mut self, key: &str) {
        if let Some(at) = self.deadlines.remove(key) {
            self.by_deadline.remove(&(at, Arc::from(key)));
        }
    }

    /// How many keys are queued (not running).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no key is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests;
