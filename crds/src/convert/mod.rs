//! MetalLB YAML -> ferrolb YAML: `metallb-convert < metallb.yaml > ferrolb.yaml`.
//!
//! The six configuration kinds of `metallb.io/v1beta1`/`v1beta2` become `ferrolb.io/v1alpha1`
//! (same field names), objects in `metallb-system` move to `ferrolb-system` (Secrets included,
//! for `passwordSecret`), Service annotations `metallb.io/*` and `metallb.universe.tf/*` become
//! `ferrolb.io/*`. The legacy configuration (the `config` key of MetalLB ≤ 0.12's ConfigMap)
//! and the `v1beta1` `AddressPool` kind are converted too ([`legacy`]); `kind: List` (what
//! `kubectl get -o yaml` prints) is unpacked. Well-known community names in any spelling
//! (`NO_EXPORT`, `no_export`, ...) become ferrolb's (`no-export`).
//!
//! Nothing is dropped quietly: whatever cannot be converted (a field ferrolb lacks such as
//! `disableMP`, a kind that is not configuration, a document that does not parse) is
//! a [`Loss`] naming the object and field; the binary exits non-zero on any loss unless
//! `--allow-lossy`.

mod legacy;
mod names;

use std::fmt;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube_core::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::INSTALL_NAMESPACE;
use crate::resources::ClusterResources;
use crate::service::ALIAS_PREFIXES;
use crate::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use crate::yaml::{load_str, split_documents};

pub use names::well_known_name;

/// MetalLB's install namespace.
pub const METALLB_NAMESPACE: &str = "metallb-system";

/// MetalLB kinds that hold state MetalLB wrote, not configuration: skipped with a note.
const STATUS_KINDS: [&str; 3] = ["ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"];

/// The converted YAML, what could not be converted, and notes.
#[derive(Debug, Default)]
pub struct Conversion {
    /// ferrolb YAML, one document per converted object.
    pub yaml: String,
    /// Everything that could not be converted (non-empty = the conversion is lossy).
    pub losses: Vec<Loss>,
    /// What was changed on the way (respelled communities, skipped status objects).
    pub notes: Vec<String>,
}

/// One thing the conversion could not carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// `file:line` of the document.
    pub location: String,
    /// `Kind namespace/name` of the MetalLB object.
    pub object: String,
    /// Field path (empty for a whole object).
    pub field: String,
    /// What was dropped and why.
    pub reason: String,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}: {}", self.location, self.object, self.reason)
        } else {
            write!(
                f,
                "{}: {}: {}: {}",
                self.location, self.object, self.field, self.reason
            )
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<HeaderMeta>,
}

#[derive(serde::Deserialize, Default)]
struct HeaderMeta {
    name: Option<String>,
    namespace: Option<String>,
}

/// Converts a MetalLB multi-document YAML stream; `file` names it in losses and notes.
pub fn convert_metallb(file: &str, text: &str) -> Conversion {
    let mut out = Conversion::default();
    // Community alias names of the whole stream: an advertisement may come before its alias.
    let aliases: Vec<String> = load_str(file, text)
        .resources
        .communities
        .iter()
        .flat_map(|c| c.spec.communities.iter().map(|a| a.name.clone()))
        .collect();
    for doc in split_documents(text) {
        let location = format!("{file}:{}", doc.line);
        let text = offset_text(doc.line, doc.text);
        convert_document(file, &location, &text, &aliases, &mut out);
    }
    out
}

