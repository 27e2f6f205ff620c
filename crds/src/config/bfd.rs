//! `BFDProfile` -> [`Bfd`].

use super::error::{ConfigError, Kind, ObjectRef};
use crate::v1alpha1::BFDProfile;

/// Validated BFD settings with defaults applied (RFC 5880 values in milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bfd {
    /// Profile name.
    pub name: String,
    /// Required Min RX Interval, ms (default 300).
    pub receive_interval_ms: u32,
    /// Desired Min TX Interval, ms (default 300).
    pub transmit_interval_ms: u32,
    /// Detect Mult (default 3).
    pub detect_multiplier: u8,
    /// Echo interval, ms (default 50).
    pub echo_interval_ms: u32,
    /// Echo function enabled (default false).
    pub echo_mode: bool,
    /// Passive role: wait for the peer's first packet (default false).
    pub passive_mode: bool,
    /// Minimum incoming TTL for multihop sessions (default 254).
    pub minimum_ttl: u8,
}

impl Bfd {
    /// Default values under a name.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        Bfd {
            name: name.into(),
            receive_interval_ms: 300,
            transmit_interval_ms: 300,
            detect_multiplier: 3,
            echo_interval_ms: 50,
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
        }
    }
}

pub(super) fn validate(obj: &BFDProfile) -> Result<Bfd, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::BFDProfile, &obj.metadata);
    let s = &obj.spec;
    let mut errors = Vec::new();
    let mut out = Bfd::with_defaults(me.name.clone());
    let mut check = |field: &str, v: Option<u32>, lo: u32, hi: u32, slot: &mut u32| {
        if let Some(v) = v {
            if (lo..=hi).contains(&v) {
                *slot = v;
            } else {
                errors.push(me.error(
                    format!("spec.{field}"),
                    Some(&v.to_string()),
                    format!("must be between {lo} and {hi}"),
                ));
            }
        }
    };
    check(
        "receiveInterval",
        s.receive_interval,
        10,
        60000,
        &mut out.receive_interval_ms,
    );
    check(
        "transmitInterval",
        s.transmit_interval,
        10,
        60000,
        &mut out.transmit_interval_ms,
    );
    check(
        "echoInterval",
        s.echo_interval,
        10,
        60000,
        &mut out.echo_interval_ms,
    );
    let mut mult = u32::from(out.detect_multiplier);
    check("detectMultiplier", s.detect_multiplier, 2, 255, &mut mult);
    let mut ttl = u32::from(out.minimum_ttl);
    check("minimumTtl", s.minimum_ttl, 1, 254, &mut ttl);
    out.detect_multiplier = u8::try_from(mult).unwrap_or(u8::MAX);
    out.minimum_ttl = u8::try_from(ttl).unwrap_or(u8::MAX);
    out.echo_mode = s.echo_mode.unwrap_or(false);
    out.passive_mode = s.passive_mode.unwrap_or(false);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
