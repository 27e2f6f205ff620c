//! The pure part: [`status`] and [`why`] turn [`Inputs`] into reports. No I/O.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_crds::config::{Family, Pool};
use ferrolb_crds::service::TrafficPolicy;
use ferrolb_crds::{Config, ServiceRequest};
use serde::Serialize;

use crate::inputs::{Condition, ConfigErrorRow, EventRow, Inputs, PoolUsage};

/// `kubectl ferrolb status`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub pools: Vec<PoolRow>,
    pub services: Vec<ServiceRow>,
    pub sessions: Vec<SessionRow>,
    pub config_errors: Vec<ConfigErrorRow>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRow {
    pub name: String,
    pub auto_assign: bool,
    #[serde(flatten)]
    pub usage: PoolUsage,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub namespace: String,
    pub name: String,
    pub ips: Vec<IpAddr>,
    /// Allocation state: the condition reason (`IPAllocated`, `PoolExhausted`, ...), or
    /// `Pending` when there is none yet.
    pub state: String,
    /// Nodes answering ARP/NDP for its addresses, as `node (interface, ...)`.
    pub l2_nodes: Vec<String>,
    /// Nodes announcing it over BGP (a selecting BGPAdvertisement and a session up).
    pub bgp_nodes: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub node: String,
    pub peer: String,
    pub address: String,
    pub state: String,
    pub prefixes_sent: u32,
    /// BFD session state; unset when the peer has no `bfdProfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Builds the status report.
pub fn status(inputs: &Inputs) -> StatusReport {
    let outcome = Config::build(&inputs.resources, None);
    let config = &outcome.config;
    let pools = config
        .pools
        .values()
        .map(|p| PoolRow {
            name: p.name.clone(),
            auto_assign: p.auto_assign,
            usage: inputs.pool_usage.get(&p.name).copied().unwrap_or_default(),
        })
        .collect();
    let mut services = Vec::new();
    for svc in &inputs.resources.services {
        let Ok(req) = ServiceRequest::from_service(svc) else {
            continue;
        };
        if !req.is_load_balancer {
            continue;
        }
        let key = req.key();
        let state = inputs
            .conditions
            .get(&key)
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| "Pending".into());
        services.push(ServiceRow {
            l2_nodes: l2_nodes(inputs, &key),
            bgp_nodes: bgp_nodes(inputs, config, &req),
            namespace: req.namespace,
            name: req.name,
            ips: req.ingress_ips,
            state,
        });
    }
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut sessions = Vec::new();
    for sp in &inputs.speakers {
        let node = sp.metadata.name.clone().unwrap_or_default();
        for p in sp.status.iter().flat_map(|s| &s.bgp_peers) {
            sessions.push(SessionRow {
                node: node.clone(),
                peer: p.name.clone(),
                // A peer in a VRF: the same address may be another router in another VRF.
                address: match &p.vrf {
                    Some(v) => format!("{} (vrf {v})", p.address),
                    None => p.address.clone(),
                },
                state: format!("{:?}", p.state),
                prefixes_sent: p.prefixes_sent,
                bfd: p.bfd.map(|b| format!("{b:?}")),
                last_error: p.last_error.clone(),
            });
        }
    }
    sessions.sort_by(|a, b| (&a.node, &a.peer).cmp(&(&b.node, &b.peer)));
    let mut config_errors = inputs.config_errors.clone();
    if config_errors.is_empty() {
        // Nothing reported (yet): validate here, so a fresh install still shows its errors.
        config_errors = outcome
            .errors
            .iter()
            .map(|e| ConfigErrorRow {
                source: "kubectl-ferrolb".into(),
                object: format!(
                    "{:?} {}/{}",
                    e.object.kind, e.object.namespace, e.object.name
                ),
                field: e.field.clone(),
                message: e.to_string(),
            })
            .collect();
    }
    StatusReport {
        pools,
        services,
        sessions,
        config_errors,
    }
}

