//! The runtime's state of one container, `ROOT/containers/ID/oci.json`, which
//! every verb reads. The status is computed, never stored: `created` while the
//! exec fifo exists and init lives, `running` once `start` removed it, `paused`
//! when the freezer says so, `stopped` when init is gone (or a zombie). init is
//! known by pid and start time, so a recycled pid is never taken for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::to_spec::exec_fifo;
use crate::error::{Result, SysContext};
use crate::state::{Paths, Proc};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub bundle: PathBuf,
    pub pid: i32,
    pub pid_start: u64,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// The bundle's config.json as it was at create.
    pub config: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

pub fn path(paths: &Paths, id: &str) -> PathBuf {
    paths.container(id).join("oci.json")
}

/// Whether anything of container `id` is there (its journal, lock or directory).
pub fn exists(paths: &Paths, id: &str) -> bool {
    paths.journal(id).exists() || paths.container(id).exists()
}

impl State {
    pub fn load(paths: &Paths, id: &str) -> Result<State> {
        let p = path(paths, id);
        let text = match std::fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(crate::failed!("container {id} does not exist"));
            }
            Err(e) => return Err(e).sys(|| format!("read {}", p.display())),
        };
        serde_json::from_slice(&text).map_err(|e| crate::failed!("read {}: {e}", p.display()))
    }

    /// Written whole or not at all (a new file, renamed over the old).
    pub fn save(&self, paths: &Paths) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| crate::failed!("state of {}: {e}", self.id))?;
        write_atomic(&path(paths, &self.id), &text)
    }

    pub fn init(&self) -> Proc {
        Proc { pid: self.pid, start: self.pid_start }
    }

    pub fn status(&self, paths: &Paths) -> Status {
        if !self.init().alive() {
            return Status::Stopped;
        }
        if exec_fifo(paths, &self.id).exists() {
            return Status::Created;
        }
        if self.frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The freezer: v1's freezer.state FROZEN, or v2's cgroup.freeze 1.
    pub fn frozen(&self) -> bool {
        self.cgroup_dirs.iter().any(|d| {
            let read = |f: &str| std::fs::read_to_string(d.join(f)).map(|s| s.trim().to_string()).unwrap_or_default();
            read("freezer.state") == "FROZEN" || read("cgroup.freeze") == "1"
        })
    }

    /// The runtime spec's state: what `state` prints and hooks get on stdin.
    pub fn spec_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.word(),
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        if status != Status::Stopped {
            v["pid"] = self.pid.into();
        } else {
            v["pid"] = 0.into();
        }
        v
    }
}

/// Write `bytes` to `path` atomically: a temporary file beside it, renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).sys(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).sys(|| format!("rename {} to {}", tmp.display(), path.display()))
}
