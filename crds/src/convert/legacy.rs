//! MetalLB's legacy configuration: the `config` key of the `metallb-system/config` ConfigMap
//! (MetalLB ≤ 0.12: `peers`, `address-pools`, `bgp-communities`, `bfd-profiles`; the older
//! spellings `cidr`, `advertisements` and `communities` too) and the `metallb.io/v1beta1`
//! `AddressPool` kind (0.13, removed in 0.14). Each becomes ferrolb objects as JSON values
//! (checked against the real types by the caller); every key that is not understood is a
//! [`Loss`] naming the field.

use serde_json::{Map, Value, json};

use super::Loss;
use super::names::community;
use crate::INSTALL_NAMESPACE;

const API: &str = "ferrolb.io/v1alpha1";

/// Where the legacy objects came from (for losses).
pub struct Origin<'a> {
    /// `file:line` of the document.
    pub location: &'a str,
    /// `ConfigMap metallb-system/config` or `AddressPool metallb-system/x`.
    pub object: &'a str,
    /// Field path prefix, e.g. `data.config.` or `spec.`.
    pub prefix: &'a str,
}

impl Origin<'_> {
    fn loss(&self, field: impl std::fmt::Display, reason: impl Into<String>) -> Loss {
        Loss {
            location: self.location.to_string(),
            object: self.object.to_string(),
            field: format!("{}{field}", self.prefix),
            reason: reason.into(),
        }
    }
}

/// Takes the first present key of `keys` out of `m`.
fn take(m: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter().find_map(|k| m.remove(*k))
}

/// Every key left in `m` is a loss.
fn rest(origin: &Origin<'_>, path: &str, m: Map<String, Value>, out: &mut Vec<Loss>) {
    for (k, v) in m {
        out.push(origin.loss(
            format!("{path}{k}"),
            format!("{v} has no ferrolb equivalent; dropped"),
        ));
    }
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": API,
        "kind": kind,
        "metadata": {"name": name, "namespace": INSTALL_NAMESPACE},
        "spec": spec,
    })
}

/// Kubernetes object names: lower case, `-` for anything else.
fn dns_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    n.trim_matches('-').to_string()
}

/// A legacy duration: a number of seconds or a Go duration string.
fn duration(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(format!("{n}s")),
        other => other,
    }
}

/// The legacy `config` document.
pub fn convert_config(origin: &Origin<'_>, config: Value, losses: &mut Vec<Loss>) -> Vec<Value> {
    let mut out = Vec::new();
    let Value::Object(mut m) = config else {
        losses.push(origin.loss("", "not a mapping; nothing converted"));
        return out;
    };
    let mut aliases = Vec::new();
    if let Some(Value::Object(c)) = take(&mut m, &["bgp-communities", "communities"]) {
        for (k, v) in c {
            aliases.push((k, v.as_str().map(str::to_string).unwrap_or(v.to_string())));
        }
    }
    if !aliases.is_empty() {
        // Kept as a Community object too (advertisements get the values inline), except the
        // aliases that only spell a well-known name ferrolb knows anyway.
        let list: Vec<Value> = aliases
            .iter()
            .filter(|(n, _)| super::names::well_known_name(n).is_none())
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        if !list.is_empty() {
            out.push(object(
                "Community",
                "legacy-communities",
                json!({"communities": list}),
            ));
        }
    }
    // Before 0.7 a global `protocol` applied to every pool.
    let default_protocol = take(&mut m, &["protocol"]);
    if let Some(Value::Array(peers)) = take(&mut m, &["peers"]) {
        for (i, p) in peers.into_iter().enumerate() {
            out.extend(peer(origin, i, p, losses));
        }
    }
    if let Some(Value::Array(pools)) = take(&mut m, &["address-pools"]) {
        for (i, p) in pools.into_iter().enumerate() {
            let path = format!("address-pools[{i}].");
            let p = match (p, &default_protocol) {
                (Value::Object(mut p), Some(d)) => {
                    p.entry("protocol").or_insert(d.clone());
                    Value::Object(p)
                }
                (p, _) => p,
            };
            out.extend(pool(origin, &path, true, p, &aliases, losses));
        }
    }
    if let Some(Value::Array(profiles)) = take(&mut m, &["bfd-profiles"]) {
        for (i, p) in profiles.into_iter().enumerate() {
            out.extend(bfd_profile(origin, i, p, losses));
        }
    }
    rest(origin, "", m, losses);
    out
}

