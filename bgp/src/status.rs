//! What each peer looks like now ([`PeerStatus`]) and the board the sessions write it to.
//! A leaf module: the sessions and the speaker both use it, neither through the other.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::machine::{Negotiated, State};
use crate::peer_config::PeerKey;

/// What one peer looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub state: State,
    /// When the session reached Established (None while it is not).
    pub established_at: Option<Instant>,
    /// Prefixes the peer has from us.
    pub prefixes_sent: usize,
    /// Times an Established session went down.
    pub flaps: u64,
    /// Why the session (or the last attempt) ended.
    pub last_error: Option<String>,
    /// Desired routes not sent for want of a next hop of their family.
    pub unresolved_next_hop: usize,
    /// IPv4 routes not sent because their next hop is IPv6 and the peer did not negotiate
    /// RFC 8950 extended next hop encoding.
    pub needs_extended_next_hop: usize,
    /// Errors so far, by kind (failed attempts, NOTIFICATIONs, lost connections).
    pub errors: BTreeMap<crate::ErrorKind, u64>,
    /// What the OPENs agreed on (peer router id, hold time, families), while Established.
    pub negotiated: Option<Negotiated>,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: State::Idle,
            established_at: None,
            prefixes_sent: 0,
            flaps: 0,
            last_error: None,
            unresolved_next_hop: 0,
            needs_extended_next_hop: 0,
            errors: BTreeMap::new(),
            negotiated: None,
        }
    }
}

impl PeerStatus {
    pub fn uptime(&self) -> Option<Duration> {
        self.established_at.map(|t| t.elapsed())
    }
}

/// Shared status of all peers, watched by subscribers.
#[derive(Debug)]
pub(crate) struct StatusBoard {
    tx: watch::Sender<BTreeMap<PeerKey, PeerStatus>>,
}

impl StatusBoard {
    pub(crate) fn new(tx: watch::Sender<BTreeMap<PeerKey, PeerStatus>>) -> Self {
        StatusBoard { tx }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<BTreeMap<PeerKey, PeerStatus>> {
        self.tx.subscribe()
    }

    pub(crate) fn get(&self, peer: &PeerKey) -> Option<PeerStatus> {
        self.tx.borrow().get(peer).cloned()
    }

    pub(crate) fn set(&self, peer: PeerKey, st: PeerStatus) {
        self.tx.send_modify(|m| {
            m.insert(peer, st);
        });
    }

    pub(crate) fn remove(&self, peer: &PeerKey) {
        self.tx.send_modify(|m| {
            m.remove(peer);
        });
    }
}
