//! `tracing` subscriber set-up: text for people, JSON for log pipelines.
//!
//! Text logs carry ANSI colours only when they go to a terminal (and `NO_COLOR` is unset), so
//! logs redirected to a file or collected by a container runtime are plain text. JSON logs are
//! one object per line with exactly one `"message"` key: an event that also has a field named
//! `message` (e.g. `info!(message = %e.message, "event")`) gets that field as `"fields.message"`
//! — [`JsonLine`].

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

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

/// Installs the global subscriber, writing to stderr. `RUST_LOG` overrides `default_filter`
/// when set. Colours only when stderr is a terminal and `NO_COLOR` is unset.
pub fn init_logging(format: LogFormat, default_filter: &str) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => default_filter.to_string(),
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let dispatch = log_dispatch(format, &filter, ansi, std::io::stderr)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|e| TelemetryError::LogInit(Box::new(e)))
}

/// The subscriber [`init_logging`] installs, writing to `writer` (tests capture it).
pub fn log_dispatch<W>(
    format: LogFormat,
    filter: &str,
    ansi: bool,
    writer: W,
) -> Result<tracing::Dispatch, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_new(filter).map_err(|source| TelemetryError::LogFilter {
        filter: filter.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer);
    Ok(match format {
        LogFormat::Text => builder.with_ansi(ansi).finish().into(),
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine)
            .finish()
            .into(),
    })
}

/// One JSON object per event: `timestamp`, `level`, `target`, `message`, the event's fields
/// (flattened) and `spans` (outermost first, each with `name` and its fields). Keys are unique.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut obj = Map::new();
        obj.insert("timestamp".into(), Value::String(time));
        obj.insert("level".into(), Value::String(meta.level().to_string()));
        obj.insert("target".into(), Value::String(meta.target().to_string()));
        let mut fields = Fields::default();
        event.record(&mut fields);
        obj.insert(
            "message".into(),
            Value::String(fields.message.unwrap_or_default()),
        );
        for (k, v) in fields.map {
            let key = if obj.contains_key(&k) {
                format!("fields.{k}")
            } else {
                k
            };
            obj.insert(key, v);
        }
        if let Some(scope) = ctx.event_scope() {
            let mut spans = Vec::new();
            for span in scope.from_root() {
                let mut s = Map::new();
                s.insert("name".into(), Value::String(span.name().to_string()));
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(m)) = serde_json::from_str::<Value>(f)
                {
                    for (k, v) in m {
                        s.entry(k).or_insert(v);
                    }
                }
                spans.push(Value::Object(s));
            }
            if !spans.is_empty() {
                obj.insert("spans".into(), Value::Array(spans));
            }
        }
        let line = serde_json::to_string(&Value::Object(obj)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields. The event's message is the *first* field named `message` (the
/// macros put the format string first); a later field of that name is kept in `map`.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" && self.message.is_none() {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
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
