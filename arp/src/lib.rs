//! ferrolb ARP/NDP responder: answers ARP and IPv6 Neighbor Solicitations for the Service IPs
//! this node owns, announces ownership changes (gratuitous ARP, unsolicited NA) and reports
//! when another host answers for one of our IPs. See `README.md` in this folder.
//!
//! Layers: [`packet`] (pure codec), [`responder`] (pure decision per frame), [`io`] (AF_PACKET
//! sockets on tokio, announcements, link polling). Only `sys.rs` holds `unsafe`.

pub mod announce;
mod error;
pub mod io;
pub mod packet;
pub mod responder;
mod sys;

pub use error::Error;
pub use io::{Config, Counters, L2Event, L2Handle, L2Responder, LinkInfo, PacketSocket};
pub use packet::MacAddr;
pub use responder::{DropReason, ReplyKind, Responder, Verdict, announcements};
