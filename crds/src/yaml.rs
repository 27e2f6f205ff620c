//! Multi-document YAML -> [`ClusterResources`] (standalone mode and the example tests).
//!
//! Documents of our kinds and of `Service`, `EndpointSlice`, `Node`, `Namespace` and `Secret`
//! are decoded with their typed structs; other kinds (Deployments, RBAC, CRDs...) are listed in
//! [`Loaded::ignored`]. A bad document is an error carrying the file name and line; the other
//! documents still load.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

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
struct HeaderMeta {
    #[serde(default)]
    name: Option<String>,
}

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

fn decode<T: DeserializeOwned>(
    file: &str,
    doc: &Document<'_>,
    what: &str,
    errors: &mut Vec<Error>,
) -> Option<T> {
    match serde_saphyr::from_str::<T>(doc.text) {
        Ok(v) => Some(v),
        Err(source) => {
            let rel = source.location().map(|l| l.line()).unwrap_or(1).max(1);
            errors.push(Error::Yaml {
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

fn load_document(file: &str, doc: &Document<'_>, out: &mut Loaded) {
    let Some(header) = decode::<Header>(file, doc, "YAML document", &mut out.errors) else {
        return;
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
    let errs = &mut out.errors;
    let r = &mut out.resources;
    match (api_version.as_str(), kind.as_str()) {
        (API_VERSION, "IPAddressPool") => r.pools.extend(decode(file, doc, &what, errs)),
        (API_VERSION, "L2Advertisement") => {
            r.l2_advertisements.extend(decode(file, doc, &what, errs))
        }
        (API_VERSION, "BGPAdvertisement") => {
            r.bgp_advertisements.extend(decode(file, doc, &what, errs))
        }
        (API_VERSION, "BGPPeer") => r.bgp_peers.extend(decode(file, doc, &what, errs)),
        (API_VERSION, "Community") => r.communities.extend(decode(file, doc, &what, errs)),
        (API_VERSION, "BFDProfile") => r.bfd_profiles.extend(decode(file, doc, &what, errs)),
        ("v1", "Service") => r.services.extend(decode(file, doc, &what, errs)),
        ("v1", "Node") => r.nodes.extend(decode(file, doc, &what, errs)),
        ("v1", "Namespace") => r.namespaces.extend(decode(file, doc, &what, errs)),
        ("v1", "Secret") => r.secrets.extend(decode(file, doc, &what, errs)),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            r.endpoint_slices.extend(decode(file, doc, &what, errs))
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
}
