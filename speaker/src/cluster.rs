//! The cluster facts the decision needs, extracted from Services, EndpointSlices and Nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use ferrolb_crds::config::Labels;

/// Our `loadBalancerClass`.
pub const LB_CLASS: &str = "ferrolb.io/lb";
/// Nodes with this label never announce (Kubernetes convention).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// EndpointSlice label naming the Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A LoadBalancer Service that has IPs assigned.
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

/// A node: labels and whether it is excluded from announcing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub labels: Labels,
    /// Exclusion label present or condition `NetworkUnavailable=True`.
    pub excluded: bool,
}

/// Endpoints of one Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointView {
    /// Nodes with at least one ready endpoint.
    pub ready_nodes: BTreeSet<String>,
    /// Any endpoint anywhere is serving.
    pub any_serving: bool,
}

/// Services, endpoints and nodes, keyed for the decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub services: Vec<ServiceView>,
    /// By Service key.
    pub endpoints: BTreeMap<String, EndpointView>,
    /// By node name.
    pub nodes: BTreeMap<String, NodeView>,
}

impl ClusterView {
    /// Extracts the view. `ingress` overrides a Service's `status.loadBalancer.ingress` (the
    /// standalone mode reads it from the controller's status file); Services without IPs, of
    /// another class, or not of type LoadBalancer are left out.
    pub fn build(
        services: &[Service],
        slices: &[EndpointSlice],
        nodes: &[Node],
        ingress: Option<&BTreeMap<String, Vec<IpAddr>>>,
    ) -> ClusterView {
        let mut view = ClusterView::default();
        for svc in services {
            let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
            let Some(name) = svc.metadata.name.as_deref() else {
                continue;
            };
            let key = format!("{ns}/{name}");
            let Some(spec) = &svc.spec else { continue };
            if spec.type_.as_deref() != Some("LoadBalancer") {
                continue;
            }
            if spec
                .load_balancer_class
                .as_deref()
                .is_some_and(|c| c != LB_CLASS)
            {
                continue;
            }
            let ips: Vec<IpAddr> = match ingress {
                Some(map) => map.get(&key).cloned().unwrap_or_default(),
                None => svc
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .map(|ing| {
                        ing.iter()
                            .filter_map(|i| i.ip.as_deref()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if ips.is_empty() {
                continue;
            }
            view.services.push(ServiceView {
                key,
                labels: svc.metadata.labels.clone().unwrap_or_default(),
                ips,
                local: spec.external_traffic_policy.as_deref() == Some("Local"),
            });
        }
        view.services.sort_by(|a, b| a.key.cmp(&b.key));

        for slice in slices {
            let ns = slice.metadata.namespace.as_deref().unwrap_or("default");
            let Some(svc) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let entry = view.endpoints.entry(format!("{ns}/{svc}")).or_default();
            for ep in &slice.endpoints {
                let c = ep.conditions.as_ref();
                // Kubernetes: an unset `ready` means ready; unset `serving` means `ready`.
                let ready = c.and_then(|c| c.ready).unwrap_or(true);
                let serving = c.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
                if serving && !terminating {
                    entry.any_serving = true;
                }
                if ready
                    && !terminating
                    && let Some(n) = &ep.node_name
                {
                    entry.ready_nodes.insert(n.clone());
                }
            }
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
        let view = ClusterView::build(&res.services, &res.endpoint_slices, &res.nodes, None);
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
        assert_eq!(
            e.ready_nodes,
            ["n1".to_string()].into(),
            "unset ready = ready; not ready and terminating left out"
        );
        assert!(e.any_serving);
        assert!(!view.nodes["n1"].excluded);
        assert!(view.nodes["n2"].excluded, "exclusion label");
        assert!(view.nodes["n3"].excluded, "NetworkUnavailable=True");

        // Standalone: IPs come from the controller's status file, not the Service.
        let ingress = BTreeMap::from([(
            "shop/pending".to_string(),
            vec!["192.0.2.205".parse().unwrap()],
        )]);
        let view = ClusterView::build(
            &res.services,
            &res.endpoint_slices,
            &res.nodes,
            Some(&ingress),
        );
        let keys: Vec<&str> = view.services.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["shop/pending"]);
    }
}
