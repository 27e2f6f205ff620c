//! The ConnectRetry time of a BGP session (RFC 4271 §8, §10; MetalLB's `connectTime`): whole
//! seconds from 1 s to 65535 s. One definition for `Config::build`, for the CEL rule on
//! `BGPPeer.spec.connectTime` and for the speaker (which hands
//! [`ConnectTime::as_duration`] to the session), so none of them can disagree.

use std::fmt;
use std::time::Duration;

use super::duration::parse_duration;
use super::hold_time::DURATION_PATTERN;

/// A valid `connectTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectTime(u16);

impl ConnectTime {
    /// Smallest connect time.
    pub const MIN_SECS: u16 = 1;
    /// Largest connect time.
    pub const MAX_SECS: u16 = u16::MAX;
    /// The error message, in config errors and from the API server.
    pub const MESSAGE: &'static str = "connectTime must be whole seconds between 1s and 65535s";

    /// `Ok` for whole seconds in `MIN_SECS..=MAX_SECS`.
    pub fn from_duration(d: Duration) -> Result<ConnectTime, &'static str> {
        match u16::try_from(d.as_secs()) {
            Ok(s) if d.subsec_nanos() == 0 && s >= Self::MIN_SECS => Ok(ConnectTime(s)),
            _ => Err(Self::MESSAGE),
        }
    }

    /// `from_duration` in seconds.
    pub fn from_secs(secs: u64) -> Result<ConnectTime, &'static str> {
        Self::from_duration(Duration::from_secs(secs))
    }

    /// Parses a `connectTime` string (`5s`, `1m`).
    pub fn parse(text: &str) -> Result<ConnectTime, String> {
        let d = parse_duration(text)?;
        Self::from_duration(d).map_err(str::to_string)
    }

    /// Seconds.
    pub fn secs(self) -> u16 {
        self.0
    }

    /// As a `Duration` (what the session takes).
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }

    /// The CEL rule for a `connectTime` string (`self`). Strings that are not durations are
    /// left to the schema's `pattern` (a clear message) instead of failing at run time in CEL.
    pub fn cel_rule() -> String {
        format!(
            "!self.matches(r'{pat}') || (duration(self) >= duration('{min}s') && \
             duration(self) <= duration('{max}s') && duration(self).getMilliseconds() % 1000 == 0)",
            pat = DURATION_PATTERN,
            min = Self::MIN_SECS,
            max = Self::MAX_SECS,
        )
    }

    /// `x-kubernetes-validations` for the `connectTime` field.
    pub fn cel_validations() -> serde_json::Value {
        serde_json::json!([{ "rule": Self::cel_rule(), "message": Self::MESSAGE }])
    }
}

impl fmt::Display for ConnectTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        for ok in [1, 2, 120, 65535] {
            assert_eq!(
                ConnectTime::from_secs(ok).map(|c| u64::from(c.secs())),
                Ok(ok)
            );
        }
        for bad in [0, 65536, 100_000] {
            assert_eq!(
                ConnectTime::from_secs(bad),
                Err(ConnectTime::MESSAGE),
                "{bad}"
            );
        }
        assert!(ConnectTime::from_duration(Duration::from_millis(1500)).is_err());
        assert_eq!(
            ConnectTime::parse("1m").map(ConnectTime::as_duration),
            Ok(Duration::from_secs(60))
        );
        assert!(
            ConnectTime::parse("5")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
