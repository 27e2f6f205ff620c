//! The cluster facts the decision needs, extracted from Services, EndpointSlices and Nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use ferrolb_crds::config::Labels;

mod stamp;
pub use stamp::{Uid, Version};

/// Our `loadBalancerClass`.
pub const LB_CLASS: &str = "ferrolb.io/lb";
/// Nodes with this label never announce (Kubernetes convention).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// EndpointSlice label naming the Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A LoadBalancer Service of our class, as the decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    /// `namespace/name`.
    pub key: String,
    pub labels: Labels,
    /// Ingress IPs in status order; the first one is the election key.
    pub ips: Vec<IpAddr>,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
}

/// What the speaker keeps of one Service: the few fields it decides on, extracted once when
/// the object arrives (Kubernetes: in the watch stream, so no whole `Service` is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRecord {
    /// `metadata.uid` (Events name it).
    pub uid: Option<Uid>,
    /// `metadata.resourceVersion` (Events name it).
    pub resource_version: Option<Version>,
    /// Type LoadBalancer and our class (or none); only then are labels and IPs kept.
    pub ours: bool,
    /// Key, labels, `status.loadBalancer.ingress` IPs and traffic policy.
    pub view: Arc<ServiceView>,
}

impl ServiceRecord {
    /// The record of a Service (`None` without a name).
    pub fn from_service(svc: &Service) -> Option<ServiceRecord> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let name = svc.metadata.name.as_deref()?;
        let spec = svc.spec.as_ref();
        let ours = spec.is_some_and(|spec| {
            spec.type_.as_deref() == Some("LoadBalancer")
                && spec
                    .load_balancer_class
                    .as_deref()
                    .is_none_or(|c| c == LB_CLASS)
        });
        let ips: Vec<IpAddr> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .filter(|_| ours)
            .map(|ing| {
                ing.iter()
                    .filter_map(|i| i.ip.as_deref()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let view = ServiceView {
            key: format!("{ns}/{name}"),
            labels: match ours {
                true => svc.metadata.labels.clone().unwrap_or_default(),
                false => Labels::new(),
            },
            ips,
            local: ours && spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local"),
        };
        Some(ServiceRecord {
            uid: svc.metadata.uid.as_deref().map(Uid::new),
            resource_version: svc.metadata.resource_version.as_deref().map(Version::new),
            ours,
            view: Arc::new(view),
        })
    }
}

/// What the speaker keeps of one EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceRecord {
    /// `namespace/name` of the slice.
    pub key: String,
    /// `namespace/name` of its Service (label `kubernetes.io/service-name`).
    pub service: Option<Arc<str>>,
    /// Nodes with at least one ready, not terminating endpoint (sorted, unique).
    pub ready_nodes: Vec<String>,
    /// Any endpoint is serving and not terminating.
    pub any_serving: bool,
}

impl SliceRecord {
    /// The record of an EndpointSlice (`None` without a name).
    pub fn from_slice(slice: &EndpointSlice) -> Option<SliceRecord> {
        let ns = slice.metadata.namespace.as_deref().unwrap_or("default");
        let name = slice.metadata.name.as_deref()?;
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(|svc| Arc::from(format!("{ns}/{svc}")));
        let mut ready_nodes = BTreeSet::new();
        let mut any_serving = false;
        for ep in &slice.endpoints {
            let c = ep.conditions.as_ref();
            // Kubernetes: an unset `ready` means ready; unset `serving` means `ready`.
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            if serving && !terminating {
                any_serving = true;
            }
            if ready
                && !terminating
                && let Some(n) = &ep.node_name
            {
                ready_nodes.insert(n.as_str());
            }
        }
        Some(SliceRecord {
            key: format!("{ns}/{name}"),
            service,
            ready_nodes: ready_nodes.into_iter().map(String::from).collect(),
            any_serving,
        })
    }
}

/// Every Service and EndpointSlice as records: what a source hands the decision.
#[derive(Clone, Debug, Default)]
pub struct Workloads {
    pub services: Vec<Arc<ServiceRecord>>,
    pub slices: Vec<Arc<SliceRecord>>,
}

impl Workloads {
    /// Records of whole objects (standalone mode, tests).
    pub fn from_objects(services: &[Service], slices: &[EndpointSlice]) -> Workloads {
        Workloads {
            services: services
                .iter()
                .filter_map(ServiceRecord::from_service)
                .map(Arc::new)
                .collect(),
            slices: slices
                .iter()
                .filter_map(SliceRecord::from_slice)
                .map(Arc::new)
                .collect(),
        }
    }
}

/// A node: labels and whether it is excluded from announcing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub labels: Labels,
    /// Exclusion label present or condition `NetworkUnavailable=True`.
    pub excluded: bool,
}

/// Endpoints of one Service: its slices' records (shared with the source, not copied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointView {
    pub slices: Vec<Arc<SliceRecord>>,
}

