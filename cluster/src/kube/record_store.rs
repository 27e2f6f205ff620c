//! A reflector store for records (what a binary keeps of each object instead of the object):
//! one hash set keyed by each record's own `namespace/name`.
//! kube-runtime's store keys every object by an `ObjectRef` (name, namespace, UID and
//! resource version copied again, ~200 bytes an entry); with 10,000 Services and their
//! EndpointSlices those keys cost more than the records themselves.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use kube::runtime::watcher::Event;
use tokio::sync::watch;

/// A record that names itself (`namespace/name`).
pub trait Keyed {
    fn key(&self) -> &str;
}

/// A record in the set, hashed and compared by its key.
struct ByKey<R>(Arc<R>);

impl<R: Keyed> Hash for ByKey<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}
impl<R: Keyed> PartialEq for ByKey<R> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}
impl<R: Keyed> Eq for ByKey<R> {}
impl<R: Keyed> Borrow<str> for ByKey<R> {
    fn borrow(&self) -> &str {
        self.0.key()
    }
}

type Set<R> = HashSet<ByKey<R>>;

/// The read side, cheap to clone.
pub struct RecordStore<R> {
    set: Arc<RwLock<Set<R>>>,
    ready: watch::Receiver<bool>,
}

impl<R> Clone for RecordStore<R> {
    fn clone(&self) -> Self {
        RecordStore {
            set: self.set.clone(),
            ready: self.ready.clone(),
        }
    }
}

/// The write side, fed with watch events.
pub struct RecordWriter<R> {
    set: Arc<RwLock<Set<R>>>,
    /// Records of a list in progress (between `Init` and `InitDone`).
    buffer: Option<Set<R>>,
    ready: watch::Sender<bool>,
}

/// An empty store and its writer.
pub fn record_store<R: Keyed>() -> (RecordStore<R>, RecordWriter<R>) {
    let set = Arc::new(RwLock::new(HashSet::new()));
    let (tx, rx) = watch::channel(false);
    (
        RecordStore {
            set: set.clone(),
            ready: rx,
        },
        RecordWriter {
            set,
            buffer: None,
            ready: tx,
        },
    )
}

impl<R: Keyed> RecordWriter<R> {
    /// Applies one watch event. A re-list replaces the whole set atomically at `InitDone`;
    /// the store is ready after the first one.
    pub fn apply(&mut self, ev: Event<R>) {
        let set = || self.set.write().expect("record store lock");
        match ev {
            Event::Apply(r) => {
                set().replace(ByKey(Arc::new(r)));
            }
            Event::Delete(r) => {
                set().remove(r.key());
            }
            Event::Init => self.buffer = Some(HashSet::new()),
            Event::InitApply(r) => {
                self.buffer
                    .get_or_insert_with(HashSet::new)
                    .replace(ByKey(Arc::new(r)));
            }
            Event::InitDone => {
                let mut fresh = self.buffer.take().unwrap_or_default();
                fresh.shrink_to_fit();
                *set() = fresh;
                self.ready.send_replace(true);
            }
        }
    }
}

/// A watch event of whole objects as one of records. An object `record` makes nothing of
/// (one without a name: the API server never sends one) becomes `None` and is skipped.
pub fn map_event<K, R>(ev: Event<K>, record: impl Fn(&K) -> Option<R>) -> Option<Event<R>> {
    Some(match ev {
        Event::Apply(o) => Event::Apply(record(&o)?),
        Event::Delete(o) => Event::Delete(record(&o)?),
        Event::InitApply(o) => Event::InitApply(record(&o)?),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    })
}

impl<R: Keyed> RecordStore<R> {
    /// Every record.
    pub fn state(&self) -> Vec<Arc<R>> {
        let set = self.set.read().expect("record store lock");
        set.iter().map(|r| r.0.clone()).collect()
    }

    /// The record named `key` (`namespace/name`).
    pub fn get(&self, key: &str) -> Option<Arc<R>> {
        let set = self.set.read().expect("record store lock");
        set.get(key).map(|r| r.0.clone())
    }

    /// Resolves once the first full list is in (or the writer is gone).
    pub async fn wait_until_ready(&self) {
        let mut rx = self.ready.clone();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// A ready store holding `records` (tests, fixed sources).
    pub fn from_records(records: impl IntoIterator<Item = R>) -> RecordStore<R> {
        let (store, mut writer) = record_store();
        writer.apply(Event::Init);
        for r in records {
            writer.apply(Event::InitApply(r));
        }
        writer.apply(Event::InitDone);
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Rec(&'static str, u32);
    impl Keyed for Rec {
        fn key(&self) -> &str {
            self.0
        }
    }

    fn values(s: &RecordStore<Rec>) -> Vec<(&'static str, u32)> {
        let mut v: Vec<_> = s.state().iter().map(|r| (r.0, r.1)).collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn lists_replace_atomically_and_watch_events_apply_by_key() {
        let (store, mut w) = record_store();
        w.apply(Event::Init);
        w.apply(Event::InitApply(Rec("ns/a", 1)));
        assert!(
            store.state().is_empty(),
            "a list in progress is not visible"
        );
        assert!(!*store.ready.borrow());
        w.apply(Event::InitApply(Rec("ns/b", 1)));
        w.apply(Event::InitDone);
        store.wait_until_ready().await;
        assert_eq!(values(&store), [("ns/a", 1), ("ns/b", 1)]);

        w.apply(Event::Apply(Rec("ns/a", 2)));
        w.apply(Event::Delete(Rec("ns/b", 0)));
        assert_eq!(values(&store), [("ns/a", 2)]);
        assert_eq!(store.get("ns/a").map(|r| r.1), Some(2));
        assert!(store.get("ns/b").is_none());

        // A re-list (after 410 Gone): objects deleted meanwhile disappear at InitDone.
        w.apply(Event::Init);
        w.apply(Event::InitApply(Rec("ns/c", 1)));
        assert_eq!(values(&store), [("ns/a", 2)], "old state served meanwhile");
        w.apply(Event::InitDone);
        assert_eq!(values(&store), [("ns/c", 1)]);
    }
}
