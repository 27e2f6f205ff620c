//! Prints ferrolb's generated manifests on stdout:
//! - `crdgen` (or `crdgen crds`): every CRD, for `examples/manifests/crds.yaml`;
//! - `crdgen install`: the full install manifest, for `examples/manifests/install.yaml`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("crds") => print!("{}", ferrolb_crds::crds_yaml()),
        Some("install") => print!("{}", ferrolb_crds::install_yaml()),
        Some(other) => {
            eprintln!("unknown output {other:?}; usage: crdgen [crds|install]");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
