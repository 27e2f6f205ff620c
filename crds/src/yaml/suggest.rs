//! "Did you mean" for unknown fields: the field names the type's JSON schema allows at the
//! same place, and the closest one by edit distance.

use serde_json::Value;

/// The closest known field to the last segment of `path` (e.g. `spec.autoAsign` ->
/// `spec.autoAssign`), from the JSON schema `schema` of the document's type; `None` when no
/// known field is close (at most 2 edits, and fewer than half the name).
pub fn did_you_mean(schema: &Value, path: &str) -> Option<String> {
    let (parent, name) = match path.rsplit_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, path),
    };
    let mut node = schema;
    if let Some(parent) = parent {
        for segment in segments(parent) {
            node = match segment {
                Segment::Field(f) => properties(schema, node)?.get(f)?,
                Segment::Index => items(schema, node)?,
            };
        }
    }
    let known = properties(schema, node)?;
    let best = known
        .keys()
        .map(|k| (distance(k, name), k))
        .filter(|(d, k)| *d > 0 && *d <= 2 && *d * 2 < name.len().max(k.len()))
        .min()?;
    Some(match parent {
        Some(p) => format!("{p}.{}", best.1),
        None => best.1.clone(),
    })
}

enum Segment<'a> {
    Field(&'a str),
    Index,
}

/// `spec.ports[0].name` -> Field(spec), Field(ports), Index, Field(name).
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (field, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !field.is_empty() {
            out.push(Segment::Field(field));
        }
        out.extend(rest.matches('[').map(|_| Segment::Index));
    }
    out
}

/// Follows `$ref` (into the root's `$defs`/`definitions`) and the variants of
/// `anyOf`/`oneOf`/`allOf` (how schemars writes `Option<T>`) until `pick` finds something.
fn resolve<'a>(
    root: &'a Value,
    node: &'a Value,
    pick: &dyn Fn(&'a Value) -> Option<&'a Value>,
    depth: usize,
) -> Option<&'a Value> {
    if depth > 16 {
        return None;
    }
    if let Some(found) = pick(node) {
        return Some(found);
    }
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next()?;
        let target = root
            .get("$defs")
            .and_then(|d| d.get(name))
            .or_else(|| root.get("definitions").and_then(|d| d.get(name)))?;
        return resolve(root, target, pick, depth + 1);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for variant in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(found) = resolve(root, variant, pick, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

fn properties<'a>(root: &'a Value, node: &'a Value) -> Option<&'a serde_json::Map<String, Value>> {
    resolve(root, node, &|n| n.get("properties"), 0)?.as_object()
}

fn items<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    resolve(root, node, &|n| n.get("items"), 0)
}

/// Levenshtein distance (ASCII case-insensitive), on chars.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert_eq!(distance("autoAsign", "autoAssign"), 1);
        assert_eq!(distance("peerASN", "peerasn"), 0);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_through_refs_options_and_arrays() {
        let schema = serde_json::json!({
            "properties": {"spec": {"$ref": "#/$defs/Spec"}},
            "$defs": {
                "Spec": {"properties": {
                    "autoAssign": {"type": "boolean"},
                    "ports": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/Port"}, {"type": "null"}]}}
                }},
                "Port": {"properties": {"port": {}, "protocol": {}}}
            }
        });
        assert_eq!(
            did_you_mean(&schema, "spec.autoAsign").as_deref(),
            Some("spec.autoAssign")
        );
        assert_eq!(
            did_you_mean(&schema, "spec.ports[1].protocl").as_deref(),
            Some("spec.ports[1].protocol")
        );
        assert_eq!(did_you_mean(&schema, "spec.vrf"), None, "nothing close");
        assert_eq!(did_you_mean(&schema, "spek").as_deref(), Some("spec"));
    }
}
