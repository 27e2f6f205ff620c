//! ferrolb ARP/NDP responder: answers ARP and IPv6 Neighbor Solicitations for the Service IPs
//! this node owns, announces ownership changes (gratuitous ARP, unsolicited NA) and reports
//! when another host answers for one of our IPs. See `README.md` in this folder.

pub mod packet;
pub mod responder;

pub use packet::MacAddr;
pub use responder::{DropReason, ReplyKind, Responder, Verdict, announcements};
