//! ferrolb native BFD (RFC 5880), asynchronous mode with the Echo function (IPv4 single-hop),
//! single-hop (RFC 5881) and multihop (RFC 5883) sessions.
//!
//! - [`auth`]: Keyed SHA1 and Meticulous Keyed SHA1 authentication (RFC 5880 §6.7.4, pure).
//! - [`packet`]: the Control packet codec with the RFC 5880 §6.8.6 reception checks (pure).
//! - [`echo`]: the Echo packet (RFC 5880 §6.4) and its IPv4/UDP datagram (pure).
//! - [`session`]: the session state machine, sans-IO (`Session::process(Input) -> Vec<Output>`).
//! - [`profile`]: [`BfdProfile`], the MetalLB-named timer settings.
//! - [`machine`]: every session of the host, sans-IO (`Machine::handle(Input, now) ->
//!   Vec<Output>`): GTSM, session selection, admission, discriminators, timers.
//! - [`driver`]: [`BfdManager`], the tokio driver: UDP 3784 (and 4784 for multihop) receive
//!   sockets, one send socket per session, the timer, events, counters; it carries out the
//!   machine's outputs.

pub mod auth;
pub mod driver;
pub mod echo;
pub mod machine;
pub mod packet;
pub mod profile;
pub mod session;
mod sys;

use std::net::IpAddr;

pub use auth::{AuthFailure, AuthKey, AuthMethod, BfdAuth};
pub use driver::{BfdCounters, BfdManager, ManagerConfig, SessionStatus};
pub use machine::{BfdEvent, Machine};
pub use packet::{ControlPacket, DecodeCxt, Diag, DropReason, State};
pub use profile::BfdProfile;
pub use session::{EchoInfo, Input, Output, Session, SessionInfo};

/// Errors of the BFD crate.
#[derive(Debug, thiserror::Error)]
pub enum BfdError {
    #[error("invalid BFD profile: {field}: {reason}")]
    InvalidProfile { field: &'static str, reason: String },
    #[error("failed to bind BFD receive socket on {addr}")]
    BindReceive {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open BFD send socket from {local} to peer {peer}")]
    SendSocket {
        peer: IpAddr,
        local: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to add BFD session for peer {peer}: {reason}")]
    BadSession { peer: IpAddr, reason: String },
    #[error("BFD session for peer {peer} already exists")]
    SessionExists { peer: IpAddr },
    #[error("no BFD session for peer {peer}")]
    NoSession { peer: IpAddr },
    #[error("failed to open the BFD echo socket (AF_PACKET, needs CAP_NET_RAW)")]
    EchoSocket {
        #[source]
        source: std::io::Error,
    },
    #[error("the BFD manager has stopped")]
    Stopped,
}
