//! Converts MetalLB YAML (stdin or files) to ferrolb YAML on stdout; notes go to stderr.
//!
//! `metallb-convert metallb.yaml > ferrolb.yaml`

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let mut inputs = Vec::new();
    if files.is_empty() {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("failed to read stdin: {e}");
            return ExitCode::FAILURE;
        }
        inputs.push(("<stdin>".to_string(), text));
    }
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => inputs.push((f, text)),
            Err(e) => {
                eprintln!("failed to read {f}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for (name, text) in inputs {
        let c = ferrolb_crds::convert::convert_metallb(&name, &text);
        print!("{}", c.yaml);
        for w in c.warnings {
            eprintln!("warning: {w}");
        }
    }
    ExitCode::SUCCESS
}
