//! Processes named so that a recycled pid is never mistaken for ours: the pid plus
//! its start time (field 22 of /proc/PID/stat, clock ticks since boot). host-setup
//! signals a process only after checking both.

use std::fs;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which process a `started` record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The host-setup process that stays behind a background container as init's
    /// parent, to collect its exit status (supervisor.rs).
    Supervisor,
    /// The container's PID 1.
    Init,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

/// Start time of `pid` (field 22 of /proc/PID/stat) and whether it is a zombie.
pub fn proc_stat(pid: i32) -> Option<(u64, bool)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ..." — comm may contain spaces and ')': split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z" || *state == "X"))
}

impl Proc {
    pub fn of(pid: i32) -> Result<Proc> {
        let (start, _) = proc_stat(pid).ok_or_else(|| crate::failed!("read /proc/{pid}/stat: the process is gone"))?;
        Ok(Proc { pid, start })
    }

    /// Still running (not a zombie) and still the same process.
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((start, false)) if start == self.start)
    }

    /// Exists, zombie or not, as the same process.
    pub fn exists(&self) -> bool {
        matches!(proc_stat(self.pid), Some((start, _)) if start == self.start)
    }

    /// Send a signal, only if the pid still names this process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys(format!("kill -{} {}", sig.as_str().trim_start_matches("SIG"), self.pid), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_of_self() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!Proc { pid: me.pid, start: me.start + 1 }.alive(), "another start time is another process");
    }
}
