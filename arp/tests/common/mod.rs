//! Reads the frames captured with `tcpdump -xx -e` in `tests/vectors/` (see capture.sh there).

use std::path::PathBuf;

/// The frames of one capture file, in capture order.
pub fn frames(name: &str) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("\t0x") {
            let hex: String = rest
                .split_once(':')
                .expect("offset colon")
                .1
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .collect();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            out.last_mut().expect("header line first").extend(bytes);
        } else if !line.trim().is_empty() && !line.starts_with(char::is_whitespace) {
            out.push(Vec::new());
        }
    }
    out
}

pub fn one(name: &str, index: usize) -> Vec<u8> {
    frames(name).swap_remove(index)
}
