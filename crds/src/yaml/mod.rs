//! Multi-document YAML -> [`ClusterResources`] (standalone mode and the example tests).
//!
//! Documents of our kinds and of `Service`, `EndpointSlice`, `Node`, `Namespace` and `Secret`
//! are decoded with their typed structs; other kinds (Deployments, RBAC, CRDs...) are listed in
//! [`Loaded::ignored`]. A bad document is an error carrying the file name and line; the other
//! documents still load.
//!
//! Parsing is bounded ([`ParseLimits`]): objects per text, nesting depth, nodes per document and
//! alias expansion (a "billion laughs" document is refused before it allocates much). Reading
//! files and directories is not done here: the binaries use `ferrolb-cluster`.

mod suggest;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
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
    /// The closest known field at the same place, e.g. `spec.autoAssign`.
    pub suggestion: Option<String>,
}

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: unknown field {} (ignored)",
            self.file, self.line, self.object, self.path
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean {s}?")?;
        }
        Ok(())
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
/// ferrolb lacks (such as `disableMP`) are reported in [`Loaded::unknown_fields`].
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

/// Bounds on the cost of parsing one text (one file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Objects (documents and `List` items) in one text; more refuses the whole text.
    pub max_objects: usize,
    /// Nesting depth of mappings and sequences in one document.
    pub max_depth: usize,
    /// YAML nodes (scalars, mappings, sequences) in one document.
    pub max_nodes: usize,
    /// Alias (`*name`) uses in one document.
    pub max_aliases: usize,
    /// Events replayed by alias expansion in one document (what a "billion laughs" inflates).
    pub max_alias_replay: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_objects: 10_000,
            max_depth: 32,
            max_nodes: 200_000,
            max_aliases: 1_000,
            max_alias_replay: 10_000,
        }
    }
}

impl ParseLimits {
    fn options(&self) -> serde_saphyr::Options {
        serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_depth: self.max_depth,
                max_nodes: self.max_nodes,
                max_aliases: self.max_aliases,
                max_documents: 1,
            },
            alias_limits: serde_saphyr::alias_limits! {
                max_total_replayed_events: self.max_alias_replay,
            },
        }
    }
}

/// Loads every document of `text` with the default [`ParseLimits`]; `file` names it in errors.
pub fn load_str(file: &str, text: &str) -> Loaded {
    load_str_with(file, text, &ParseLimits::default())
}

/// Loads every document of `text` within `limits`; `file` names it in errors. More objects than
/// `limits.max_objects` gives one [`Error::Limit`] and no objects at all.
pub fn load_str_with(file: &str, text: &str, limits: &ParseLimits) -> Loaded {
    let mut out = Loaded::default();
    let docs = split_documents(text);
    if docs.len() > limits.max_objects {
        out.errors.push(too_many_objects(file, docs.len(), limits));
        return out;
    }
    let cx = Cx {
        file,
        limits,
        options: limits.options(),
    };
    for doc in docs {
        load_document(&cx, &doc, &mut out);
    }
    let objects = count(&out.resources) + out.ignored.len();
    if objects > limits.max_objects {
        return Loaded {
            errors: vec![too_many_objects(file, objects, limits)],
            ..Loaded::default()
        };
    }
    out
}

fn too_many_objects(file: &str, count: usize, limits: &ParseLimits) -> Error {
    Error::Limit {
        file: file.to_string(),
        what: "objects",
        value: count as u64,
        limit: limits.max_objects as u64,
    }
}

/// What every document of one text is parsed with.
struct Cx<'a> {
    file: &'a str,
    limits: &'a ParseLimits,
    options: serde_saphyr::Options,
}

/// Loads every `.yaml`/`.yml` file under `dir`, recursively, in path order, for tools and
/// tests that check example directories (the binaries read `--manifests DIR` through
/// `ferrolb-cluster`, which also keeps each file's last good version).
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

fn parse_error(cx: &Cx<'_>, doc: &Document<'_>, what: &str, source: serde_saphyr::Error) -> Error {
    let rel = source.location().map(|l| l.line()).unwrap_or(1).max(1);
    let mut message = source.to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("budget") || lower.contains("alias") || lower.contains("depth") {
        // Name the limits, so the reader knows what to change.
        let l = cx.limits;
        message = format!(
            "{message} (parse limits per document: depth {}, {} nodes, {} aliases, {} events replayed by aliases)",
            l.max_depth, l.max_nodes, l.max_aliases, l.max_alias_replay
        );
    }
    Error::Yaml {
        file: cx.file.to_string(),
        line: doc.line + rel - 1,
        what: what.to_string(),
        message,
        source: Box::new(source),
    }
}

