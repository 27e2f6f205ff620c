//! Connection collisions (RFC 4271 §6.8), as pure functions.

use std::net::Ipv4Addr;

use crate::packet::{CeaseSubcode, Notification};

/// Which connection survives a collision (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionWinner {
    /// Keep the connection we initiated; close the peer's with Cease/7.
    LocallyInitiated,
    /// Keep the connection the peer initiated; close ours with Cease/7.
    RemotelyInitiated,
}

/// RFC 4271 §6.8: the side with the higher BGP Identifier keeps the connection it opened.
/// (A collision with a connection already Established always keeps the Established one;
/// the driver handles that before asking.)
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionWinner {
    if u32::from(local_id) > u32::from(remote_id) {
        CollisionWinner::LocallyInitiated
    } else {
        CollisionWinner::RemotelyInitiated
    }
}

/// The Cease used when a collision closes a connection.
pub fn collision_cease() -> Notification {
    Notification::cease(CeaseSubcode::CollisionResolution, "")
}
