//! The controller's Events: `events.k8s.io/v1`, created with field manager
//! `ferrolb-controller`, `regarding` naming the object with its uid and resourceVersion (what
//! `kubectl describe` selects on: the core/v1 view's `involvedObject`).
//!
//! Written directly rather than through kube's `Recorder`: the controller publishes an Event
//! only when something changes (so there is no series to aggregate), and the `Recorder`
//! keeps every Event of the last 6 minutes in memory (about 10 MB after 10,000 allocations).

use ferrolb_crds::config::Kind;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use super::sink::{FIELD_MANAGER, KubeSink};
use crate::error::Error;
use crate::sink::ControllerEvent;

/// Longest `note` the API server accepts (1 kB).
pub const NOTE_MAX: usize = 1024;

impl KubeSink {
    /// The Event object for `e` at `now`.
    pub fn event_object(&self, e: &ControllerEvent, now: Timestamp) -> Event {
        let regarding = self.reference(&e.object);
        let namespace = regarding.namespace.clone();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", e.object.name, now.as_nanosecond())),
                namespace,
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if e.warning { "Warning" } else { "Normal" }.into()),
            reason: Some(e.reason.to_string()),
            note: Some(truncate(&e.message, NOTE_MAX)),
            action: Some(
                match e.object.kind {
                    Kind::Service => "Allocate",
                    _ => "Validate",
                }
                .into(),
            ),
            reporting_controller: Some(FIELD_MANAGER.into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(regarding),
            ..Event::default()
        }
    }

    /// Creates the Event for `e` in the namespace of the object it is about.
    pub async fn publish(&self, e: &ControllerEvent) -> Result<(), Error> {
        let ev = self.event_object(e, Timestamp::now());
        let ns = ev.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        api.create(&pp, &ev).await.map_err(|source| Error::Event {
            object: e.object.to_string(),
            source,
        })?;
        Ok(())
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
