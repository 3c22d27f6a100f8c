//! `host-setup verify [NAME...]`: the tutorial's proofs, run against running
//! containers. The tutorial shows each mechanism by its effect — `ping` over the
//! veth pair, `top` showing 40 %, the OOM kill at 200 MB — and so does this: one
//! line per check, with what was measured.
//!
//! ```text
//! red  namespaces PASS  mnt uts ipc pid net cgroup differ from the host's
//! red  cpu        PASS  40.1 % of one CPU under stress -c 1 (limit 40 %), throttled in 20 of 21 periods
//! ```
//!
//! The checks run programs inside the way `host-setup exec` does (they are run
//! through this very executable's `exec`), and read the effects from the host:
//! the cgroup's counters, /proc, the namespace files. Every process a check starts
//! is ended by it (SIGKILL to the descendants of the `exec` it spawned), and
//! `cleanup` proves that: the container's cgroup holds the same processes as
//! before and its upper directory gained nothing.

mod checks;
mod load;
mod run;

use std::io::Write;
use std::path::PathBuf;

use crate::cgroup::live::Dirs;
use crate::cgroup::Cgroups;
use crate::error::Result;
use crate::spec::Spec;
use crate::state::{Journal, Paths, Proc, Role};

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Not applicable here (no network, no peer running).
    Skip,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One line of the report: the check, its outcome and the measured figure.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub figure: String,
}

impl Check {
    pub fn pass(name: &'static str, figure: impl Into<String>) -> Check {
        Check { name, outcome: Outcome::Pass, figure: figure.into() }
    }
    pub fn fail(name: &'static str, figure: impl Into<String>) -> Check {
        Check { name, outcome: Outcome::Fail, figure: figure.into() }
    }
    pub fn skip(name: &'static str, figure: impl Into<String>) -> Check {
        Check { name, outcome: Outcome::Skip, figure: figure.into() }
    }
    /// Pass if `ok`, else fail; the same figure either way.
    pub fn by(name: &'static str, ok: bool, figure: impl Into<String>) -> Check {
        if ok {
            Check::pass(name, figure)
        } else {
            Check::fail(name, figure)
        }
    }
}

/// A running container under test.
pub struct Target {
    pub name: String,
    pub spec: Spec,
    pub init: Proc,
    pub dirs: Dirs,
    pub cgroup_dirs: Vec<PathBuf>,
    /// --userns: the host ids the journal holds for it.
    pub ids: Option<crate::userns::IdMap>,
}

/// How to run a command inside a container: this executable's `exec`.
pub struct Runner {
    pub exe: PathBuf,
    pub paths: Paths,
}

/// Verify `names` (every running container if empty); prints one line per check.
/// Ok(0) if all passed; an error naming the failed checks otherwise.
/// The checks, in the order they run (`--check NAME` picks some).
pub const CHECKS: [&str; 11] =
    ["namespaces", "hostname", "limits", "disk", "ping", "caps", "escape", "cpu", "memory", "swap", "cleanup"];

pub fn verify(paths: &Paths, names: &[String], only: &[String]) -> Result<i32> {
    if let Some(bad) = only.iter().find(|c| !CHECKS.contains(&c.as_str())) {
        return Err(crate::usage!("verify --check {bad}: no such check; the checks are {}", CHECKS.join(", ")));
    }
    let exe = std::env::current_exe().map_err(|e| crate::failed!("readlink /proc/self/exe: {e}"))?;
    let cg = Cgroups::detect()?;
    let targets = targets(paths, names, &cg)?;
    let runner = Runner { exe, paths: paths.clone() };
    let width = targets.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let (mut total, mut failed, mut skipped) = (0, vec![], vec![]);
    for t in &targets {
        let mut report = |c: Check| {
            println!("{:<width$}  {:<10} {}  {}", t.name, c.name, c.outcome.word(), c.figure);
            let _ = std::io::stdout().flush();
            total += 1;
            match c.outcome {
                Outcome::Fail => failed.push(format!("{} {}", t.name, c.name)),
                Outcome::Skip => skipped.push(format!("{} {}", t.name, c.name)),
                Outcome::Pass => {}
            }
        };
        let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
        run_all(&runner, &cg, paths, t, &want, &mut report);
    }
    let skips = if skipped.is_empty() { String::new() } else { format!(", skipped: {}", skipped.join(", ")) };
    if failed.is_empty() {
        println!("verify: {} of {total} checks passed{skips}", total - skipped.len());
        Ok(0)
    } else {
        Err(crate::failed!("verify: {} of {total} checks failed: {}{skips}", failed.len(), failed.join(", ")))
    }
}

/// Every check on one container, in the tutorial's order; the ones that start
/// processes inside are framed by the snapshot that `cleanup` compares against.
fn run_all(
    runner: &Runner,
    cg: &Cgroups,
    paths: &Paths,
    t: &Target,
    want: &dyn Fn(&str) -> bool,
    report: &mut dyn FnMut(Check),
) {
    let checks: [(&str, &dyn Fn() -> Check); 10] = [
        ("namespaces", &|| checks::namespaces(t)),
        ("hostname", &|| checks::hostname(t)),
        ("limits", &|| checks::limits(t)),
        ("disk", &|| checks::disk(paths, t)),
        ("ping", &|| checks::ping(runner, paths, t)),
        ("caps", &|| checks::capabilities(runner, t)),
        ("escape", &|| checks::escape(runner, t)),
        ("cpu", &|| load::cpu(runner, cg, t)),
        ("memory", &|| load::memory(runner, cg, t)),
        ("swap", &|| load::swap(t)),
    ];
    // What the checks that start processes inside leave is compared against this.
    let before = load::Snapshot::take(paths, t);
    for (name, check) in checks {
        // Only a container with --disk has a disk of its own to check.
        if want(name) && (name != "disk" || t.spec.disk.is_some()) {
            report(check());
        }
    }
    if want("cleanup") {
        report(load::cleanup(paths, t, &before));
    }
}

/// The containers to verify: each named one must be running; with no names, all
/// the running ones.
fn targets(paths: &Paths, names: &[String], cg: &Cgroups) -> Result<Vec<Target>> {
    let all = names.is_empty();
    let names: Vec<String> = if all { paths.container_names() } else { names.to_vec() };
    let mut out = vec![];
    for name in names {
        let j = Journal::read(paths, &name)?;
        let running = j.as_ref().map(Journal::state_word).filter(|w| w == "running");
        let (Some(j), Some(_)) = (j, running) else {
            if all {
                continue;
            }
            return Err(crate::precondition!(
                "{name} is not running: see host-setup status {name}; start it with host-setup up {name}"
            ));
        };
        let spec = j.spec().ok_or_else(|| {
            crate::failed!("read {}: no container spec in the journal", paths.journal(&name).display())
        })?;
        let init = j.proc(Role::Init).ok_or_else(|| crate::failed!("{name}: no init in its journal"))?;
        let cgroup_dirs = j.cgroup_dirs();
        let dirs = Dirs::of(cg, &cgroup_dirs);
        let ids = j.ids();
        out.push(Target { name, spec, init, dirs, cgroup_dirs, ids });
    }
    if out.is_empty() {
        return Err(crate::precondition!(
            "no running containers in {}: start some first (host-setup red && host-setup blue)",
            paths.state_dir.display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_check_is_a_usage_error_naming_the_checks() {
        let e = verify(&Paths::new("/nonexistent-verify-unit"), &[], &["pong".into()]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("verify --check pong: no such check; the checks are namespaces, hostname"),
            "{e}"
        );
    }
}
