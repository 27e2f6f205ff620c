//! Why a session or a connection attempt ended, as the FSM reports it.

use std::net::Ipv4Addr;

use super::PeerAsRule;
use crate::packet::Notification;

/// Why an outbound connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No answer within the ConnectRetry time (SYNs unanswered: a router that is down, a
    /// filter, or a TCP MD5 key mismatch, whose segments the kernel drops silently).
    NoAnswer,
    /// The peer answered with a reset: nothing listens on its BGP port for us.
    Refused,
    /// No route to the peer (ICMP unreachable, no local address).
    Unreachable(String),
    /// Any other socket error, as the OS words it.
    Other(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NoAnswer => f.write_str("no answer"),
            ConnectError::Refused => f.write_str("connection refused"),
            ConnectError::Unreachable(e) => write!(f, "unreachable: {e}"),
            ConnectError::Other(e) => f.write_str(e),
        }
    }
}

/// Why a session (or an attempt) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (error, hold expiry, or our Cease).
    SentNotification(Notification),
    /// The peer sent this NOTIFICATION.
    PeerNotification(Notification),
    /// TCP closed or failed.
    ConnectionLost,
    /// We rejected the peer's OPEN for its AS (`notification`: 2/2 Bad Peer AS, sent):
    /// `seen` is the AS it announced (the 4-octet one if it sent the capability), `peer_id`
    /// its BGP identifier, `rule` what we accept.
    BadPeerAs {
        notification: Notification,
        seen: u32,
        peer_id: Ipv4Addr,
        rule: PeerAsRule,
    },
    /// An outbound connection attempt failed.
    ConnectFailed(ConnectError),
    /// Stopped by us without a NOTIFICATION (no session was open).
    Stopped,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::SentNotification(n) => write!(f, "sent {n}"),
            DownReason::PeerNotification(n) => write!(f, "received {n}"),
            DownReason::BadPeerAs {
                notification,
                seen,
                rule,
                ..
            } => write!(f, "sent {notification}: peer AS {seen}, want {rule}"),
            DownReason::ConnectionLost => f.write_str("connection lost"),
            DownReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            DownReason::Stopped => f.write_str("stopped"),
        }
    }
}

impl DownReason {
    /// The NOTIFICATION we send for this end, if any.
    pub fn sent(&self) -> Option<&Notification> {
        match self {
            DownReason::SentNotification(n)
            | DownReason::BadPeerAs {
                notification: n, ..
            } => Some(n),
            _ => None,
        }
    }
}
