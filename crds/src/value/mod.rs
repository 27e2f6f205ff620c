//! Value types that parse and validate themselves (ASN, hold time, connect time, durations,
//! communities, address ranges) and the CEL rules they bring to the CRD schemas.
//!
//! A leaf module: the CRD types (`crate::v1alpha1`) use it for their schemas and the config
//! builder (`crate::config`) for validation, so one rule lives in one place. Imports go one
//! way: `config` reads `v1alpha1` and `value`, `v1alpha1` reads `value`, `value` reads neither.

mod asn;
mod community;
mod connect_time;
mod duration;
mod hold_time;
mod multihop;
mod range;

pub use asn::Asn;
pub use community::{CommunityValue, WELL_KNOWN};
pub use connect_time::ConnectTime;
pub use duration::parse_duration;
pub use hold_time::{DURATION_PATTERN, HoldTime};
pub use multihop::{EBGP_MULTIHOP_MESSAGE, ebgp_multihop_cel_validation};
/// CEL rules for one pool address entry (see [`parse_range`]).
pub use range::cel_validations as address_cel_validations;
pub use range::{
    Family, IpRange, NOT_AN_ADDRESS_RANGE, Overlap, RANGE_MIXES_FAMILIES, RANGE_START_AFTER_END,
    find_overlaps, ip_to_u128, parse_range, u128_to_ip,
};
