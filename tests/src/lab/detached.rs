//! A lab that outlives the process that built it, for shell scripts (the `lab` binary:
//! `lab up`, `lab speaker`, `lab down`). Everything it makes is named after one prefix
//! (`<prefix>-<role>` namespaces) and lives in one work directory; `up` writes what a
//! script needs into `<work>/lab.env` (bash), and `down` removes exactly that: the PIDs
//! it recorded, then each `<prefix>-<role>` namespace (with whatever still runs inside),
//! then the work directory. Nothing is found by pattern.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Lab, LabOptions, NODE_NAMES, ROLES, speaker_args};
use crate::netns::{Netns, run, spawn_logged, wait_until};

/// Where a detached lab is: its prefix, its work directory, its binaries.
#[derive(Clone, Debug)]
pub struct Detached {
    pub prefix: String,
    pub work: PathBuf,
    pub bin_dir: PathBuf,
}

impl Detached {
    pub fn env_file(&self) -> PathBuf {
        self.work.join("lab.env")
    }

    /// The lab whose `lab.env` is in `work` (written by [`Detached::start`]).
    pub fn from_work(work: &Path) -> Result<Detached, String> {
        let file = work.join("lab.env");
        let env = std::fs::read_to_string(&file)
            .map_err(|e| format!("{}: {e} (no lab there?)", file.display()))?;
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(String::from)
                .ok_or_else(|| format!("{}: no {k}", file.display()))
        };
        Ok(Detached {
            prefix: get("P")?,
            work: work.to_path_buf(),
            bin_dir: PathBuf::from(get("BIN")?),
        })
    }

    /// The first lines of `lab.env`, enough for [`Detached::down`] to find everything.
    fn head(&self) -> String {
        let (p, w, b) = (&self.prefix, self.work.display(), self.bin_dir.display());
        format!(
            "# written by `lab up`; `lab down` reads P and LAB_PIDS\nP={p}\nWORK={w}\nBIN={b}\n"
        )
    }

    /// Builds the lab with `opts` (prefix, work and binaries from `self`), copies the
    /// `manifests` (files, or directories whose `*.yaml` are taken) into its manifests
    /// directory, starts the controller and the three speakers, writes `lab.env` and
    /// leaves it all running.
    pub fn up(&self, opts: LabOptions, manifests: &[PathBuf]) -> Result<PathBuf, String> {
        let mut lab = self.start(opts, manifests)?;
        let env = self.head() + &env_text(&lab);
        std::fs::write(self.env_file(), env).map_err(|e| format!("write lab.env: {e}"))?;
        lab.work.keep();
        lab.detach();
        Ok(self.env_file())
    }

    /// The lab of [`Detached::up`], still owned (removed on drop): for `lab demo`.
    pub fn start(&self, opts: LabOptions, manifests: &[PathBuf]) -> Result<Lab, String> {
        for b in ["ferrolb-controller", "ferrolb-speaker"] {
            if !self.bin_dir.join(b).is_file() {
                return Err(format!(
                    "no {b} in {}: build it (cargo build --release -p ferrolb-controller \
                     -p ferrolb-speaker -p ferrolb-tests --bins) or pass --bin DIR",
                    self.bin_dir.display()
                ));
            }
        }
        for role in ROLES {
            let name = format!("{}-{role}", self.prefix);
            if Netns::existing(&name).map(Netns::detach).is_some() {
                return Err(format!("namespace {name} exists: pick another prefix"));
            }
        }
        // `down` removes the whole work directory: never adopt one that holds anything.
        if std::fs::read_dir(&self.work).is_ok_and(|mut d| d.next().is_some()) {
            return Err(format!("{} is not empty", self.work.display()));
        }
        std::fs::create_dir_all(&self.work).map_err(|e| format!("create work dir: {e}"))?;
        // Written first: an interrupted start can still be taken down.
        std::fs::write(self.env_file(), self.head()).map_err(|e| format!("lab.env: {e}"))?;
        let mut lab = Lab::new(LabOptions {
            prefix: Some(self.prefix.clone()),
            work: Some(self.work.clone()),
            bin_dir: Some(self.bin_dir.clone()),
            ..opts
        });
        copy_manifests(manifests, &lab.dir())?;
        lab.start_controller();
        for i in 0..NODE_NAMES.len() {
            lab.start_speaker(i);
        }
        Ok(lab)
    }

    /// Starts node `node`'s speaker again (after a script stopped it); returns its PID.
    pub fn speaker(&self, node: &str) -> Result<u32, String> {
        let i = NODE_NAMES
            .iter()
            .position(|n| *n == node)
            .ok_or_else(|| format!("no node {node}"))?;
        let args = speaker_args(i, &self.work.join("m"), &self.work);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let program = self.bin_dir.join("ferrolb-speaker");
        let ns = format!("{}-{node}", self.prefix);
        let log = self.work.join(format!("{node}.log"));
        Ok(spawn_logged(&ns, &log, &[], program.to_str().unwrap(), &args).detach())
    }

    /// Stops the recorded processes (TERM, bounded wait, KILL), removes the lab's namespaces
    /// and, unless `keep_work`, its work directory.
    pub fn down(&self, keep_work: bool) {
        let pids = std::fs::read_to_string(self.env_file())
            .map(|env| recorded_pids(&env))
            .unwrap_or_default();
        for p in &pids {
            let _ = run("kill", &["-TERM", p]);
        }
        let alive = |p: &String| running(p);
        wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
            (!pids.iter().any(alive)).then_some(())
        });
        for p in pids.iter().filter(|p| alive(p)) {
            let _ = run("kill", &["-KILL", p]);
        }
        for role in ROLES {
            // Dropping it kills what still runs inside and deletes it.
            drop(Netns::existing(&format!("{}-{role}", self.prefix)));
        }
        if !keep_work {
            let _ = std::fs::remove_dir_all(&self.work);
        }
        // FRR writes /var/tmp/frr/<daemon>.<pid>/ whatever it is told; remove it if empty.
        let _ = std::fs::remove_dir("/var/tmp/frr");
    }
}