/// A `metallb.io/v1beta1` `AddressPool`: its spec is a legacy pool in camelCase.
pub fn convert_address_pool(
    origin: &Origin<'_>,
    name: &str,
    spec: Value,
    losses: &mut Vec<Loss>,
) -> Vec<Value> {
    let mut spec = match spec {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    spec.insert("name".into(), Value::String(name.to_string()));
    pool(origin, "", false, Value::Object(spec), &[], losses)
}

/// One pool (legacy dashed keys, or the camelCase of `AddressPool`): an `IPAddressPool` and
/// the advertisement(s) its `protocol` implied.
fn pool(
    origin: &Origin<'_>,
    path: &str,
    dashed: bool,
    p: Value,
    aliases: &[(String, String)],
    losses: &mut Vec<Loss>,
) -> Vec<Value> {
    let Value::Object(mut m) = p else {
        losses.push(origin.loss(path, "not a mapping; dropped"));
        return Vec::new();
    };
    let k = |d: &'static str, c: &'static str| if dashed { d } else { c };
    let raw_name = take(&mut m, &["name"])
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let name = dns_name(&raw_name);
    if name.is_empty() {
        losses.push(origin.loss(format!("{path}name"), "a pool needs a name; dropped"));
        return Vec::new();
    }
    let spec = pool_spec(&mut m, dashed);
    let protocol = take(&mut m, &["protocol"])
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let ads = take(
        &mut m,
        &[
            k("bgp-advertisements", "bgpAdvertisements"),
            "advertisements",
        ],
    );
    let mut out = vec![object("IPAddressPool", &name, Value::Object(spec))];
    let pool_ref = PoolRef {
        path,
        dashed,
        name: &name,
    };
    out.extend(advertisements(
        origin, &pool_ref, &protocol, ads, aliases, losses,
    ));
    rest(origin, path, m, losses);
    out
}

/// `IPAddressPool.spec` from a legacy pool's keys (taken out of `m`).
fn pool_spec(m: &mut Map<String, Value>, dashed: bool) -> Map<String, Value> {
    let k = |d: &'static str, c: &'static str| if dashed { d } else { c };
    let mut spec = Map::new();
    if let Some(a) = take(m, &["addresses", "cidr"]) {
        spec.insert("addresses".into(), a);
    }
    if let Some(v) = take(m, &[k("auto-assign", "autoAssign")]) {
        spec.insert("autoAssign".into(), v);
    }
    if let Some(v) = take(m, &[k("avoid-buggy-ips", "avoidBuggyIPs")]) {
        spec.insert("avoidBuggyIPs".into(), v);
    }
    spec
}

/// Where a legacy pool is, for its advertisements' names and loss paths.
struct PoolRef<'a> {
    path: &'a str,
    dashed: bool,
    name: &'a str,
}