fn convert_document(
    file: &str,
    location: &str,
    text: &str,
    aliases: &[String],
    out: &mut Conversion,
) {
    let header = serde_saphyr::from_str::<Header>(text).ok();
    let Some(Header {
        api_version: Some(api),
        kind: Some(kind),
        metadata,
    }) = header
    else {
        out.losses.push(Loss {
            location: location.to_string(),
            object: "document".into(),
            field: String::new(),
            reason: "not a Kubernetes object (no apiVersion/kind); dropped".into(),
        });
        return;
    };
    let meta = metadata.unwrap_or_default();
    let object = format!(
        "{kind} {}/{}",
        meta.namespace.as_deref().unwrap_or("-"),
        meta.name.as_deref().unwrap_or("-")
    );
    let lossy = |reason: String| Loss {
        location: location.to_string(),
        object: object.clone(),
        field: String::new(),
        reason,
    };
    if kind == "List" || kind.ends_with("List") && api == "v1" {
        if let Err(e) = convert_list(file, location, text, aliases, out) {
            out.losses
                .push(lossy(format!("does not parse: {e}; dropped")));
        }
        return;
    }
    if api.starts_with("metallb.io/") && STATUS_KINDS.contains(&kind.as_str()) {
        out.notes.push(format!(
            "{location}: {object}: state written by MetalLB, skipped (ferrolb writes its own)"
        ));
        return;
    }
    let legacy_objects = if api == "v1" && kind == "ConfigMap" {
        match legacy_config_map(location, &object, text, &mut out.losses) {
            Some(objects) => objects,
            None => return,
        }
    } else if api == "metallb.io/v1beta1" && kind == "AddressPool" {
        let v = serde_saphyr::from_str::<Value>(text).unwrap_or(Value::Null);
        let origin = legacy::Origin {
            location,
            object: &object,
            prefix: "spec.",
        };
        let spec = v.get("spec").cloned().unwrap_or(Value::Null);
        legacy::convert_address_pool(
            &origin,
            meta.name.as_deref().unwrap_or_default(),
            spec,
            &mut out.losses,
        )
    } else {
        let doc = Doc {
            file,
            location,
            object: &object,
            kind: &kind,
            api: &api,
        };
        convert_current(&doc, text, aliases, out);
        return;
    };
    emit_legacy(file, location, &object, &legacy_objects, out);
}

/// A `v1` List: each item converted as a document of its own (`FILE:LINE items[i]`).
fn convert_list(
    file: &str,
    location: &str,
    text: &str,
    aliases: &[String],
    out: &mut Conversion,
) -> Result<(), serde_saphyr::Error> {
    let v = serde_saphyr::from_str::<Value>(text)?;
    let items = v.get("items").and_then(Value::as_array).cloned();
    for (i, item) in items.unwrap_or_default().into_iter().enumerate() {
        let loc = format!("{location} items[{i}]");
        convert_document(file, &loc, &item.to_string(), aliases, out);
    }
    Ok(())
}

/// A loss of the whole object (no field).
fn loss(location: &str, object: &str, reason: String) -> Loss {
    Loss {
        location: location.to_string(),
        object: object.to_string(),
        field: String::new(),
        reason,
    }
}

/// The objects of a legacy `ConfigMap` (its `data.config`); `None` when there are none to
/// convert (the loss is recorded).
fn legacy_config_map(
    location: &str,
    object: &str,
    text: &str,
    losses: &mut Vec<Loss>,
) -> Option<Vec<Value>> {
    let v = serde_saphyr::from_str::<Value>(text).unwrap_or(Value::Null);
    let Some(config) = v.pointer("/data/config").and_then(Value::as_str) else {
        losses.push(loss(
            location,
            object,
            "a ConfigMap without a `config` key is not MetalLB configuration; dropped".into(),
        ));
        return None;
    };
    match serde_saphyr::from_str::<Value>(config) {
        Ok(config) => {
            let origin = legacy::Origin {
                location,
                object,
                prefix: "data.config.",
            };
            Some(legacy::convert_config(&origin, config, losses))
        }
        Err(e) => {
            losses.push(Loss {
                field: "data.config".into(),
                ..loss(
                    location,
                    object,
                    format!("the legacy configuration does not parse: {e}"),
                )
            });
            None
        }
    }
}

