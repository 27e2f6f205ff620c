//! [`ClusterResources`]: every input of the config function, as plain Kubernetes objects.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use crate::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};

/// Everything ferrolb reads from the cluster (or from a directory of YAML in standalone mode).
///
/// The config function ([`crate::config::Config::build`]) reads the ferrolb kinds, `namespaces`
/// (for `namespaceSelectors`), `nodes` (to detect peers that would run twice on one node) and
/// `secrets` (for `passwordSecret`). `services` and `endpoint_slices` ride along for the
/// consumers (allocator, speaker) so that one value describes the whole input.
#[derive(Clone, Debug, Default)]
pub struct ClusterResources {
    /// `IPAddressPool` objects.
    pub pools: Vec<IPAddressPool>,
    /// `L2Advertisement` objects.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// `BGPAdvertisement` objects.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// `BGPPeer` objects.
    pub bgp_peers: Vec<BGPPeer>,
    /// `Community` objects.
    pub communities: Vec<Community>,
    /// `BFDProfile` objects.
    pub bfd_profiles: Vec<BFDProfile>,
    /// Services (all namespaces).
    pub services: Vec<Service>,
    /// EndpointSlices (all namespaces).
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Namespaces (their labels feed `serviceAllocation.namespaceSelectors`).
    pub namespaces: Vec<Namespace>,
    /// Secrets (for `BGPPeer.spec.passwordSecret` and
    /// `BFDProfile.spec.authentication.passwordSecret`).
    pub secrets: Vec<Secret>,
}

impl ClusterResources {
    /// Adds every object of `other` to `self` (used to merge several YAML files).
    pub fn extend(&mut self, other: ClusterResources) {
        self.pools.extend(other.pools);
        self.l2_advertisements.extend(other.l2_advertisements);
        self.bgp_advertisements.extend(other.bgp_advertisements);
        self.bgp_peers.extend(other.bgp_peers);
        self.communities.extend(other.communities);
        self.bfd_profiles.extend(other.bfd_profiles);
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.nodes.extend(other.nodes);
        self.namespaces.extend(other.namespaces);
        self.secrets.extend(other.secrets);
    }

    /// Number of ferrolb custom resources (all kinds above except the core ones).
    pub fn custom_resource_count(&self) -> usize {
        self.pools.len()
            + self.l2_advertisements.len()
            + self.bgp_advertisements.len()
            + self.bgp_peers.len()
            + self.communities.len()
            + self.bfd_profiles.len()
    }
}

/// Label that keeps a node from announcing load-balancer addresses.
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
/// Label linking an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why a node may not announce, if it may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeExclusion {
    /// Labelled `node.kubernetes.io/exclude-from-external-load-balancers`.
    ExcludeLabel,
    /// Condition `NetworkUnavailable` is `True`.
    NetworkUnavailable,
}

/// Whether `node` is excluded from announcing (MetalLB's rules).
pub fn node_exclusion(node: &Node) -> Option<NodeExclusion> {
    if node
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(EXCLUDE_LB_LABEL))
    {
        return Some(NodeExclusion::ExcludeLabel);
    }
    let unavailable = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True");
    unavailable.then_some(NodeExclusion::NetworkUnavailable)
}

/// Whether an endpoint can take traffic: `ready` unset or true, or `serving` true (so
/// terminating-but-serving endpoints count, as in MetalLB).
pub fn endpoint_is_serving(ep: &Endpoint) -> bool {
    let c = ep.conditions.as_ref();
    let ready = c.and_then(|c| c.ready);
    let serving = c.and_then(|c| c.serving);
    ready.is_none_or(|r| r) || serving == Some(true)
}

impl ClusterResources {
    /// Labels of the node named `name`, if known.
    pub fn node_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .map(|n| n.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS))
    }

    /// Labels of the namespace named `name`, if known.
    pub fn namespace_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .map(|n| n.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS))
    }

    /// EndpointSlices of the Service `namespace/name` (by the `kubernetes.io/service-name`
    /// label).
    pub fn endpoint_slices_of<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.endpoint_slices.iter().filter(move |s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .is_some_and(|n| n == name)
        })
    }

    /// Whether the Service has any serving endpoint, anywhere.
    pub fn has_serving_endpoint(&self, namespace: &str, name: &str) -> bool {
        self.endpoint_slices_of(namespace, name)
            .flat_map(|s| &s.endpoints)
            .any(endpoint_is_serving)
    }

    /// Nodes that host a serving endpoint of the Service (for `externalTrafficPolicy: Local`).
    pub fn serving_endpoint_nodes(&self, namespace: &str, name: &str) -> BTreeSet<String> {
        self.endpoint_slices_of(namespace, name)
            .flat_map(|s| &s.endpoints)
            .filter(|e| endpoint_is_serving(e))
            .filter_map(|e| e.node_name.clone())
            .collect()
    }
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
apiVersion: v1
kind: Node
metadata: {name: a, labels: {zone: z1}}
---
apiVersion: v1
kind: Node
metadata: {name: b, labels: {node.kubernetes.io/exclude-from-external-load-balancers: \"\"}}
---
apiVersion: v1
kind: Node
metadata: {name: c}
status:
  conditions: [{type: NetworkUnavailable, status: \"True\"}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.1], nodeName: a, conditions: {ready: true}}
- {addresses: [10.0.0.2], nodeName: b, conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.0.0.3], nodeName: c, conditions: {ready: false}}
- {addresses: [10.0.0.4], nodeName: d}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-1, namespace: shop, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.9], nodeName: e, conditions: {ready: false}}
";

    #[test]
    fn node_and_endpoint_helpers() {
        let loaded = crate::yaml::load_str("t.yaml", YAML);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let r = loaded.resources;
        let excl: Vec<_> = r.nodes.iter().map(node_exclusion).collect();
        assert_eq!(
            excl,
            [
                None,
                Some(NodeExclusion::ExcludeLabel),
                Some(NodeExclusion::NetworkUnavailable)
            ]
        );
        assert_eq!(r.node_labels("a").unwrap()["zone"], "z1");
        assert!(r.node_labels("c").unwrap().is_empty());
        assert!(r.node_labels("zz").is_none());
        let nodes: Vec<String> = r
            .serving_endpoint_nodes("shop", "web")
            .into_iter()
            .collect();
        assert_eq!(nodes, ["a", "b", "d"]);
        assert!(r.has_serving_endpoint("shop", "web"));
        assert!(!r.has_serving_endpoint("shop", "other"));
        assert!(!r.has_serving_endpoint("elsewhere", "web"));
    }
}
