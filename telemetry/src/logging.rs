//! `tracing` subscriber set-up: text for people, JSON for log pipelines.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::TelemetryError;

/// Log output format, chosen with `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(TelemetryError::LogFormat(other.to_string())),
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter` when set.
pub fn init_logging(format: LogFormat, default_filter: &str) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => default_filter.to_string(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|source| TelemetryError::LogFilter {
        filter: filter.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    res.map_err(TelemetryError::LogInit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_names_a_bad_one() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown log format \"yaml\": expected \"text\" or \"json\""
        );
    }
}
