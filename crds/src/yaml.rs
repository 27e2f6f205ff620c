//! Multi-document YAML -> [`ClusterResources`] (standalone mode and the example tests).
//!
//! Documents of our kinds and of `Service`, `EndpointSlice`, `Node`, `Namespace` and `Secret`
//! are decoded with their typed structs; other kinds (Deployments, RBAC, CRDs...) are listed in
//! [`Loaded::ignored`]. A bad document is an error carrying the file name and line; the other
//! documents still load.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::resources::ClusterResources;
use crate::v1alpha1::API_VERSION;

/// The outcome of loading YAML.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Decoded objects.
    pub resources: ClusterResources,
    /// Documents of kinds ferrolb does not read: (file, line, `apiVersion`, `kind`).
    pub ignored: Vec<IgnoredDocument>,
    /// Documents that failed to decode.
    pub errors: Vec<Error>,
    /// Fields the typed structs do not know (typos such as `autoAsign`, or MetalLB-only fields
    /// such as `vrf`); the document loaded without them.
    pub unknown_fields: Vec<UnknownField>,
}

/// A field of a loaded document that ferrolb does not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownField {
    /// File name.
    pub file: String,
    /// 1-based line of the document start.
    pub line: u64,
    /// `kind "name"` of the document.
    pub object: String,
    /// Path of the field, e.g. `spec.autoAsign`.
    pub path: String,
}

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: unknown field {} (ignored)",
            self.file, self.line, self.object, self.path
        )
    }
}

/// A document that was skipped because ferrolb does not read its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredDocument {
    /// File name.
    pub file: String,
    /// 1-based line of the document start.
    pub line: u64,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<HeaderMeta>,
}

#[derive(Deserialize)]
struct ListItems {
    #[serde(default)]
    items: Vec<Value>,
}

#[derive(Deserialize)]
struct HeaderMeta {
    #[serde(default)]
    name: Option<String>,
}

/// MetalLB API versions whose kinds are read as ferrolb's (same kinds and field names); fields
/// ferrolb lacks (`vrf`, `interface`, `disableMP`) are reported in [`Loaded::unknown_fields`].
pub const METALLB_API_VERSIONS: [&str; 2] = ["metallb.io/v1beta1", "metallb.io/v1beta2"];

/// One document of a stream: its text and the 1-based line it starts on.
pub struct Document<'a> {
    /// Text of the document (without the `---` line).
    pub text: &'a str,
    /// 1-based line of the first line of `text` in the stream.
    pub line: u64,
}

/// Splits a YAML stream at `---` lines (documents that hold only comments or blanks are
/// dropped).
pub fn split_documents<'a>(text: &'a str) -> Vec<Document<'a>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u64;
    let mut offset = 0usize;
    let push = |from: usize, to: usize, line: u64, docs: &mut Vec<Document<'a>>| {
        let doc = &text[from..to];
        let meaningful = doc.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "..."
        });
        if meaningful {
            docs.push(Document { text: doc, line });
        }
    };
    for (line_no, line) in (1u64..).zip(text.split_inclusive('\n')) {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            push(start, offset, start_line, &mut docs);
            start = offset + line.len();
            start_line = line_no + 1;
        }
        offset += line.len();
    }
    push(start, text.len(), start_line, &mut docs);
    docs
}

/// Loads every document of `text`; `file` names it in errors.
pub fn load_str(file: &str, text: &str) -> Loaded {
    let mut out = Loaded::default();
    for doc in split_documents(text) {
        load_document(file, &doc, &mut out);
    }
    out
}

/// Loads every `.yaml`/`.yml` file under `dir`, recursively, in path order.
pub fn load_dir(dir: &Path) -> Loaded {
    let mut out = Loaded::default();
    let mut files = Vec::new();
    if let Err(e) = collect_yaml_files(dir, &mut files) {
        out.errors.push(e);
    }
    files.sort();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let loaded = load_str(&path.display().to_string(), &text);
                out.resources.extend(loaded.resources);
                out.ignored.extend(loaded.ignored);
                out.errors.extend(loaded.errors);
                out.unknown_fields.extend(loaded.unknown_fields);
            }
            Err(source) => out.errors.push(Error::Io { path, source }),
        }
    }
    out
}

/// Every `.yaml`/`.yml` file under `dir`, recursively.
pub fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