/// A current MetalLB object (`metallb.io/v1beta1`/`v1beta2`, or anything else): converted by
/// type. MetalLB lets `spec` be omitted (an empty L2Advertisement selects every pool).
fn convert_current(doc: &Doc<'_>, text: &str, aliases: &[String], out: &mut Conversion) {
    let mut text = text.to_string();
    if doc.api.starts_with("metallb.io/")
        && let Ok(Value::Object(mut m)) = serde_saphyr::from_str::<Value>(&text)
        && !m.contains_key("spec")
    {
        m.insert("spec".into(), Value::Object(serde_json::Map::new()));
        text = Value::Object(m).to_string();
    }
    convert_typed(doc, &text, aliases, out);
}

/// Legacy objects go through the typed loader like any ferrolb YAML: a value of the wrong
/// type is a loss, not a broken output.
fn emit_legacy(
    file: &str,
    location: &str,
    object: &str,
    legacy_objects: &[Value],
    out: &mut Conversion,
) {
    let text: Vec<String> = legacy_objects.iter().map(Value::to_string).collect();
    let loaded = load_str(file, &text.join("\n---\n"));
    for e in &loaded.errors {
        out.losses
            .push(loss(location, object, format!("{e}; dropped")));
    }
    for u in &loaded.unknown_fields {
        out.losses.push(loss(
            location,
            object,
            format!("{}: field {} not converted", u.object, u.path),
        ));
    }
    emit_resources(out, loaded.resources);
}

/// Where a document came from.
struct Doc<'a> {
    file: &'a str,
    location: &'a str,
    object: &'a str,
    kind: &'a str,
    api: &'a str,
}

/// A document in ferrolb's own vocabulary (MetalLB CRDs, Services, Secrets, ...).
fn convert_typed(doc: &Doc<'_>, text: &str, aliases: &[String], out: &mut Conversion) {
    let Doc {
        file,
        location,
        object,
        kind,
        api,
    } = *doc;
    let loaded = load_str(file, text);
    let loss = |field: String, reason: String| Loss {
        location: location.to_string(),
        object: object.to_string(),
        field,
        reason,
    };
    for e in &loaded.errors {
        out.losses
            .push(loss(String::new(), format!("{e}; dropped")));
    }
    for u in &loaded.unknown_fields {
        out.losses.push(loss(
            u.path.clone(),
            "has no ferrolb equivalent; dropped".into(),
        ));
    }
    let mut r = loaded.resources;
    adjust(&mut r, location, object, aliases, out);
    let emitted = emit_resources(out, r);
    for ignored in loaded.ignored.iter().filter(|i| i.kind != kind) {
        out.losses.push(loss(
            String::new(),
            format!(
                "{} {} is not ferrolb configuration; dropped",
                ignored.api_version, ignored.kind
            ),
        ));
    }
    if emitted == 0 && loaded.errors.is_empty() {
        out.losses.push(loss(
            String::new(),
            format!("{api} {kind} is not ferrolb configuration; dropped"),
        ));
    }
}

/// What MetalLB spells differently: zero timers left unset, well-known communities by name.
fn adjust(
    r: &mut ClusterResources,
    location: &str,
    object: &str,
    aliases: &[String],
    out: &mut Conversion,
) {
    for p in &mut r.bgp_peers {
        // Go cannot tell `0s` from unset: MetalLB uses its default for both.
        for (field, value) in [
            ("spec.holdTime", &mut p.spec.hold_time),
            ("spec.keepaliveTime", &mut p.spec.keepalive_time),
            ("spec.connectTime", &mut p.spec.connect_time),
        ] {
            if value
                .as_deref()
                .and_then(|v| crate::config::parse_duration(v).ok())
                .is_some_and(|d| d.is_zero())
            {
                out.notes.push(format!(
                    "{location}: {object}: {field} 0s means the default in MetalLB; left unset"
                ));
                *value = None;
            }
        }
    }
    for ad in &mut r.bgp_advertisements {
        for c in &mut ad.spec.communities {
            if aliases.contains(&*c) {
                continue;
            }
            if let Some(name) = well_known_name(c)
                && name != c
            {
                out.notes.push(format!(
                    "{location}: {object}: community {c:?} written as {name:?}"
                ));
                *c = name.to_string();
            }
        }
    }
}