/// The advertisement(s) a legacy pool's `protocol` implied.
fn advertisements(
    origin: &Origin<'_>,
    pool: &PoolRef<'_>,
    protocol: &str,
    ads: Option<Value>,
    aliases: &[(String, String)],
    losses: &mut Vec<Loss>,
) -> Vec<Value> {
    let PoolRef { path, dashed, name } = *pool;
    let k = |d: &'static str, c: &'static str| if dashed { d } else { c };
    let mut out = Vec::new();
    match protocol {
        // `arp` is the name of layer2 in MetalLB before 0.7.
        "layer2" | "arp" => {
            out.push(object(
                "L2Advertisement",
                name,
                json!({"ipAddressPools": [name]}),
            ));
            if let Some(a) = ads {
                losses.push(origin.loss(
                    format!("{path}{}", k("bgp-advertisements", "bgpAdvertisements")),
                    format!("{a} on a layer2 pool is never used by MetalLB; dropped"),
                ));
            }
        }
        "bgp" => {
            let list = match ads {
                Some(Value::Array(l)) if !l.is_empty() => l,
                _ => vec![Value::Object(Map::new())],
            };
            for (i, ad) in list.into_iter().enumerate() {
                let ad_path = format!(
                    "{path}{}[{i}].",
                    k("bgp-advertisements", "bgpAdvertisements")
                );
                let ad_name = if i == 0 {
                    name.to_string()
                } else {
                    format!("{name}-{i}")
                };
                out.push(bgp_advertisement(
                    origin, &ad_path, dashed, &ad_name, name, ad, aliases, losses,
                ));
            }
        }
        other => {
            losses.push(origin.loss(
                format!("{path}protocol"),
                format!("protocol {other:?} is neither layer2 nor bgp: the pool is converted but not advertised"),
            ));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn bgp_advertisement(
    origin: &Origin<'_>,
    path: &str,
    dashed: bool,
    name: &str,
    pool: &str,
    ad: Value,
    aliases: &[(String, String)],
    losses: &mut Vec<Loss>,
) -> Value {
    let mut m = match ad {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let k = |d: &'static str, c: &'static str| if dashed { d } else { c };
    let mut spec = Map::new();
    spec.insert("ipAddressPools".into(), json!([pool]));
    if let Some(v) = take(&mut m, &[k("aggregation-length", "aggregationLength")]) {
        spec.insert("aggregationLength".into(), v);
    }
    if let Some(v) = take(&mut m, &[k("aggregation-length-v6", "aggregationLengthV6")]) {
        spec.insert("aggregationLengthV6".into(), v);
    }
    if let Some(v) = take(&mut m, &[k("localpref", "localPref"), "localpref"]) {
        spec.insert("localPref".into(), v);
    }
    if let Some(Value::Array(cs)) = take(&mut m, &["communities"]) {
        let cs: Vec<Value> = cs
            .iter()
            .filter_map(Value::as_str)
            .map(|c| Value::String(community(c, aliases)))
            .collect();
        spec.insert("communities".into(), Value::Array(cs));
    }
    rest(origin, path, m, losses);
    object("BGPAdvertisement", name, Value::Object(spec))
}

fn peer(origin: &Origin<'_>, i: usize, p: Value, losses: &mut Vec<Loss>) -> Option<Value> {
    let path = format!("peers[{i}].");
    let Value::Object(mut m) = p else {
        losses.push(origin.loss(&path, "not a mapping; dropped"));
        return None;
    };
    let mut spec = Map::new();
    for (legacy, ours) in [
        ("my-asn", "myASN"),
        ("peer-asn", "peerASN"),
        ("peer-address", "peerAddress"),
        ("peer-port", "peerPort"),
        ("source-address", "sourceAddress"),
        ("router-id", "routerID"),
        ("password", "password"),
        ("bfd-profile", "bfdProfile"),
        ("ebgp-multihop", "ebgpMultiHop"),
    ] {
        if let Some(v) = m.remove(legacy) {
            spec.insert(ours.into(), v);
        }
    }
    for (legacy, ours) in [
        ("hold-time", "holdTime"),
        ("keepalive-time", "keepaliveTime"),
    ] {
        if let Some(v) = m.remove(legacy) {
            spec.insert(ours.into(), duration(v));
        }
    }
    if let Some(Value::Array(sels)) = m.remove("node-selectors") {
        let mut out = Vec::new();
        for (j, s) in sels.into_iter().enumerate() {
            let Value::Object(mut s) = s else { continue };
            let mut sel = Map::new();
            if let Some(v) = s.remove("match-labels") {
                sel.insert("matchLabels".into(), v);
            }
            if let Some(v) = s.remove("match-expressions") {
                sel.insert("matchExpressions".into(), lower_keys(v));
            }
            rest(origin, &format!("{path}node-selectors[{j}]."), s, losses);
            out.push(Value::Object(sel));
        }
        spec.insert("nodeSelectors".into(), Value::Array(out));
    }
    rest(origin, &path, m, losses);
    let addr = spec
        .get("peerAddress")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = dns_name(&format!("peer-{}-{addr}", i + 1));
    Some(object("BGPPeer", &name, Value::Object(spec)))
}

/// `key`/`operator`/`values` may be capitalised in the legacy format (Go's case-insensitive
/// JSON matching).
fn lower_keys(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect())
        }
        other => other,
    }
}

fn bfd_profile(origin: &Origin<'_>, i: usize, p: Value, losses: &mut Vec<Loss>) -> Option<Value> {
    let path = format!("bfd-profiles[{i}].");
    let Value::Object(mut m) = p else {
        losses.push(origin.loss(&path, "not a mapping; dropped"));
        return None;
    };
    let name = dns_name(m.remove("name")?.as_str()?);
    let mut spec = Map::new();
    for (legacy, ours) in [
        ("receive-interval", "receiveInterval"),
        ("transmit-interval", "transmitInterval"),
        ("detect-multiplier", "detectMultiplier"),
        ("echo-interval", "echoInterval"),
        ("echo-mode", "echoMode"),
        ("passive-mode", "passiveMode"),
        ("minimum-ttl", "minimumTtl"),
    ] {
        if let Some(v) = m.remove(legacy) {
            spec.insert(ours.into(), v);
        }
    }
    rest(origin, &path, m, losses);
    Some(object("BFDProfile", &name, Value::Object(spec)))
}
