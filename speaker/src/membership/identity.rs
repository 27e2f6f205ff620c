//! A member's identity on the wire: node name, the address peers reach it on, and a bump
//! that makes each (re)start and each rejoin a new identity.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One speaker process. SWIM's unique address is `addr` (seeds are plain socket addresses,
/// so an announce must be addressable before the peer's name is known); the live set
/// reported to the speaker is the set of `name`s.
///
/// `bump` starts at the process start time in milliseconds since the Unix epoch, so a
/// restarted speaker wins over the identity of its previous life, and grows by one each
/// time the member rejoins after being declared down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    pub name: String,
    pub addr: SocketAddr,
    pub bump: u64,
}

impl NodeId {
    /// The stand-in used to announce to a seed whose name is not known yet. foca accepts an
    /// announce whose destination has the receiver's address, whatever the rest.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        NodeId {
            name: String::new(),
            addr,
            bump: 0,
        }
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            name: self.name.clone(),
            addr: self.addr,
            bump: self.bump.wrapping_add(1).max(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // The newer life wins; the name breaks a (theoretical) tie deterministically.
        (self.bump, &self.name) > (adversary.bump, &adversary.name)
    }
}
