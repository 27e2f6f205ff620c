//! The bodies of the speaker's writes (pure): `SpeakerState` and `ConfigurationState`
//! server-side applies, and the `regarding` references of its Events.

use ferrolb_crds::config::{ConfigError, Kind};
use ferrolb_crds::v1alpha1::{ConfigurationStateStatus, SpeakerState};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::status::node_owner;
use serde_json::{Value, json};

/// Name of this node's `ConfigurationState`: `speaker-<node>`.
pub fn config_state_name(node: &str) -> String {
    format!("speaker-{node}")
}

/// The server-side apply bodies for a `SpeakerState`: the object (metadata + spec) and its
/// status.
pub fn apply_bodies(state: &SpeakerState) -> (Value, Value) {
    let mut metadata = json!({
        "name": state.metadata.name,
        "namespace": state.metadata.namespace,
        "annotations": state.metadata.annotations,
    });
    if let Some(owners) = &state.metadata.owner_references {
        metadata["ownerReferences"] = json!(owners);
    }
    let object = json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "SpeakerState",
        "metadata": metadata,
        "spec": state.spec,
    });
    let status = json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "SpeakerState",
        "status": state.status,
    });
    (object, status)
}

/// The server-side apply bodies for this node's `ConfigurationState` (`speaker-<node>`,
/// owned by the Node when its UID is known): the object and its status.
pub fn config_state_bodies(
    node: &str,
    namespace: &str,
    node_uid: Option<&str>,
    errors: &[ConfigError],
    now: Option<Time>,
) -> (Value, Value) {
    let mut metadata = json!({"name": config_state_name(node), "namespace": namespace});
    if let Some(uid) = node_uid {
        metadata["ownerReferences"] = json!([node_owner(node, uid)]);
    }
    let object = json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "ConfigurationState",
        "metadata": metadata,
        "spec": {"component": "speaker", "nodeName": node},
    });
    let status = json!({
        "apiVersion": ferrolb_crds::v1alpha1::API_VERSION,
        "kind": "ConfigurationState",
        "status": ConfigurationStateStatus::from_errors(errors, now),
    });
    (object, status)
}

/// What an Event is about, with the UID and resource version of the object as this speaker
/// saw it: `kubectl describe` selects Events by the object's UID, so an Event without it is
/// never shown.
pub fn regarding(
    kind: Kind,
    namespace: &str,
    name: &str,
    seen: Option<(String, String)>,
) -> ObjectReference {
    let api_version = match kind {
        Kind::Service => "v1".to_string(),
        _ => ferrolb_crds::v1alpha1::API_VERSION.to_string(),
    };
    let (uid, resource_version) = seen.unzip();
    ObjectReference {
        api_version: Some(api_version),
        kind: Some(kind.to_string()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        uid,
        resource_version,
        ..Default::default()
    }
}
