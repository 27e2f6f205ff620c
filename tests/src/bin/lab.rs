//! The lab from the command line (as root), on top of `ferrolb_tests::lab`:
//!
//! ```text
//! lab up [--work W] [--prefix P] [--bin DIR] [--no-ipv6] [MANIFEST...]   # then: source W/lab.env
//! lab speaker --work W NODE     # start NODE's speaker again; prints its PID
//! lab down --work W [--keep-work]
//! lab demo [--work W] [--prefix P] [--bin DIR] [--keep] [MANIFEST...]    # the README demo
//! ```
//! `--bin` defaults to this binary's own directory (a release `lab` runs the release
//! speaker and controller next to it). MANIFEST: YAML files or directories of them; the
//! demo's default is `examples/lab/manifests`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferrolb_tests::lab::LabOptions;
use ferrolb_tests::lab::demo::{self, info, say};
use ferrolb_tests::lab::detached::Detached;

#[derive(Parser)]
#[command(about = "ferrolb's network-namespace lab: FRR router, three nodes, two clients")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the lab, start the controller and the speakers, write WORK/lab.env, leave it up.
    Up {
        #[command(flatten)]
        lab: New,
        /// Nodes without IPv6 addresses.
        #[arg(long)]
        no_ipv6: bool,
    },
    /// Start a node's speaker again in a lab made by `up`; prints its PID.
    Speaker {
        #[arg(long)]
        work: PathBuf,
        node: String,
    },
    /// Remove what `up` made: its processes, its namespaces, its work directory.
    Down {
        #[arg(long)]
        work: PathBuf,
        /// Keep the work directory (logs).
        #[arg(long)]
        keep_work: bool,
    },
    /// The README demo: build the lab, run the four scenarios, tear it down.
    Demo {
        #[command(flatten)]
        lab: New,
        /// After the scenarios, leave the lab running until interrupted.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Args)]
struct New {
    /// The lab's directory (default /tmp/flblab-PID).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Namespace names PREFIX-ROLE (default flblab-PID).
    #[arg(long)]
    prefix: Option<String>,
    /// Where ferrolb-controller and ferrolb-speaker are (default: next to this binary).
    #[arg(long)]
    bin: Option<PathBuf>,
    manifests: Vec<PathBuf>,
}

impl New {
    fn detached(&self) -> Detached {
        let pid = std::process::id();
        let here = std::env::current_exe().ok();
        let here = here
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        Detached {
            prefix: self.prefix.clone().unwrap_or(format!("flblab-{pid}")),
            work: self
                .work
                .clone()
                .unwrap_or(format!("/tmp/flblab-{pid}").into()),
            bin_dir: self.bin.clone().or(here).unwrap_or_default(),
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse().cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\n\x1b[31mFAILED: {e}\x1b[0m");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Up { lab, no_ipv6 } => {
            let d = lab.detached();
            let opts = LabOptions {
                ipv6: !no_ipv6,
                ..LabOptions::default()
            };
            let env = d.up(opts, &lab.manifests)?;
            println!("lab {} is up: source {}", d.prefix, env.display());
            println!("tear it down with: lab down --work {}", d.work.display());
        }
        Cmd::Speaker { work, node } => {
            println!("{}", Detached::from_work(&work)?.speaker(&node)?);
        }
        Cmd::Down { work, keep_work } => Detached::from_work(&work)?.down(keep_work),
        Cmd::Demo { lab, keep } => demo_cmd(&lab, keep)?,
    }
    Ok(())
}

fn demo_cmd(new: &New, keep: bool) -> Result<(), String> {
    let d = new.detached();
    let mut manifests = new.manifests.clone();
    if manifests.is_empty() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        manifests.push(repo.join("examples/lab/manifests"));
    }
    say("Creating namespaces: router r, nodes n1-n3, client-l2, client-out, controller ctl");
    info("FRR (zebra + bgpd) as the ToR router, AS 64512, accepting nodes from 192.0.2.0/24");
    info("an HTTP backend on every node (it answers with the node's name)");
    info("the controller and a speaker on each node, standalone mode");
    let mut lab = d.start(LabOptions::default(), &manifests)?;
    info(&format!("manifests in {}", lab.dir().display()));
    if let Err(e) = demo::run(&mut lab) {
        lab.work.keep();
        return Err(format!("{e}\nlogs kept in {}", d.work.display()));
    }
    if keep {
        info(&format!(
            "Lab left running; namespaces {}-*, files in {}. Press Ctrl-C to tear it down.",
            d.prefix,
            d.work.display()
        ));
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(())
}
