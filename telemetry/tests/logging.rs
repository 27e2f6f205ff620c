//! Log output as an operator sees it: captured from a writer, and from a real child process
//! whose stderr is a pipe (not a terminal).
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use ferrolb_telemetry::{LogFormat, init_logging, log_dispatch};

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

fn capture(format: LogFormat, ansi: bool, f: impl FnOnce()) -> String {
    let buf = Buf::default();
    let dispatch = log_dispatch(format, "info", ansi, buf.clone()).unwrap();
    tracing::dispatcher::with_default(&dispatch, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn json_lines_have_exactly_one_message_key() {
    let out = capture(LogFormat::Json, false, || {
        let span = tracing::info_span!("peer", addr = "192.0.2.1");
        let _g = span.enter();
        // What the controller logs for an Event: a field called `message` and a message.
        tracing::info!(reason = "IPAllocated", message = %"assigned 192.0.2.10", "event");
        tracing::warn!(count = 3u64, ok = false, "plain");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in &lines {
        assert_eq!(line.matches("\"message\":").count(), 1, "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["message"], "event", "{first}");
    assert_eq!(first["fields.message"], "assigned 192.0.2.10", "{first}");
    assert_eq!(first["reason"], "IPAllocated");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["spans"][0]["name"], "peer");
    assert_eq!(first["spans"][0]["addr"], "192.0.2.1");
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["message"], "plain");
    assert_eq!(second["count"], 3);
    assert_eq!(second["ok"], false);
    assert!(second["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn text_without_ansi_has_no_escape_codes() {
    let out = capture(LogFormat::Text, false, || {
        tracing::warn!(peer = "192.0.2.1", "session down");
    });
    assert!(
        out.contains("session down") && out.contains("peer"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "{out:?}");
    let coloured = capture(LogFormat::Text, true, || tracing::warn!("x"));
    assert!(
        coloured.contains('\x1b'),
        "the ansi switch works: {coloured:?}"
    );
}

/// The real `init_logging` in a child process whose stderr is a pipe, like a container log or
/// `2> file`: no colour codes.
#[test]
fn logs_to_a_pipe_are_plain_text() {
    if std::env::var_os("FERROLB_LOG_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_logs_one_line",
            "--nocapture",
            "--include-ignored",
        ])
        .env("FERROLB_LOG_CHILD", "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("child log line"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// Runs only as the child of `logs_to_a_pipe_are_plain_text`.
#[test]
#[ignore = "run by logs_to_a_pipe_are_plain_text in a child process"]
fn child_logs_one_line() {
    if std::env::var_os("FERROLB_LOG_CHILD").is_none() {
        return;
    }
    init_logging(LogFormat::Text, "info").unwrap();
    tracing::warn!(peer = "192.0.2.1", "child log line");
}
