//! The speaker crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the speaker (outside membership, which has its own).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The standalone manifests directory cannot be read or watched.
    #[error(transparent)]
    Cluster(#[from] ferrolb_cluster::Error),
    #[error("failed to write the speaker state file {path}")]
    WriteState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serialize the speaker state of node {node}")]
    Serialize {
        node: String,
        #[source]
        source: serde_saphyr::SerializeError,
    },
    #[error("failed to start membership")]
    Membership(#[source] crate::membership::MembershipError),
    #[error("failed to start the ARP/NDP responder")]
    L2(#[source] ferrolb_arp::Error),
    #[error("failed to start the BGP speaker")]
    Bgp(#[source] ferrolb_bgp::Error),
    #[error("failed to start the BFD manager")]
    Bfd(#[source] ferrolb_bfd::BfdError),
    #[error("failed to talk to the Kubernetes API while {action}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}
