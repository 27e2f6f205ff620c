//! MetalLB YAML -> ferrolb YAML: `metallb-convert < metallb.yaml > ferrolb.yaml`.
//!
//! The six configuration kinds of `metallb.io/v1beta1`/`v1beta2` become `ferrolb.io/v1alpha1`
//! (same field names), objects in `metallb-system` move to `ferrolb-system` (Secrets included,
//! for `passwordSecret`), Service annotations `metallb.io/*` and `metallb.universe.tf/*` become
//! `ferrolb.io/*`. Fields ferrolb lacks (`vrf`, `interface`, `disableMP`, ...) and documents of
//! other kinds (MetalLB's own Deployments, RBAC, ...) are dropped with a warning.

use k8s_openapi::api::core::v1::{Secret, Service};
use kube_core::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::INSTALL_NAMESPACE;
use crate::service::ALIAS_PREFIXES;
use crate::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use crate::yaml::{load_str, split_documents};

/// MetalLB's install namespace.
pub const METALLB_NAMESPACE: &str = "metallb-system";

/// The converted YAML and what was dropped or could not be converted.
#[derive(Debug, Default)]
pub struct Conversion {
    /// ferrolb YAML, one document per converted object.
    pub yaml: String,
    /// Human-readable notes (`file:line: ...`) about dropped fields and documents, and errors.
    pub warnings: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}

/// Converts a MetalLB multi-document YAML stream; `file` names it in warnings.
pub fn convert_metallb(file: &str, text: &str) -> Conversion {
    let mut out = Conversion::default();
    for doc in split_documents(text) {
        let header = serde_saphyr::from_str::<Header>(doc.text).ok();
        let (api, kind) = match header {
            Some(Header {
                api_version: Some(a),
                kind: Some(k),
            }) => (a, k),
            _ => {
                out.warnings.push(format!(
                    "{file}:{}: not a Kubernetes object, dropped",
                    doc.line
                ));
                continue;
            }
        };
        let loaded = load_str(file, &offset_text(doc.line, doc.text));
        for e in &loaded.errors {
            out.warnings.push(format!("{e}; dropped"));
        }
        for u in &loaded.unknown_fields {
            out.warnings.push(format!(
                "{file}:{}: {}: field {} has no ferrolb equivalent, dropped",
                doc.line, u.object, u.path
            ));
        }
        let r = loaded.resources;
        let services = r.services.into_iter().map(convert_service).collect();
        let peers = r.bgp_peers.into_iter().map(convert_peer).collect();
        let emitted = emit_all(&mut out, r.pools)
            + emit_all(&mut out, r.l2_advertisements)
            + emit_all(&mut out, r.bgp_advertisements)
            + emit_all(&mut out, peers)
            + emit_all(&mut out, r.communities)
            + emit_all(&mut out, r.bfd_profiles)
            + emit_all::<Service>(&mut out, services)
            + emit_all::<Secret>(&mut out, r.secrets)
            + emit_all(&mut out, r.namespaces)
            + emit_all(&mut out, r.nodes)
            + emit_all(&mut out, r.endpoint_slices);
        for ignored in loaded.ignored.iter().filter(|i| i.kind != kind) {
            out.warnings.push(format!(
                "{file}:{}: {} {} is not ferrolb configuration, dropped",
                doc.line, ignored.api_version, ignored.kind
            ));
        }
        if emitted == 0 && loaded.errors.is_empty() {
            out.warnings.push(format!(
                "{file}:{}: {api} {kind} is not ferrolb configuration, dropped",
                doc.line
            ));
        }
    }
    out
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
            Err(e) => out.warnings.push(format!("failed to write an object: {e}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    const METALLB: &str = "\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod, namespace: metallb-system, uid: abc, resourceVersion: \"7\"}
spec:
  addresses: [192.0.2.0/28]
  autoAssign: false
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 192.0.2.1
  vrf: red
  passwordSecret: {name: md5, namespace: metallb-system}
---
apiVersion: v1
kind: Secret
metadata: {name: md5, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: x}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: {metallb.universe.tf/address-pool: prod, metallb.io/allow-shared-ip: k, other: keep}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
";

    #[test]
    fn converts_metallb_configuration() {
        let c = convert_metallb("m.yaml", METALLB);
        let loaded = load_str("out.yaml", &c.yaml);
        assert!(loaded.errors.is_empty(), "{:?}\n{}", loaded.errors, c.yaml);
        assert!(
            loaded.unknown_fields.is_empty(),
            "{:?}",
            loaded.unknown_fields
        );
        assert!(c.yaml.contains("apiVersion: ferrolb.io/v1alpha1"));
        assert!(!c.yaml.contains("metallb"), "{}", c.yaml);
        assert!(!c.yaml.contains("uid:") && !c.yaml.contains("resourceVersion"));
        let r = &loaded.resources;
        assert_eq!(
            r.pools[0].metadata.namespace.as_deref(),
            Some("ferrolb-system")
        );
        assert_eq!(r.pools[0].spec.auto_assign, Some(false));
        assert_eq!(
            r.secrets[0].metadata.namespace.as_deref(),
            Some("ferrolb-system")
        );
        let a = r.services[0].metadata.annotations.as_ref().unwrap();
        assert_eq!(a["ferrolb.io/address-pool"], "prod");
        assert_eq!(a["ferrolb.io/allow-shared-ip"], "k");
        assert_eq!(a["other"], "keep");
        // The converted config validates (the peer's Secret moved along with it).
        let out = crate::Config::build(r, None);
        assert!(out.is_valid(), "{:?}", out.errors);
        assert_eq!(out.config.peers["tor"].password.as_deref(), Some("x"));
        assert_eq!(c.warnings.len(), 2, "{:#?}", c.warnings);
        assert!(c.warnings[0].contains("m.yaml:8:") && c.warnings[0].contains("spec.vrf"));
        assert!(c.warnings[1].contains("m.yaml:32:") && c.warnings[1].contains("DaemonSet"));
    }
}
