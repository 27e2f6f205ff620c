//! BFD profile: the per-peer timer settings, named after MetalLB's `BFDProfile` fields.

use std::time::Duration;

use crate::BfdError;
use crate::auth::BfdAuth;

/// Per-session BFD settings, with MetalLB's / FRR's defaults (300 ms / 300 ms / 3).
///
/// `echo_mode` runs the Echo function (RFC 5880 §6.4) on IPv4 single-hop sessions (the
/// machine refuses it for IPv6 and multihop sessions). `minimum_ttl` applies to multihop sessions only (RFC 5883: a packet
/// that arrives with a lower TTL / hop limit is dropped); single-hop sessions always require
/// TTL 255 (RFC 5881 §5). Both kinds send with TTL 255.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdProfile {
    /// Minimum interval at which we can receive control packets (`receiveInterval`).
    pub receive_interval: Duration,
    /// Minimum interval at which we want to send control packets (`transmitInterval`).
    pub transmit_interval: Duration,
    /// Missed packets before the session is declared down (`detectMultiplier`).
    pub detect_multiplier: u8,
    /// Echo interval (`echoInterval`): the Required Min Echo RX Interval we advertise and
    /// the fastest we send our own echoes.
    pub echo_interval: Duration,
    /// Echo function (`echoMode`).
    pub echo_mode: bool,
    /// Wait for the peer to speak first (`passiveMode`, RFC 5880 §6.1 passive role).
    pub passive_mode: bool,
    /// Minimum accepted TTL / hop limit for multihop sessions (`minimumTtl`, 1..=254; the
    /// default 254 admits one router between the peers); ignored for single-hop.
    pub minimum_ttl: u8,
    /// Authentication of the Control packets (RFC 5880 §6.7.4, Keyed SHA1 or Meticulous
    /// Keyed SHA1); `None` sends and accepts unauthenticated packets only.
    pub auth: Option<BfdAuth>,
}

impl Default for BfdProfile {
    fn default() -> Self {
        BfdProfile {
            receive_interval: Duration::from_millis(300),
            transmit_interval: Duration::from_millis(300),
            detect_multiplier: 3,
            echo_interval: Duration::from_millis(50),
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
            auth: None,
        }
    }
}

impl BfdProfile {
    /// A profile with the given intervals and multiplier, other fields default.
    pub fn with_timers(receive: Duration, transmit: Duration, multiplier: u8) -> Self {
        BfdProfile {
            receive_interval: receive,
            transmit_interval: transmit,
            detect_multiplier: multiplier,
            ..BfdProfile::default()
        }
    }

    /// Checks the ranges MetalLB's CRD allows (intervals 10..=60000 ms, multiplier 2..=255,
    /// minimumTtl 1..=254).
    pub fn validate(&self) -> Result<(), BfdError> {
        let ms = 10..=60_000u128;
        let bad = |field: &'static str, reason: String| BfdError::InvalidProfile { field, reason };
        for (field, d) in [
            ("receiveInterval", self.receive_interval),
            ("transmitInterval", self.transmit_interval),
            ("echoInterval", self.echo_interval),
        ] {
            if !ms.contains(&d.as_millis()) || d.subsec_micros() % 1000 != 0 {
                return Err(bad(
                    field,
                    format!(
                        "{} ms is not a whole number of ms in 10..=60000",
                        d.as_secs_f64() * 1000.0
                    ),
                ));
            }
        }
        if self.detect_multiplier < 2 {
            return Err(bad(
                "detectMultiplier",
                format!("{} is not in 2..=255", self.detect_multiplier),
            ));
        }
        if !(1..=254).contains(&self.minimum_ttl) {
            return Err(bad(
                "minimumTtl",
                format!("{} is not in 1..=254", self.minimum_ttl),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_metallb() {
        let p = BfdProfile::default();
        assert_eq!(p.receive_interval, Duration::from_millis(300));
        assert_eq!(p.transmit_interval, Duration::from_millis(300));
        assert_eq!(p.detect_multiplier, 3);
        assert_eq!(p.echo_interval, Duration::from_millis(50));
        assert!(!p.echo_mode && !p.passive_mode);
        assert_eq!(p.minimum_ttl, 254);
        p.validate().unwrap();
    }

    #[test]
    fn validate_names_the_field() {
        let cases: [(BfdProfile, &str); 4] = [
            (
                BfdProfile {
                    receive_interval: Duration::from_millis(5),
                    ..Default::default()
                },
                "receiveInterval",
            ),
            (
                BfdProfile {
                    transmit_interval: Duration::from_secs(61),
                    ..Default::default()
                },
                "transmitInterval",
            ),
            (
                BfdProfile {
                    detect_multiplier: 1,
                    ..Default::default()
                },
                "detectMultiplier",
            ),
            (
                BfdProfile {
                    minimum_ttl: 255,
                    ..Default::default()
                },
                "minimumTtl",
            ),
        ];
        for (p, field) in cases {
            match p.validate() {
                Err(BfdError::InvalidProfile { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidProfile, got {other:?}"),
            }
        }
    }
}