fn l2_nodes(inputs: &Inputs, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sp in &inputs.speakers {
        let node = sp.metadata.name.clone().unwrap_or_default();
        for a in sp.status.iter().flat_map(|s| &s.l2_addresses) {
            if a.services.iter().any(|s| s == key) {
                let entry = if a.interfaces.is_empty() {
                    node.clone()
                } else {
                    format!("{node} ({})", a.interfaces.join(","))
                };
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    out
}

/// Nodes that announce the Service over BGP: a BGPAdvertisement selects its pool, the node and
/// the Service, the node has an Established session to a peer the advertisement applies to,
/// and (for `externalTrafficPolicy: Local`) a ready endpoint.
fn bgp_nodes(inputs: &Inputs, config: &Config, req: &ServiceRequest) -> Vec<String> {
    let Some(pool) = req.ingress_ips.first().and_then(|ip| pool_of(config, *ip)) else {
        return Vec::new();
    };
    let local = req.external_traffic_policy == TrafficPolicy::Local;
    let endpoints = inputs
        .resources
        .serving_endpoint_nodes(&req.namespace, &req.name);
    let mut out = BTreeSet::new();
    for sp in &inputs.speakers {
        let node = sp.metadata.name.clone().unwrap_or_default();
        let labels = inputs
            .resources
            .node_labels(&node)
            .cloned()
            .unwrap_or_default();
        if local && !endpoints.contains(&node) {
            continue;
        }
        let up: Vec<&str> = sp
            .status
            .iter()
            .flat_map(|s| &s.bgp_peers)
            .filter(|p| format!("{:?}", p.state) == "Established")
            .map(|p| p.name.as_str())
            .collect();
        let announces = config.bgp_advertisements.values().any(|ad| {
            ad.pools.contains(&pool.name)
                && ad.node_selectors.matches(&labels)
                && ad.service_selectors.matches(&req.labels)
                && up.iter().any(|p| ad.applies_to_peer(p))
        });
        if announces {
            out.insert(node);
        }
    }
    out.into_iter().collect()
}

fn pool_of(config: &Config, ip: IpAddr) -> Option<&Pool> {
    config.pools.values().find(|p| p.contains(ip))
}

/// `kubectl ferrolb why NAMESPACE/SERVICE`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhyReport {
    pub service: String,
    pub found: bool,
    pub ips: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Problems with the Service itself (not ours, bad annotations, ...).
    pub service_problems: Vec<String>,
    pub events: Vec<EventRow>,
    /// Every pool and why it can or cannot serve the Service.
    pub pools: Vec<PoolVerdict>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolVerdict {
    pub pool: String,
    pub usable: bool,
    pub reasons: Vec<String>,
}

/// Explains one Service (`namespace/name`).
pub fn why(inputs: &Inputs, namespace: &str, name: &str) -> WhyReport {
    let key = format!("{namespace}/{name}");
    let mut out = WhyReport {
        service: key.clone(),
        condition: inputs.conditions.get(&key).cloned(),
        events: inputs
            .events
            .iter()
            .filter(|e| e.object == format!("Service {key}"))
            .cloned()
            .collect(),
        ..WhyReport::default()
    };
    let Some(svc) = inputs.resources.services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.as_deref().unwrap_or("default") == namespace
    }) else {
        return out;
    };
    out.found = true;
    let req = match ServiceRequest::from_service(svc) {
        Ok(r) => r,
        Err(errors) => {
            out.service_problems = errors.iter().map(ToString::to_string).collect();
            return out;
        }
    };
    out.ips = req.ingress_ips.clone();
    if !req.is_load_balancer {
        out.service_problems
            .push("not of type LoadBalancer: ferrolb ignores it".into());
    }
    if !req.is_ours(false) {
        out.service_problems.push(
            "its spec.loadBalancerClass belongs to another implementation: ferrolb ignores it"
                .into(),
        );
    }
    let config = Config::build(&inputs.resources, None).config;
    if config.pools.is_empty() {
        out.service_problems
            .push("no valid IPAddressPool exists".into());
    }
    if let Some(p) = &req.pool
        && !config.pools.contains_key(p)
    {
        out.service_problems.push(format!(
            "it asks for pool {p:?}, which does not exist (or is invalid)"
        ));
    }
    let families = needed_families(&req);
    for pool in config.pools.values() {
        let reasons = pool_reasons(inputs, pool, &req, &families);
        out.pools.push(PoolVerdict {
            pool: pool.name.clone(),
            usable: reasons.is_empty(),
            reasons,
        });
    }
    out
}

fn needed_families(req: &ServiceRequest) -> Vec<Family> {
    if !req.requested_ips.is_empty() {
        let mut f: Vec<Family> = req.requested_ips.iter().map(|ip| Family::of(*ip)).collect();
        f.dedup();
        return f;
    }
    match req.ip_families.as_slice() {
        [] => vec![Family::V4],
        fams => match req.ip_family_policy {
            ferrolb_crds::service::IpFamilyPolicy::RequireDualStack => fams.to_vec(),
            _ => vec![fams[0]],
        },
    }
}

fn pool_reasons(
    inputs: &Inputs,
    pool: &Pool,
    req: &ServiceRequest,
    families: &[Family],
) -> Vec<String> {
    let mut r = Vec::new();
    if let Some(asked) = &req.pool
        && asked != &pool.name
    {
        r.push(format!("the Service asks for pool {asked:?}"));
    }
    if let Some(a) = &pool.allocation {
        if a.namespace_restricted && !a.namespaces.contains(&req.namespace) {
            let allowed: Vec<&str> = a.namespaces.iter().map(String::as_str).collect();
            r.push(format!(
                "namespace {:?} is not allowed by serviceAllocation (allowed: {})",
                req.namespace,
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ));
        }
        if !a.service_selectors.matches(&req.labels) {
            r.push("serviceAllocation.serviceSelectors do not match the Service's labels".into());
        }
    }
    if !pool.auto_assign && req.pool.is_none() && req.requested_ips.is_empty() {
        r.push("autoAssign is false and the Service names neither this pool nor an address".into());
    }
    for ip in &req.requested_ips {
        if !pool.contains(*ip) {
            r.push(format!("the requested address {ip} is not in this pool"));
            continue;
        }
        for other in &inputs.resources.services {
            let Ok(o) = ServiceRequest::from_service(other) else {
                continue;
            };
            if o.key() != req.key()
                && o.ingress_ips.contains(ip)
                && (o.sharing_key.is_none() || o.sharing_key != req.sharing_key)
            {
                r.push(format!(
                    "the requested address {ip} is held by Service {} (no common allow-shared-ip key)",
                    o.key()
                ));
            }
        }
    }
    for f in families {
        if !pool.has_family(*f) {
            r.push(format!("has no {} addresses", family_name(*f)));
            continue;
        }
        if let Some(u) = inputs.pool_usage.get(&pool.name) {
            let free = match f {
                Family::V4 => u.ipv4_free,
                Family::V6 => u.ipv6_free,
            };
            if free == 0 && req.requested_ips.is_empty() && req.ingress_ips.is_empty() {
                r.push(format!("exhausted: no free {} address", family_name(*f)));
            }
        }
    }
    r
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}
