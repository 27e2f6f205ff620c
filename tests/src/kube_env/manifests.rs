//! Server-side apply of multi-document YAML (any kind, found through discovery), as
//! `kubectl apply --server-side [--dry-run=server]` does.

use std::collections::HashMap;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "ferrolb-test-harness";

/// The outcome for one YAML document.
#[derive(Debug)]
pub struct Applied {
    /// `Kind namespace/name` (namespace omitted for cluster-scoped kinds), with the line.
    pub what: String,
    /// The object as the server returned it, or the server's (or parse) error.
    pub result: Result<DynamicObject, String>,
}

/// Applies every document of `yaml` in order (server-side, forced, field manager
/// [`FIELD_MANAGER`]); `dry_run` asks the server to validate and admit without persisting.
/// Objects without a namespace go to `default_namespace` when their kind is namespaced.
pub async fn apply_yaml(
    client: &kube::Client,
    yaml: &str,
    default_namespace: &str,
    dry_run: bool,
) -> Vec<Applied> {
    let mut kinds: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    let mut out = Vec::new();
    for doc in ferrolb_crds::yaml::split_documents(yaml) {
        let parsed: Result<DynamicObject, String> =
            serde_saphyr::from_str::<serde_json::Value>(doc.text)
                .map_err(|e| e.to_string())
                .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()));
        let obj = match parsed {
            Ok(obj) => obj,
            Err(e) => {
                out.push(Applied {
                    what: format!("document at line {}", doc.line),
                    result: Err(format!("does not parse: {e}")),
                });
                continue;
            }
        };
        let types = obj.types.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let gvk = GroupVersionKind::try_from(&types)
            .unwrap_or_else(|_| GroupVersionKind::gvk("", "", &types.kind));
        let what = |ns: Option<&str>| match ns {
            Some(ns) => format!("{} {ns}/{name} (line {})", types.kind, doc.line),
            None => format!("{} {name} (line {})", types.kind, doc.line),
        };
        if !kinds.contains_key(&gvk) {
            match kube::discovery::pinned_kind(client, &gvk).await {
                Ok(found) => {
                    kinds.insert(gvk.clone(), found);
                }
                Err(e) => {
                    out.push(Applied {
                        what: what(None),
                        result: Err(format!("kind not served: {e}")),
                    });
                    continue;
                }
            }
        }
        let (ar, caps) = &kinds[&gvk];
        let namespaced = caps.scope == Scope::Namespaced;
        let ns = namespaced.then(|| {
            obj.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| default_namespace.to_string())
        });
        let api: Api<DynamicObject> = match &ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        };
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let result = api
            .patch(&name, &params, &Patch::Apply(&obj))
            .await
            .map_err(|e| e.to_string());
        out.push(Applied {
            what: what(ns.as_deref()),
            result,
        });
    }
    out
}