fn decode<T: DeserializeOwned + Serialize>(
    file: &str,
    doc: &Document<'_>,
    what: &str,
    out: &mut Loaded,
) -> Option<T> {
    match serde_saphyr::from_str::<T>(doc.text) {
        Ok(v) => {
            if let (Ok(input), Ok(typed)) = (
                serde_saphyr::from_str::<Value>(doc.text),
                serde_json::to_value(&v),
            ) {
                let mut paths = Vec::new();
                unknown_paths(&input, &typed, "", &mut paths);
                out.unknown_fields
                    .extend(paths.into_iter().map(|path| UnknownField {
                        file: file.to_string(),
                        line: doc.line,
                        object: what.to_string(),
                        path,
                    }));
            }
            Some(v)
        }
        Err(source) => {
            let rel = source.location().map(|l| l.line()).unwrap_or(1).max(1);
            out.errors.push(Error::Yaml {
                file: file.to_string(),
                line: doc.line + rel - 1,
                what: what.to_string(),
                message: source.to_string(),
                source: Box::new(source),
            });
            None
        }
    }
}

/// Keys of `input` that the typed value dropped (ignoring null and empty values, which typed
/// structs legitimately omit).
fn unknown_paths(input: &Value, typed: &Value, prefix: &str, out: &mut Vec<String>) {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match t.get(k) {
                    Some(tv) => unknown_paths(v, tv, &path, out),
                    None if empty(v) => {}
                    None => out.push(path),
                }
            }
        }
        (Value::Array(i), Value::Array(t)) if i.len() == t.len() => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                unknown_paths(iv, tv, &format!("{prefix}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn load_document(file: &str, doc: &Document<'_>, out: &mut Loaded) {
    let header = match serde_saphyr::from_str::<Header>(doc.text) {
        Ok(h) => h,
        Err(source) => {
            let rel = source.location().map(|l| l.line()).unwrap_or(1).max(1);
            out.errors.push(Error::Yaml {
                file: file.to_string(),
                line: doc.line + rel - 1,
                what: "YAML document".to_string(),
                message: source.to_string(),
                source: Box::new(source),
            });
            return;
        }
    };
    let (Some(api_version), Some(kind)) = (header.api_version, header.kind) else {
        out.errors.push(Error::Object {
            file: file.to_string(),
            line: doc.line,
            message: "document has no apiVersion or no kind".to_string(),
        });
        return;
    };
    let name = header.metadata.and_then(|m| m.name).unwrap_or_default();
    let what = format!("{kind} {name:?}");
    let ours = api_version == API_VERSION || METALLB_API_VERSIONS.contains(&api_version.as_str());
    match (ours, api_version.as_str(), kind.as_str()) {
        (true, _, "IPAddressPool") => {
            let v = decode(file, doc, &what, out);
            out.resources.pools.extend(v);
        }
        (true, _, "L2Advertisement") => {
            let v = decode(file, doc, &what, out);
            out.resources.l2_advertisements.extend(v);
        }
        (true, _, "BGPAdvertisement") => {
            let v = decode(file, doc, &what, out);
            out.resources.bgp_advertisements.extend(v);
        }
        (true, _, "BGPPeer") => {
            let v = decode(file, doc, &what, out);
            out.resources.bgp_peers.extend(v);
        }
        (true, _, "Community") => {
            let v = decode(file, doc, &what, out);
            out.resources.communities.extend(v);
        }
        (true, _, "BFDProfile") => {
            let v = decode(file, doc, &what, out);
            out.resources.bfd_profiles.extend(v);
        }
        (_, "v1", "Service") => {
            let v = decode(file, doc, &what, out);
            out.resources.services.extend(v);
        }
        (_, "v1", "Node") => {
            let v = decode(file, doc, &what, out);
            out.resources.nodes.extend(v);
        }
        (_, "v1", "Namespace") => {
            let v = decode(file, doc, &what, out);
            out.resources.namespaces.extend(v);
        }
        (_, "v1", "Secret") => {
            let v = decode(file, doc, &what, out);
            out.resources.secrets.extend(v);
        }
        (_, "discovery.k8s.io/v1", "EndpointSlice") => {
            let v = decode(file, doc, &what, out);
            out.resources.endpoint_slices.extend(v);
        }
        (_, "v1", "List") => {
            // `kubectl get ... -o yaml` output: load each item as its own document.
            match serde_saphyr::from_str::<ListItems>(doc.text) {
                Ok(list) => {
                    for item in list.items {
                        match serde_saphyr::to_string(&item) {
                            Ok(text) => load_document(
                                file,
                                &Document {
                                    text: &text,
                                    line: doc.line,
                                },
                                out,
                            ),
                            Err(e) => out.errors.push(Error::Object {
                                file: file.to_string(),
                                line: doc.line,
                                message: format!("failed to re-encode a List item: {e}"),
                            }),
                        }
                    }
                }
                Err(source) => out.errors.push(Error::Yaml {
                    file: file.to_string(),
                    line: doc.line,
                    what: "List".to_string(),
                    message: source.to_string(),
                    source: Box::new(source),
                }),
            }
        }
        _ => out.ignored.push(IgnoredDocument {
            file: file.to_string(),
            line: doc.line,
            api_version,
            kind,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "\
# leading comment
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata:
  name: a
spec:
  addresses: [192.0.2.0/28]
---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata:
  name: bad
spec:
  myASN: not-a-number
  peerAddress: 192.0.2.1
";

    #[test]
    fn loads_known_kinds_and_reports_bad_documents_with_lines() {
        let loaded = load_str("test.yaml", STREAM);
        assert_eq!(loaded.resources.pools.len(), 1);
        assert_eq!(
            loaded.resources.pools[0].spec.addresses,
            vec!["192.0.2.0/28".to_string()]
        );
        assert_eq!(loaded.resources.services.len(), 1);
        assert_eq!(loaded.ignored.len(), 1);
        assert_eq!(loaded.ignored[0].kind, "Deployment");
        assert_eq!(loaded.ignored[0].line, 18);
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        match &loaded.errors[0] {
            Error::Yaml {
                file, line, what, ..
            } => {
                assert_eq!(file, "test.yaml");
                assert_eq!(*line, 27, "line of `myASN: not-a-number`");
                assert_eq!(what, "BGPPeer \"bad\"");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn document_without_kind_is_an_error() {
        let loaded = load_str("x.yaml", "---\nfoo: bar\n");
        assert!(matches!(
            &loaded.errors[..],
            [Error::Object { line: 2, .. }]
        ));
    }

    #[test]
    fn unknown_fields_are_reported_and_the_document_still_loads() {
        let text = "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ferrolb-system}\nspec:\n  addresses: [192.0.2.0/28]\n  autoAsign: false\n  interfaces: []\n  serviceAllocation: {priority: 1, bogus: x}\n";
        let loaded = load_str("p.yaml", text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.resources.pools.len(), 1);
        let paths: Vec<&str> = loaded
            .unknown_fields
            .iter()
            .map(|u| u.path.as_str())
            .collect();
        assert_eq!(paths, ["spec.autoAsign", "spec.serviceAllocation.bogus"]);
        assert_eq!(
            loaded.unknown_fields[0].to_string(),
            "p.yaml:1: IPAddressPool \"p\": unknown field spec.autoAsign (ignored)"
        );
    }

    #[test]
    fn metallb_documents_load_as_ferrolb_kinds() {
        let text = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor, namespace: metallb-system}\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: red\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/28]}\n";
        let loaded = load_str("m.yaml", text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(
            (
                loaded.resources.bgp_peers.len(),
                loaded.resources.pools.len()
            ),
            (1, 1)
        );
        assert_eq!(loaded.unknown_fields.len(), 1);
        assert_eq!(loaded.unknown_fields[0].path, "spec.vrf");
        // Core kinds round-trip without false positives.
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d, annotations: {a: b}}\nspec:\n  type: LoadBalancer\n  ports: [{port: 80, targetPort: http, protocol: TCP}]\n  selector: {app: x}\n";
        let loaded = load_str("s.yaml", svc);
        assert!(
            loaded.unknown_fields.is_empty(),
            "{:?}",
            loaded.unknown_fields
        );
    }

    #[test]
    fn lists_from_kubectl_are_unpacked() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: a, namespace: metallb-system}\n  spec: {addresses: [192.0.2.0/28]}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, namespace: d}\n  spec: {type: LoadBalancer}\nmetadata: {resourceVersion: \"\"}\n";
        let loaded = load_str("l.yaml", text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.resources.pools.len(), 1);
        assert_eq!(loaded.resources.services.len(), 1);
    }
}