fn emit_resources(out: &mut Conversion, r: ClusterResources) -> usize {
    let services = r.services.into_iter().map(convert_service).collect();
    let peers = r.bgp_peers.into_iter().map(convert_peer).collect();
    emit_all(out, r.pools)
        + emit_all(out, r.l2_advertisements)
        + emit_all(out, r.bgp_advertisements)
        + emit_all(out, peers)
        + emit_all(out, r.communities)
        + emit_all(out, r.bfd_profiles)
        + emit_all::<Service>(out, services)
        + emit_all::<Secret>(out, r.secrets)
        + emit_all(out, r.namespaces)
        + emit_all(out, r.nodes)
        + emit_all(out, r.endpoint_slices)
}

/// Blank lines so that line numbers in errors match the original file.
fn offset_text(line: u64, text: &str) -> String {
    let pad = usize::try_from(line.saturating_sub(1)).unwrap_or(0);
    "\n".repeat(pad) + text
}

trait HasMeta {
    fn meta_mut(&mut self) -> &mut ObjectMeta;
    fn clear_status(&mut self) {}
}

macro_rules! has_meta_cr {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn meta_mut(&mut self) -> &mut ObjectMeta { &mut self.metadata }
            fn clear_status(&mut self) { self.status = None; }
        }
    )*};
}
has_meta_cr!(
    IPAddressPool,
    L2Advertisement,
    BGPAdvertisement,
    BGPPeer,
    Community,
    BFDProfile
);

macro_rules! has_meta_core {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn meta_mut(&mut self) -> &mut ObjectMeta { &mut self.metadata }
        }
    )*};
}
has_meta_core!(
    Service,
    Secret,
    k8s_openapi::api::core::v1::Namespace,
    k8s_openapi::api::core::v1::Node,
    k8s_openapi::api::discovery::v1::EndpointSlice
);

fn emit_all<T: HasMeta + Serialize + DeserializeOwned>(
    out: &mut Conversion,
    objs: Vec<T>,
) -> usize {
    let n = objs.len();
    for mut obj in objs {
        obj.clear_status();
        let m = obj.meta_mut();
        if m.namespace.as_deref() == Some(METALLB_NAMESPACE) {
            m.namespace = Some(INSTALL_NAMESPACE.to_string());
        }
        // Server-set fields make no sense in a manifest.
        m.uid = None;
        m.resource_version = None;
        m.generation = None;
        m.creation_timestamp = None;
        m.managed_fields = None;
        m.owner_references = None;
        match serde_saphyr::to_string(&obj) {
            Ok(y) => {
                out.yaml.push_str("---\n");
                out.yaml.push_str(&y);
                if !y.ends_with('\n') {
                    out.yaml.push('\n');
                }
            }
            Err(e) => out.notes.push(format!("failed to write an object: {e}")),
        }
    }
    n
}

fn convert_peer(mut peer: BGPPeer) -> BGPPeer {
    if let Some(r) = peer.spec.password_secret.as_mut()
        && r.namespace.as_deref() == Some(METALLB_NAMESPACE)
    {
        r.namespace = Some(INSTALL_NAMESPACE.to_string());
    }
    peer
}

fn convert_service(mut svc: Service) -> Service {
    if let Some(a) = svc.metadata.annotations.as_mut() {
        let keys: Vec<String> = a.keys().cloned().collect();
        for key in keys {
            for prefix in ALIAS_PREFIXES {
                if let Some(suffix) = key.strip_prefix(prefix) {
                    let ours = format!("ferrolb.io/{suffix}");
                    if let Some(v) = a.remove(&key) {
                        a.entry(ours).or_insert(v);
                    }
                }
            }
        }
    }
    svc.status = None;
    svc
}
