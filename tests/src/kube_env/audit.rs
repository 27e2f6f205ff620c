//! Reading the apiserver's audit log (JSON lines, Metadata level).

use std::path::Path;

use k8s_openapi::jiff;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    request_uri: String,
    #[serde(default)]
    user: User,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<Status>,
    #[serde(default)]
    request_received_timestamp: String,
}

#[derive(Deserialize, Default)]
struct User {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: u16,
}

/// One line per completed request answered with `code`:
/// `USER VERB RESOURCE[/SUBRESOURCE] [NAMESPACE/][NAME]` (or the URI for non-resource paths).
pub(crate) fn requests_with_code(log: &Path, code: u16) -> Vec<String> {
    requests_with_code_outside(log, code, None)
}

/// [`requests_with_code`] without the requests received inside `window` (from, to): e.g. while
/// a restarted API server was still starting (its RBAC authorizer denies until its caches
/// have synced, so every client sees 403s there).
pub(crate) fn requests_with_code_outside(
    log: &Path,
    code: u16,
    window: Option<(jiff::Timestamp, jiff::Timestamp)>,
) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let inside = |e: &Event| {
        window.is_some_and(|(from, to)| {
            e.request_received_timestamp
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t >= from && t <= to)
        })
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .filter(|e| e.stage == "ResponseComplete")
        .filter(|e| !inside(e))
        .filter(|e| e.response_status.as_ref().is_some_and(|s| s.code == code))
        .map(|e| {
            let target = match &e.object_ref {
                Some(o) => {
                    let mut t = o.resource.clone();
                    if !o.subresource.is_empty() {
                        t = format!("{t}/{}", o.subresource);
                    }
                    let place = match (o.namespace.as_str(), o.name.as_str()) {
                        ("", "") => String::new(),
                        ("", name) => format!(" {name}"),
                        (ns, "") => format!(" {ns}/"),
                        (ns, name) => format!(" {ns}/{name}"),
                    };
                    format!("{t}{place}")
                }
                None => e.request_uri.clone(),
            };
            format!("{} {} {target}", e.user.username, e.verb)
        })
        .collect()
}
