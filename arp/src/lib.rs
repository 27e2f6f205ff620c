//! ferrolb ARP/NDP responder: answers ARP and IPv6 Neighbor Solicitations for the Service IPs
//! this node owns, announces ownership changes (gratuitous ARP, unsolicited NA) and reports
//! when another host answers for one of our IPs. See `README.md` in this folder.
//!
//! Engine shape: [`packet`] (pure codec), [`responder`] (pure verdict per frame), [`limit`]
//! (pure flood limits), [`machine`] (the pure state machine of one interface:
//! `handle(input, now) -> Vec<Output>`) and [`driver`] (AF_PACKET sockets on tokio, timers,
//! link polling; carries out the machine's outputs). Only `sys.rs` holds `unsafe`.

pub mod announce;
mod counters;
pub mod driver;
mod error;
pub mod limit;
mod link;
pub mod machine;
pub mod packet;
pub mod responder;
mod socket;
mod sys;
pub mod unnumbered;

pub use counters::Counters;
pub use driver::{Config, L2Event, L2Handle, L2Responder};
pub use error::Error;
pub use limit::Limits;
pub use link::LinkInfo;
pub use machine::{Input, Machine, MachineConfig, Output, SendKind};
pub use packet::MacAddr;
pub use responder::{DropReason, ReplyKind, Responder, Verdict, announcements};
pub use socket::PacketSocket;
pub use unnumbered::{Neighbour, NeighbourChoice, NeighbourDiscovery, RaConfig};
