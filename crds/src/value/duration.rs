//! Kubernetes duration strings (`90s`, `1m30s`, `500ms`).

use std::time::Duration;

/// Parses a Go/Kubernetes duration (`time.ParseDuration` syntax); negative durations are
/// rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d: kube_core::Duration = text
        .trim()
        .parse()
        .map_err(|e| format!("not a duration like 90s or 1m30s ({e})"))?;
    if d.is_negative() {
        return Err("duration must not be negative".to_string());
    }
    Ok(d.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("ninety").is_err());
    }
}
