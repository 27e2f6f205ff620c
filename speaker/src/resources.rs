//! [`ClusterResources`]: every input, as plain Kubernetes objects.
//!
//! Same shape as `ferrolb_crds::resources::ClusterResources` (in progress on the `crds`
//! branch); this module becomes a re-export of it once that is committed.

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use ferrolb_crds::v1alpha1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};

/// Everything the speaker reads from the cluster (or from a directory of YAML).
#[derive(Clone, Debug, Default)]
pub struct ClusterResources {
    pub pools: Vec<IPAddressPool>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    pub bgp_peers: Vec<BGPPeer>,
    pub communities: Vec<Community>,
    pub bfd_profiles: Vec<BFDProfile>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    pub namespaces: Vec<Namespace>,
    pub secrets: Vec<Secret>,
}

impl ClusterResources {
    /// Adds every object of `other` to `self`.
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
}