impl Lab {
    /// Lets every process and namespace of the lab run on after this value is gone;
    /// returns the PIDs. The work directory stays unless it was not kept.
    fn detach(self) -> Vec<u32> {
        let mut pids = self.frr.detach();
        pids.extend(self.backends.into_iter().map(|p| p.detach()));
        pids.extend(self.controller.map(|p| p.detach()));
        pids.extend(self.speakers.into_values().map(|p| p.detach()));
        for ns in [self.r, self.cl2, self.cout, self.ctl]
            .into_iter()
            .chain(self.nodes)
        {
            ns.detach();
        }
        pids
    }
}

/// Copies the `*.yaml` of each path (a file, or a directory's files) into `dir`.
fn copy_manifests(paths: &[PathBuf], dir: &Path) -> Result<(), String> {
    for p in paths {
        let files: Vec<PathBuf> = if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.retain(|f| f.extension().is_some_and(|x| x == "yaml"));
            v
        } else {
            vec![p.clone()]
        };
        for f in files {
            let to = dir.join(f.file_name().ok_or("manifest without a name")?);
            std::fs::copy(&f, &to).map_err(|e| format!("copy {}: {e}", f.display()))?;
        }
    }
    Ok(())
}

/// `lab.env`: bash assignments a script sources (see bench/lab/lab.sh).
fn env_text(lab: &Lab) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "M={}", lab.dir().display());
    let _ = writeln!(s, "FRR={}", lab.frr.dir().display());
    let _ = writeln!(s, "NAMESPACES=({})", lab_names(lab).join(" "));
    let pid = |p: &crate::netns::Proc| p.pid().to_string();
    let ctl = lab.controller.as_ref().map(pid).unwrap_or_default();
    let _ = writeln!(s, "CTL_PID={ctl}");
    let sp: Vec<String> = lab
        .speakers
        .iter()
        .map(|(n, p)| format!("[{n}]={}", p.pid()))
        .collect();
    let _ = writeln!(s, "declare -gA SPEAKER_PID=({})", sp.join(" "));
    let mut all: Vec<String> = lab.backends.iter().map(pid).collect();
    all.extend(lab.speakers.values().map(pid));
    all.push(ctl);
    all.extend(lab.frr.pids().into_iter().map(|p| p.to_string()));
    let _ = writeln!(s, "LAB_PIDS=({})", all.join(" "));
    s
}

fn lab_names(lab: &Lab) -> Vec<String> {
    [&lab.r, &lab.cl2, &lab.cout, &lab.ctl]
        .into_iter()
        .chain(&lab.nodes)
        .map(|n| n.name().to_string())
        .collect()
}

/// The PIDs on the `LAB_PIDS=(...)` line of a `lab.env`.
fn recorded_pids(env: &str) -> Vec<String> {
    env.lines()
        .find_map(|l| l.strip_prefix("LAB_PIDS=("))
        .map(|l| l.trim_end_matches(')'))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// True while process `pid` exists and is not a zombie (a zombie has let go of its sockets).
fn running(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the ")" that ends the command name.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    state.is_some_and(|s| !s.starts_with('Z'))
}
