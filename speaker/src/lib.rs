//! ferrolb speaker: per-node L2 and BGP announcements.

pub mod election;