fn decode<T: DeserializeOwned + Serialize + JsonSchema>(
    cx: &Cx<'_>,
    doc: &Document<'_>,
    what: &str,
    out: &mut Loaded,
) -> Option<T> {
    match serde_saphyr::from_str_with_options::<T>(doc.text, cx.options.clone()) {
        Ok(v) => {
            if let (Ok(input), Ok(typed)) = (
                serde_saphyr::from_str_with_options::<Value>(doc.text, cx.options.clone()),
                serde_json::to_value(&v),
            ) {
                let mut paths = Vec::new();
                unknown_paths(&input, &typed, "", &mut paths);
                if !paths.is_empty() {
                    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
                    out.unknown_fields
                        .extend(paths.into_iter().map(|path| UnknownField {
                            file: cx.file.to_string(),
                            line: doc.line,
                            object: what.to_string(),
                            suggestion: suggest::did_you_mean(&schema, &path),
                            path,
                        }));
                }
            }
            Some(v)
        }
        Err(source) => {
            out.errors.push(parse_error(cx, doc, what, source));
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

fn load_document(cx: &Cx<'_>, doc: &Document<'_>, out: &mut Loaded) {
    let file = cx.file;
    let header = match serde_saphyr::from_str_with_options::<Header>(doc.text, cx.options.clone()) {
        Ok(h) => h,
        Err(source) => {
            out.errors
                .push(parse_error(cx, doc, "YAML document", source));
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
            let v = decode(cx, doc, &what, out);
            out.resources.pools.extend(v);
        }
        (true, _, "L2Advertisement") => {
            let v = decode(cx, doc, &what, out);
            out.resources.l2_advertisements.extend(v);
        }
        (true, _, "BGPAdvertisement") => {
            let v = decode(cx, doc, &what, out);
            out.resources.bgp_advertisements.extend(v);
        }
        (true, _, "BGPPeer") => {
            let v = decode(cx, doc, &what, out);
            out.resources.bgp_peers.extend(v);
        }
        (true, _, "Community") => {
            let v = decode(cx, doc, &what, out);
            out.resources.communities.extend(v);
        }
        (true, _, "BFDProfile") => {
            let v = decode(cx, doc, &what, out);
            out.resources.bfd_profiles.extend(v);
        }
        (_, "v1", "Service") => {
            let v = decode(cx, doc, &what, out);
            out.resources.services.extend(v);
        }
        (_, "v1", "Node") => {
            let v = decode(cx, doc, &what, out);
            out.resources.nodes.extend(v);
        }
        (_, "v1", "Namespace") => {
            let v = decode(cx, doc, &what, out);
            out.resources.namespaces.extend(v);
        }
        (_, "v1", "Secret") => {
            let v = decode(cx, doc, &what, out);
            out.resources.secrets.extend(v);
        }
        (_, "discovery.k8s.io/v1", "EndpointSlice") => {
            let v = decode(cx, doc, &what, out);
            out.resources.endpoint_slices.extend(v);
        }
        (_, "v1", "List") => load_list(cx, doc, out),
        _ => out.ignored.push(IgnoredDocument {
            file: file.to_string(),
            line: doc.line,
            api_version,
            kind,
        }),
    }
}

/// `kubectl get ... -o yaml` output: each item is loaded as its own document.
fn load_list(cx: &Cx<'_>, doc: &Document<'_>, out: &mut Loaded) {
    let file = cx.file;
    let list = match serde_saphyr::from_str_with_options::<ListItems>(doc.text, cx.options.clone())
    {
        Ok(list) => list,
        Err(source) => {
            out.errors.push(parse_error(cx, doc, "List", source));
            return;
        }
    };
    if list.items.len() > cx.limits.max_objects {
        out.errors
            .push(too_many_objects(file, list.items.len(), cx.limits));
        return;
    }
    for item in list.items {
        match serde_saphyr::to_string(&item) {
            Ok(text) => load_document(
                cx,
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

/// Number of objects in `res`.
fn count(res: &ClusterResources) -> usize {
    res.pools.len()
        + res.l2_advertisements.len()
        + res.bgp_advertisements.len()
        + res.bgp_peers.len()
        + res.communities.len()
        + res.bfd_profiles.len()
        + res.services.len()
        + res.endpoint_slices.len()
        + res.nodes.len()
        + res.namespaces.len()
        + res.secrets.len()
}

#[cfg(test)]
mod tests;
