//! BGP timers (RFC 4271 §4.2, §10): the hold time (0, or 3 to 65535 whole seconds, carried in
//! 16 bits) and the keepalive interval. One definition for `Config::build`, for the CEL rules
//! on `BGPPeer.spec.holdTime`/`keepaliveTime` and for the BGP driver (which takes
//! [`HoldTime::secs`] as is), so none of them can disagree.

use std::fmt;
use std::time::Duration;

use super::duration::parse_duration;

/// Go/Kubernetes duration syntax as the CRD schema accepts it (`90s`, `1m30s`, `0`).
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";

/// A valid hold time: 0 (no keepalives, no hold timer) or `MIN_SECS..=MAX_SECS` whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HoldTime(u16);

impl HoldTime {
    /// Smallest non-zero hold time.
    pub const MIN_SECS: u16 = 3;
    /// Largest hold time (the OPEN message carries 16 bits).
    pub const MAX_SECS: u16 = u16::MAX;
    /// The default (RFC 4271 suggests 90 s; MetalLB's default).
    pub const DEFAULT: HoldTime = HoldTime(90);
    /// No hold timer, no keepalives.
    pub const ZERO: HoldTime = HoldTime(0);
    /// The error message, in config errors and from the API server.
    pub const MESSAGE: &'static str =
        "hold time must be 0 or at least 3s, at most 65535s, in whole seconds";
    /// The error message for `keepaliveTime`, in config errors and from the API server.
    pub const KEEPALIVE_MESSAGE: &'static str = "keepaliveTime must be whole seconds, at least \
         1s and less than holdTime (0 when holdTime is 0; without holdTime, which is then 3 \
         times keepaliveTime, at most 21845s)";

    /// `Ok` for 0 and for whole seconds in `MIN_SECS..=MAX_SECS`.
    pub fn from_duration(d: Duration) -> Result<HoldTime, &'static str> {
        match u16::try_from(d.as_secs()) {
            Ok(s) if d.subsec_nanos() == 0 && (s == 0 || s >= Self::MIN_SECS) => Ok(HoldTime(s)),
            _ => Err(Self::MESSAGE),
        }
    }

    /// `from_duration` in seconds.
    pub fn from_secs(secs: u64) -> Result<HoldTime, &'static str> {
        Self::from_duration(Duration::from_secs(secs))
    }

    /// Parses a `holdTime` string (`90s`, `1m30s`, `0`).
    pub fn parse(text: &str) -> Result<HoldTime, String> {
        let d = parse_duration(text)?;
        Self::from_duration(d).map_err(str::to_string)
    }

    /// The hold time implied by `keepaliveTime` set alone: three times it, as MetalLB does.
    /// `Err` ([`Self::KEEPALIVE_MESSAGE`]) when that is no valid hold time.
    pub fn for_keepalive(keepalive: Duration) -> Result<HoldTime, &'static str> {
        keepalive
            .checked_mul(3)
            .filter(|_| keepalive.subsec_nanos() == 0)
            .and_then(|d| Self::from_duration(d).ok())
            .ok_or(Self::KEEPALIVE_MESSAGE)
    }

    /// The keepalive interval to use with this hold time: `keepalive` if given and valid
    /// (whole seconds; 0 when the hold time is 0, else at least 1 s and below the hold time),
    /// else a third of the hold time in whole seconds, at least 1 s (0 for 0).
    pub fn keepalive(self, keepalive: Option<Duration>) -> Result<Duration, &'static str> {
        let Some(k) = keepalive else {
            let third = if self.is_zero() {
                0
            } else {
                (self.0 / 3).max(1)
            };
            return Ok(Duration::from_secs(u64::from(third)));
        };
        let ok = k.subsec_nanos() == 0
            && if self.is_zero() {
                k.is_zero()
            } else {
                k >= Duration::from_secs(1) && k < self.as_duration()
            };
        if ok {
            Ok(k)
        } else {
            Err(Self::KEEPALIVE_MESSAGE)
        }
    }

    /// Seconds, as carried in the OPEN message.
    pub fn secs(self) -> u16 {
        self.0
    }

    /// As a `Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }

    /// Whether this is 0 (no hold timer).
    pub fn is_zero(self) -> bool {
        self.0 == 0
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

    /// The object-level CEL rule (on `BGPPeer.spec`) for `keepaliveTime`, the same checks as
    /// [`HoldTime::for_keepalive`] and [`HoldTime::keepalive`]; skipped when either field is
    /// not a duration (the schema's pattern reports that).
    pub fn cel_keepalive_validation() -> serde_json::Value {
        let is_dur = |f: &str| format!("self.{f}.matches(r'{DURATION_PATTERN}')");
        let (k, h) = ("duration(self.keepaliveTime)", "duration(self.holdTime)");
        serde_json::json!({
            "rule": format!(
                "!has(self.keepaliveTime) || !{kd} || (has(self.holdTime) && !{hd}) || \
                 ({k}.getMilliseconds() % 1000 == 0 && (!has(self.holdTime) ? \
                 {k} <= duration('{alone}s') : {h} == duration('0s') ? \
                 {k} == duration('0s') : ({k} >= duration('1s') && {k} < {h})))",
                kd = is_dur("keepaliveTime"),
                hd = is_dur("holdTime"),
                alone = Self::MAX_SECS / 3,
            ),
            "message": Self::KEEPALIVE_MESSAGE,
            "fieldPath": ".keepaliveTime"
        })
    }
}

impl Default for HoldTime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for HoldTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn limits() {
        for ok in [0, 3, 90, 65535] {
            assert_eq!(HoldTime::from_secs(ok).map(|h| u64::from(h.secs())), Ok(ok));
        }
        for bad in [1, 2, 65536, 100_000] {
            assert!(HoldTime::from_secs(bad).is_err(), "{bad}");
        }
        assert!(HoldTime::from_duration(Duration::from_millis(3500)).is_err());
        assert_eq!(HoldTime::parse("1m30s"), Ok(HoldTime::DEFAULT));
        assert!(
            HoldTime::parse("90")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn keepalive_defaults_and_checks() {
        let h = |s| HoldTime::from_secs(s).unwrap();
        assert_eq!(h(90).keepalive(None), Ok(secs(30)));
        assert_eq!(h(4).keepalive(None), Ok(secs(1)));
        assert_eq!(h(0).keepalive(None), Ok(secs(0)));
        assert_eq!(h(9).keepalive(Some(secs(8))), Ok(secs(8)));
        assert_eq!(h(0).keepalive(Some(secs(0))), Ok(secs(0)));
        for (hold, k) in [(9, secs(9)), (9, secs(0)), (0, secs(1))] {
            assert!(h(hold).keepalive(Some(k)).is_err(), "{hold} {k:?}");
        }
        assert!(h(3).keepalive(Some(Duration::from_millis(500))).is_err());
        assert_eq!(HoldTime::for_keepalive(secs(20)), Ok(h(60)));
        assert_eq!(HoldTime::for_keepalive(secs(0)), Ok(h(0)));
        assert_eq!(HoldTime::for_keepalive(secs(21845)), Ok(h(65535)));
        assert!(HoldTime::for_keepalive(secs(21846)).is_err());
        assert!(HoldTime::for_keepalive(Duration::from_millis(1500)).is_err());
    }
}