impl EndpointView {
    /// Whether `node` has at least one ready endpoint.
    pub fn ready_on(&self, node: &str) -> bool {
        self.slices
            .iter()
            .any(|s| s.ready_nodes.iter().any(|n| n == node))
    }

    /// Whether any endpoint anywhere is serving.
    pub fn any_serving(&self) -> bool {
        self.slices.iter().any(|s| s.any_serving)
    }
}

/// Services, endpoints and nodes, keyed for the decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Our LoadBalancer Services with IPs, by key (shared with the source's records).
    pub services: Vec<Arc<ServiceView>>,
    /// By Service key.
    pub endpoints: BTreeMap<Arc<str>, EndpointView>,
    /// By node name.
    pub nodes: BTreeMap<String, NodeView>,
}

impl ClusterView {
    /// Extracts the view. `ingress` overrides a Service's `status.loadBalancer.ingress` (the
    /// standalone mode reads it from the controller's status file); Services without IPs, of
    /// another class, or not of type LoadBalancer are left out.
    pub fn build(
        workloads: &Workloads,
        nodes: &[Node],
        ingress: Option<&BTreeMap<String, Vec<IpAddr>>>,
    ) -> ClusterView {
        let mut view = ClusterView::default();
        for rec in workloads.services.iter().filter(|r| r.ours) {
            let svc = match ingress {
                None => rec.view.clone(),
                Some(map) => Arc::new(ServiceView {
                    ips: map.get(&rec.view.key).cloned().unwrap_or_default(),
                    ..(*rec.view).clone()
                }),
            };
            if !svc.ips.is_empty() {
                view.services.push(svc);
            }
        }
        view.services.sort_by(|a, b| a.key.cmp(&b.key));

        for slice in &workloads.slices {
            let Some(svc) = &slice.service else { continue };
            let entry = view.endpoints.entry(svc.clone()).or_default();
            entry.slices.push(slice.clone());
        }

        for node in nodes {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let labels = node.metadata.labels.clone().unwrap_or_default();
            let unavailable = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
                });
            let excluded = labels.contains_key(EXCLUDE_LABEL) || unavailable;
            view.nodes.insert(name, NodeView { labels, excluded });
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> ferrolb_crds::ClusterResources {
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", yaml);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.resources
    }

    const OBJECTS: &str = "
apiVersion: v1
kind: Service
metadata: {name: local, namespace: shop, labels: {app: web}}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 192.0.2.200}, {ip: \"2001:db8::200\"}]}}
---
apiVersion: v1
kind: Service
metadata: {name: other-class, namespace: shop}
spec: {type: LoadBalancer, loadBalancerClass: example.com/lb}
status: {loadBalancer: {ingress: [{ip: 192.0.2.201}]}}
---
apiVersion: v1
kind: Service
metadata: {name: cluster-ip, namespace: shop}
spec: {type: ClusterIP}
---
apiVersion: v1
kind: Service
metadata: {name: pending, namespace: shop}
spec: {type: LoadBalancer}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-a, namespace: shop, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
endpoints:
  - {addresses: [10.0.0.1], nodeName: n1}
  - {addresses: [10.0.0.2], nodeName: n2, conditions: {ready: false}}
  - {addresses: [10.0.0.3], nodeName: n3, conditions: {ready: true, terminating: true}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {node.kubernetes.io/exclude-from-external-load-balancers: \"\"}}
---
apiVersion: v1
kind: Node
metadata: {name: n3}
status: {conditions: [{type: NetworkUnavailable, status: \"True\"}]}
";

    #[test]
    fn services_endpoints_and_nodes_become_the_view() {
        let res = load(OBJECTS);
        let work = Workloads::from_objects(&res.services, &res.endpoint_slices);
        let view = ClusterView::build(&work, &res.nodes, None);
        assert_eq!(
            view.services.len(),
            1,
            "other class, ClusterIP and pending are left out"
        );
        let s = &view.services[0];
        assert_eq!(s.key, "shop/local");
        assert!(s.local);
        assert_eq!(
            s.ips,
            vec![
                "192.0.2.200".parse::<IpAddr>().unwrap(),
                "2001:db8::200".parse().unwrap()
            ]
        );
        let e = &view.endpoints["shop/local"];
        assert!(e.ready_on("n1"), "unset ready = ready");
        assert!(!e.ready_on("n2"), "not ready");
        assert!(!e.ready_on("n3"), "ready but terminating");
        assert!(e.any_serving());
        assert!(!view.nodes["n1"].excluded);
        assert!(view.nodes["n2"].excluded, "exclusion label");
        assert!(view.nodes["n3"].excluded, "NetworkUnavailable=True");

        // Standalone: IPs come from the controller's status file, not the Service.
        let ingress = BTreeMap::from([(
            "shop/pending".to_string(),
            vec!["192.0.2.205".parse().unwrap()],
        )]);
        let view = ClusterView::build(&work, &res.nodes, Some(&ingress));
        let keys: Vec<&str> = view.services.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["shop/pending"]);
    }
}
