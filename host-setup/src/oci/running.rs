//! The container a verb acts on (exec, ps, pause, resume, update): its state file
//! `ROOT/ID/oci.json` (DESIGN: written by `create`), read back and checked against
//! the kernel. `pid` + `pid_start` name its PID 1 so that a recycled pid is never
//! taken for ours; the status is computed, never stored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, SysContext};
use crate::state::Proc;

/// The fields of oci.json the verbs need (the file has more; unknown fields are kept
/// for `state`, which oci-core's state.rs prints).
#[derive(Debug, Clone, Deserialize)]
pub struct Saved {
    pub id: String,
    #[serde(default)]
    pub bundle: PathBuf,
    pub pid: i32,
    pub pid_start: u64,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// The bundle's config.json as copied at create (exec's process defaults).
    #[serde(default)]
    pub config: PathBuf,
}

/// One container of `--root`.
#[derive(Debug, Clone)]
pub struct Running {
    pub dir: PathBuf,
    pub saved: Saved,
}

/// runc's rule for an ID: `^[\w+\-.]+$`, at most 1024 bytes; never a path.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::usage!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'"))
    }
}

/// Where container `id`'s runtime state lives under `root` (`--root`).
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Running {
    /// Read `ROOT/ID/oci.json`; a missing one is "container does not exist" (runc's words).
    pub fn load(root: &Path, id: &str) -> Result<Running> {
        check_id(id)?;
        let dir = dir(root, id);
        let file = dir.join("oci.json");
        let text = match std::fs::read_to_string(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(crate::failed!("container {id} does not exist (no {})", file.display()))
            }
            r => r.sys(|| format!("read {}", file.display()))?,
        };
        let saved: Saved = serde_json::from_str(&text).map_err(|e| crate::failed!("read {}: {e}", file.display()))?;
        Ok(Running { dir, saved })
    }

    /// The container's PID 1 as saved (pid and start time).
    pub fn init(&self) -> Proc {
        Proc { pid: self.saved.pid, start: self.saved.pid_start }
    }

    /// PID 1 lives (not a zombie, same start time).
    pub fn alive(&self) -> bool {
        self.saved.pid > 0 && self.init().alive()
    }

    /// runtime-spec status: created (exec fifo still there), running, paused
    /// (the freezer says so) or stopped (PID 1 gone or a zombie).
    pub fn status(&self) -> &'static str {
        if !self.alive() {
            "stopped"
        } else if self.dir.join("exec.fifo").exists() {
            "created"
        } else if super::pause::frozen(&self.saved.cgroup_dirs) == Some(true) {
            "paused"
        } else {
            "running"
        }
    }

    /// Refuse unless PID 1 lives: `what` is the verb, for the message.
    pub fn require_alive(&self, what: &str) -> Result<Proc> {
        if self.alive() {
            Ok(self.init())
        } else {
            Err(crate::failed!(
                "{what} {}: the container is not running (its pid {} is gone)",
                self.saved.id,
                self.saved.pid
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "my-ctr_1.2+x", &"x".repeat(1024)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", &"x".repeat(1025)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
