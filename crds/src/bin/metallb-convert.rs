//! Converts MetalLB YAML (files or stdin) to ferrolb YAML on stdout. What cannot be converted
//! is listed on stderr, one line per object and field, and makes the exit status 1 unless
//! `--allow-lossy`.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

/// Convert MetalLB configuration to ferrolb configuration.
///
/// Reads MetalLB YAML: the metallb.io CRDs (IPAddressPool, L2Advertisement, BGPAdvertisement,
/// BGPPeer, BFDProfile, Community), the v1beta1 AddressPool, the legacy ConfigMap of MetalLB
/// <= 0.12 (its `config` key), Services with metallb annotations, the Secrets of BGP passwords,
/// and `kind: List` as printed by `kubectl get -o yaml`. Writes ferrolb.io/v1alpha1 YAML for
/// the namespace ferrolb-system to stdout.
///
/// Exit status: 0 when everything was converted; 1 when something could not be (listed on
/// stderr as `file:line: Kind namespace/name: field: reason`) unless --allow-lossy; 2 on usage
/// or read errors.
#[derive(Parser, Debug)]
#[command(name = "metallb-convert", version)]
struct Cli {
    /// MetalLB YAML files (multi-document); stdin when none.
    files: Vec<String>,
    /// Exit 0 even when something could not be converted (it is still listed on stderr).
    #[arg(long)]
    allow_lossy: bool,
    /// Print no notes (respelled communities, skipped MetalLB status objects), only losses.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut inputs = Vec::new();
    if cli.files.is_empty() {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("error: failed to read stdin: {e}");
            return ExitCode::from(2);
        }
        inputs.push(("<stdin>".to_string(), text));
    }
    for f in &cli.files {
        match std::fs::read_to_string(f) {
            Ok(text) => inputs.push((f.clone(), text)),
            Err(e) => {
                eprintln!("error: failed to read {f}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut losses = 0usize;
    for (name, text) in inputs {
        let c = ferrolb_crds::convert::convert_metallb(&name, &text);
        print!("{}", c.yaml);
        if !cli.quiet {
            for n in &c.notes {
                eprintln!("note: {n}");
            }
        }
        for l in &c.losses {
            eprintln!("not converted: {l}");
        }
        losses += c.losses.len();
    }
    if losses > 0 {
        if cli.allow_lossy {
            eprintln!("{losses} item(s) not converted (--allow-lossy: exiting 0)");
        } else {
            eprintln!(
                "error: {losses} item(s) could not be converted (listed above); \
                 fix them or rerun with --allow-lossy to accept the loss"
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
