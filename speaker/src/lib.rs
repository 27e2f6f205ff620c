//! ferrolb speaker: cluster state -> desired announcements -> BGP and ARP/NDP drivers.

pub mod election;
pub mod membership;
