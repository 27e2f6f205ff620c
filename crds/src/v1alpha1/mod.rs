//! The ferrolb API, group `ferrolb.io`, version `v1alpha1`.
//!
//! Field names and defaults follow MetalLB's `metallb.io` kinds where the concept is the same,
//! so that a MetalLB manifest needs only its `apiVersion` changed. The API server checks what
//! CEL can express (`x-kubernetes-validations`); everything else is checked by
//! [`crate::config::Config::build`].

mod bfd;
mod bgp_advertisement;
mod bgp_peer;
mod community;
mod configuration_state;
mod l2_advertisement;
mod pool;
mod speaker_state;

pub use bfd::{
    BFDAuthentication, BFDAuthenticationType, BFDProfile, BFDProfileSpec, BFDProfileStatus,
};
pub use bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec, BGPAdvertisementStatus};
pub use bgp_peer::{
    BGPPeer, BGPPeerSpec, BGPPeerStatus, DynamicASNMode, INTERFACE_MULTIHOP, INTERFACE_NAME,
    INTERFACE_SOURCE, PEER_ADDRESS_OR_INTERFACE, SecretReference, VRF_BFD, VRF_INTERFACE, VRF_NAME,
};
pub use community::{Community, CommunityAlias, CommunitySpec, CommunityStatus};
pub use configuration_state::{
    ConfigurationResult, ConfigurationState, ConfigurationStateSpec, ConfigurationStateStatus,
    ObjectError,
};
pub use l2_advertisement::{
    L2Advertisement, L2AdvertisementSpec, L2AdvertisementStatus, PreferredNodeSelector,
};
pub use pool::{IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation};
pub use speaker_state::{
    BFDEchoStatus, BFDSessionState, BGPPeerSessionStatus, BGPSessionState, DriverErrorStatus,
    L2AddressStatus, SpeakerState, SpeakerStateSpec, SpeakerStateStatus,
};

/// API group of every ferrolb kind.
pub const GROUP: &str = "ferrolb.io";
/// API version of this module's kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` string of this module's kinds.
pub const API_VERSION: &str = "ferrolb.io/v1alpha1";

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

/// Every CRD of this version, in the order they are written to `crds.yaml`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        IPAddressPool::crd(),
        L2Advertisement::crd(),
        BGPAdvertisement::crd(),
        BGPPeer::crd(),
        Community::crd(),
        BFDProfile::crd(),
        SpeakerState::crd(),
        ConfigurationState::crd(),
    ]
}
