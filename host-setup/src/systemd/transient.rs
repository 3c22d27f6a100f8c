//! The cgroups step's action under `--systemd-cgroup`. A scope needs a process
//! to exist (systemd refuses an empty one), so it is started by the launch step
//! between cloning init and letting it go on (spawn.rs's gate), as runc starts it
//! for `runc init` before that runs: init's pid into the unit, the job waited
//! for, then the same cgroup files as cgroupfs (runc writes both: systemd knows
//! no unified keys nor device rules, and rounds the CPU quota), then init's pid
//! into the unit's cgroup.procs (a slice unit takes no PIDs property).
//! Journalled before anything is started (the unit and its cgroup dir); undone
//! with StopUnit, then the dir removed if systemd left it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{scope, Unit};
use crate::cgroup::{self, Op};
use crate::error::Result;
use crate::spec::Resources;

#[derive(Debug, Clone)]
pub struct Transient {
    pub unit: Unit,
    pub id: String,
    /// The unit's cgroup directory (systemd makes it).
    pub dir: PathBuf,
    pub resources: Resources,
    /// The cgroup file writes, into `dir`, once it exists.
    pub ops: Vec<Op>,
}

impl Transient {
    /// For cgroup v2 mounted at `root`: what `explicit_ops` made for the unit's
    /// cgroup, without its mkdirs and subtree_control writes (systemd's, with
    /// Delegate=yes: the controllers are on down to the unit).
    pub fn new(unit: &Unit, id: &str, root: &Path, r: &Resources, ops: Vec<Op>) -> Transient {
        let ops = ops.into_iter().filter(|o| !matches!(o, Op::Enable { .. } | Op::Mkdir { .. })).collect();
        Transient { unit: unit.clone(), id: id.into(), dir: root.join(&unit.cgroup), resources: r.clone(), ops }
    }

    /// With init cloned and waiting: the unit, the files, init in it.
    pub fn start(&self, pid: i32) -> Result<()> {
        let t0 = std::time::Instant::now();
        scope::start(&self.unit, scope::properties(&self.unit, &self.id, pid as u32, &self.resources))?;
        log::debug!("systemd: {} started in {:.1} ms", self.unit.name, t0.elapsed().as_secs_f64() * 1000.0);
        if !self.dir.is_dir() {
            return Err(crate::failed!(
                "systemd: {} is active but its cgroup {} is not there (is systemd's cgroup v2 mounted elsewhere?)",
                self.unit.name,
                self.dir.display()
            ));
        }
        for op in &self.ops {
            op.run()?;
        }
        Op::Write { file: self.dir.join("cgroup.procs"), value: pid.to_string(), if_exists: false }.run()
    }

    pub fn shell(&self) -> Vec<String> {
        let mut props: Vec<String> = vec![];
        for p in scope::properties(&self.unit, &self.id, 0, &self.resources) {
            if let super::wire::Value::Struct(f) = p {
                let name = f[0].as_str().unwrap_or_default().to_string();
                if !matches!(name.as_str(), "PIDs" | "Slice" | "Description") {
                    props.push(format!("-p {name}=..."));
                }
            }
        }
        let kind = if self.unit.is_slice() { "" } else { "--scope " };
        let mut out = vec![format!(
            "systemd-run {kind}--unit {} --slice {} {}   # once init is cloned: StartTransientUnit over {} with PIDs=[init], wait for JobRemoved",
            self.unit.name,
            self.unit.slice,
            props.join(" "),
            super::bus::PRIVATE
        )];
        out.extend(self.ops.iter().flat_map(Op::shell));
        out.push(format!("echo $INIT_PID > {}/cgroup.procs", self.dir.display()));
        out
    }
}

/// Undo: anything left in the unit's cgroup is killed (as for a cgroupfs cgroup).
/// A scope whose last process ended is stopped by systemd itself, which removes
/// its cgroup: that is waited for; only a unit still there after that (a slice,
/// or processes that would not die) is stopped with StopUnit. Seen in the VM:
/// StopUnit of a scope systemd is stopping itself got no reply within 30 s.
pub fn undo(name: &str, dir: &Path) -> Result<()> {
    for pid in cgroup::procs(dir) {
        log::debug!("kill -KILL {pid} (left in {})", dir.display());
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dir.exists() && !name.ends_with(".slice") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if dir.exists() {
        scope::stop(name)?;
    } else {
        log::debug!("systemd: {name} stopped by itself ({} removed)", dir.display());
    }
    cgroup::remove(dir, Duration::from_secs(5)).map(drop)
}
