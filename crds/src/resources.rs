//! [`ClusterResources`]: every input of the config function, as plain Kubernetes objects.

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

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
    /// Secrets (for `BGPPeer.spec.passwordSecret`).
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
