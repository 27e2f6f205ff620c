//! Reading the apiserver's audit log (JSON lines, Metadata level).

use std::path::Path;

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
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .filter(|e| e.stage == "ResponseComplete")
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
