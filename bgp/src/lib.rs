//! ferrolb's embedded BGP speaker, export-only: it announces Service /32 and /128 routes to
//! ToR routers and ignores what they send.
//!
//! Layers, from the wire up: [`packet`] (pure codec), [`machine`] (sans-IO RFC 4271 state
//! machine), [`rib`] (Adj-RIB-Out and UPDATE packing), `driver` (tokio I/O) and
//! [`speaker`] (the public API: [`BgpSpeaker`]). See README.md.

pub mod counters;
pub mod diag;
mod driver;
mod error;
pub mod machine;
pub mod packet;
mod peer_config;
pub mod rib;
pub mod speaker;
mod status;
mod sys;

pub use counters::CountersSnapshot;
pub use diag::{ErrorKind, SessionError};
pub use error::Error;
pub use machine::{DynamicAsn, PeerAsRule, State};
pub use packet::{CeaseSubcode, Family, LargeCommunity};
pub use rib::{DEFAULT_LOCAL_PREF, IntoRouteSet, RouteAttrs, RouteSet, share_values};
pub use speaker::{
    BgpSpeaker, CeaseReason, GracefulMode, Listener, PeerConfig, PeerKey, PeerSelector, PeerStatus,
    SpeakerConfig,
};
