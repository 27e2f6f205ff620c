use std::net::{IpAddr, SocketAddr};

use crate::peer_config::PeerKey;

/// Everything the BGP crate can fail at. Protocol errors with a peer are not here: they are
/// NOTIFICATIONs and show up in [`crate::PeerStatus::last_error`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind BGP listener on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid BGP peer {peer}: {field}: {reason}")]
    InvalidPeer {
        peer: IpAddr,
        field: &'static str,
        reason: String,
    },
    #[error("failed to add BGP peer {0}: it already exists")]
    DuplicatePeer(PeerKey),
    #[error("BGP peer {0} is not configured")]
    UnknownPeer(PeerKey),
    #[error("failed to set the TCP MD5 key for BGP peer {peer} on the listener")]
    Md5 {
        peer: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the BGP speaker has shut down")]
    Closed,
}
