//! Runs a shell script in the test VM (`tests/vm/prepare.sh`, [`ferrolb_tests::vm`]):
//! for benchmarks that need a kernel feature this host lacks (netem for
//! `bench/membership/vm-soak.sh`). The script runs as root, chrooted into the host's
//! read-only `/` with fresh tmpfs over /tmp, /run, /var/tmp, /var/log, /var/lib/frr and
//! /var/run, so it writes its results under a directory of the host that is not hidden and
//! not read-only in the VM: print them instead (its output comes back here).
//!
//!   vm_run LIMIT_SECONDS SCRIPT_FILE     (exit status: the script's; 124 when timed out)

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(limit), Some(file)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: vm_run LIMIT_SECONDS SCRIPT_FILE");
        std::process::exit(2);
    };
    let limit: u64 = limit.parse().unwrap_or_else(|_| {
        eprintln!("vm_run: LIMIT_SECONDS {limit:?} is not a number");
        std::process::exit(2)
    });
    let script = std::fs::read_to_string(file).unwrap_or_else(|e| {
        eprintln!("vm_run: {file}: {e}");
        std::process::exit(2)
    });
    let image = ferrolb_tests::vm::prepare().unwrap_or_else(|e| {
        eprintln!("vm_run: {e}");
        std::process::exit(1)
    });
    let run = ferrolb_tests::vm::run_script_in_vm(&image, &script, Duration::from_secs(limit))
        .unwrap_or_else(|e| {
            eprintln!("vm_run: {e}");
            std::process::exit(1)
        });
    print!("{}", run.log);
    eprintln!(
        "vm_run: {:.1} s in the VM, exit status {:?}",
        run.elapsed.as_secs_f64(),
        run.status
    );
    std::process::exit(run.status.unwrap_or(124));
}
