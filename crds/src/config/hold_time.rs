//! The BGP hold time (RFC 4271 §4.2: 0, or 3 to 65535 whole seconds, carried in 16 bits).
//! One definition for `Config::build` and for the CEL rule on `BGPPeer.spec.holdTime`, so the
//! API server and the config builder cannot disagree.

use std::time::Duration;

/// Go/Kubernetes duration syntax as the CRD schema accepts it (`90s`, `1m30s`, `0`).
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// Hold time limits and checks.
pub struct HoldTime;

impl HoldTime {
    /// Smallest non-zero hold time.
    pub const MIN_SECS: u64 = 3;
    /// Largest hold time (the OPEN message carries 16 bits).
    pub const MAX_SECS: u64 = 65535;
    /// The error message, in config errors and from the API server.
    pub const MESSAGE: &'static str =
        "hold time must be 0 or at least 3s, at most 65535s, in whole seconds";

    /// `Ok` for 0 and for whole seconds in `MIN_SECS..=MAX_SECS`.
    pub fn check(d: Duration) -> Result<Duration, &'static str> {
        let whole = d.subsec_nanos() == 0;
        let in_range = (Self::MIN_SECS..=Self::MAX_SECS).contains(&d.as_secs());
        if d.is_zero() || (whole && in_range) {
            Ok(d)
        } else {
            Err(Self::MESSAGE)
        }
    }

    /// The CEL rule for a `holdTime` string (`self`). Strings that are not durations are left
    /// to the schema's `pattern` (a clear message) instead of failing at run time in CEL.
    pub fn cel_rule() -> String {
        format!(
            "!self.matches(r'{pat}') || duration(self) == duration('0s') || \
             (duration(self) >= duration('{min}s') && duration(self) <= duration('{max}s') && \
             duration(self).getMilliseconds() % 1000 == 0)",
            pat = DURATION_PATTERN,
            min = Self::MIN_SECS,
            max = Self::MAX_SECS,
        )
    }

    /// `x-kubernetes-validations` for the `holdTime` field.
    pub fn cel_validations() -> serde_json::Value {
        serde_json::json!([{ "rule": Self::cel_rule(), "message": Self::MESSAGE }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        for ok in [0, 3, 90, 65535] {
            assert!(HoldTime::check(Duration::from_secs(ok)).is_ok(), "{ok}");
        }
        for bad in [1, 2, 65536, 100_000] {
            assert!(HoldTime::check(Duration::from_secs(bad)).is_err(), "{bad}");
        }
        assert!(HoldTime::check(Duration::from_millis(3500)).is_err());
    }
}
