//! The host-setup -> init contract: init's command line, built from the flag names
//! init's own library defines (`init::flag`, the ones its parser matches on),
//! the environment everything in a container gets, and init's answer on the ready
//! pipe. A unit test parses what host-setup builds with init's own parser.

use std::os::fd::RawFd;
use std::path::PathBuf;

use init::flag;

use crate::error::{Error, Result};
use crate::seccomp::Seccomp;
use crate::spec::Pid1;
use crate::userns::IdMaps;

/// The PATH of everything that runs in a container (and where `exec` looks).
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The fd on which init reports readiness (`init --ready-fd 3`).
pub const READY_FD: RawFd = 3;

/// The fd on which init reads the seccomp filter (`init --seccomp-fd 5`; fd 4
/// holds init's own image between clone and exec).
pub const SECCOMP_FD: RawFd = READY_FD + 2;

/// Everything init needs to know to set up and start a container: the launch
/// step's one description, run (spawn.rs) and rendered (`shell`) from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitArgs {
    pub init_bin: PathBuf,
    /// An empty dir of the container's: the lower layer under init's dir in the
    /// read-only overlay init is exec'd from (init_image.rs).
    pub image_empty: PathBuf,
    pub cgroup_dirs: Vec<PathBuf>,
    /// cgroup v2: init is cloned straight into its one cgroup (clone3 with
    /// CLONE_INTO_CGROUP, spawn.rs), so it gets no `--cgroup` to join: no
    /// migration. spawn.rs clears it on a kernel without CLONE_INTO_CGROUP.
    pub born_in_cgroup: bool,
    pub netns: PathBuf,
    pub rootfs: PathBuf,
    /// Overlay lower dirs, topmost first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub hostname: String,
    /// The main process; empty: `--pause`.
    pub command: Vec<String>,
    pub pid1: Pid1,
    /// Contain the container (init --cgroupns --dev --mask-proc --restrict); false
    /// with --privileged.
    pub contain: bool,
    /// The seccomp filter (only when contained; spawn.rs compiles it).
    pub seccomp: Seccomp,
    /// --userns: init's user namespace and where init attaches the idmapped layers.
    pub userns: Option<Userns>,
    /// A container described in full (an OCI bundle): its own argv, clone flags,
    /// environment and the records on --spec-fd (contract_spec.rs).
    pub explicit: Option<crate::contract_spec::ExplicitLaunch>,
    /// The run options of one of host-setup's own containers (contract_run.rs):
    /// its environment and the records on --spec-fd.
    pub run: Option<Box<crate::contract_run::RunLaunch>>,
}

/// What `--userns` adds to the launch (src/userns/).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userns {
    pub ids: IdMaps,
    /// One empty dir per lower dir, in order: init's --lower.
    pub mount_points: Vec<PathBuf>,
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn opt_spec(a: &mut Vec<String>, fd: RawFd) {
    a.extend([flag::SPEC_FD.to_string(), fd.to_string()]);
}

impl InitArgs {
    /// init's argv (argv[0] is the binary's path, for ps).
    pub fn argv(&self) -> Vec<String> {
        if let Some(x) = &self.explicit {
            return crate::contract_spec::argv(self, x);
        }
        let mut a = vec![s(&self.init_bin)];
        let mut opt = |name: &str, value: String| a.extend([name.to_string(), value]);
        // With --userns the host joins init to its cgroups and netns (spawn.rs):
        // init, root of its own user namespace only, may not.
        let host_joins = self.userns.is_some();
        for d in self.cgroup_dirs.iter().filter(|_| !self.born_in_cgroup && !host_joins) {
            opt(flag::CGROUP, s(d));
        }
        if !host_joins {
            opt(flag::NETNS, s(&self.netns));
        }
        let lower = match &self.userns {
            Some(u) => &u.mount_points,
            None => &self.lower,
        };
        opt(flag::LOWER, lower.iter().map(|p| s(p)).collect::<Vec<_>>().join(":"));
        opt(flag::UPPER, s(&self.upper));
        opt(flag::WORK, s(&self.work));
        opt(flag::ROOTFS, s(&self.rootfs));
        opt(flag::HOSTNAME, self.hostname.clone());
        opt(flag::READY_FD, READY_FD.to_string());
        if self.filtered() {
            opt(flag::SECCOMP_FD, SECCOMP_FD.to_string());
        }
        if self.userns.is_some() {
            a.push(flag::USERNS.into());
        }
        if let Some(r) = self.run.as_ref().filter(|r| !r.records.is_empty()) {
            opt_spec(&mut a, r.spec_fd);
        }
        if self.contain {
            a.extend([flag::CGROUPNS, flag::DEV, flag::MASK_PROC, flag::RESTRICT].map(String::from));
        }
        self.command_tail(&mut a, false);
        a
    }

    /// The end of init's argv, in [`InitArgs::argv`] and in `--explain`'s script
    /// (contract_shell.rs): `--pause` without a command, otherwise the PID 1 mode
    /// (`--pgroup`, `--exec` or nothing), `--` and the command, each word
    /// shell-quoted with `quote`.
    pub(crate) fn command_tail(&self, a: &mut Vec<String>, quote: bool) {
        if self.command.is_empty() {
            a.push(flag::PAUSE.into());
            return;
        }
        match self.pid1 {
            Pid1::Supervise => {}
            Pid1::SuperviseGroup => a.push(flag::PGROUP.into()),
            Pid1::Exec => a.push(flag::EXEC.into()),
        }
        a.push(flag::END.into());
        match quote {
            true => a.extend(self.command.iter().map(|w| crate::net::sh(w).into_owned())),
            false => a.extend(self.command.iter().cloned()),
        }
    }

    /// Whether init gets a seccomp filter.
    pub fn filtered(&self) -> bool {
        (self.contain || self.explicit.is_some()) && self.seccomp != Seccomp::Unconfined
    }
}

/// argv of `host-setup exec` in a contained container: init applies the main
/// process's restrictions to itself (with `seccomp`, the filter on SECCOMP_FD),
/// then execs CMD (searching $PATH).
pub fn exec_argv(cmd: &[String], seccomp: bool) -> Vec<String> {
    let mut a: Vec<String> = ["init", flag::RESTRICT, flag::EXEC].map(String::from).to_vec();
    if seccomp {
        a.extend([flag::SECCOMP_FD.to_string(), SECCOMP_FD.to_string()]);
    }
    a.push(flag::END.into());
    a.extend(cmd.iter().cloned());
    a
}

/// The environment of everything that runs in a container: nothing of the host's
/// but the terminal type (and RUST_LOG, so `RUST_LOG=debug` traces init too).
pub fn container_env() -> Vec<String> {
    let mut env = vec![format!("PATH={CONTAINER_PATH}"), "HOME=/".to_string()];
    env.push(format!("TERM={}", std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
    if let Ok(l) = std::env::var("RUST_LOG") {
        env.push(format!("RUST_LOG={l}"));
    }
    env
}

/// An error as one line of the ready protocol (init/src/ready.rs):
/// `error\t<errno>\t<what>\t<hint>` (errno 0: none; hint may be empty). init
/// writes its errors so; host-setup's own child (when it cannot exec init) and the
/// supervisor (reporting to the `up` that forked it) write theirs the same way,
/// so that an error keeps its errno from wherever it comes.
pub fn error_line(e: &Error) -> String {
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    match e {
        Error::Sys { what, errno, hint } => {
            format!("error\t{}\t{}\t{}\n", *errno as i32, clean(what), clean(hint.as_deref().unwrap_or("")))
        }
        other => format!("error\t0\t{}\t\n", clean(&other.to_string())),
    }
}

/// init's report on the ready pipe, read until EOF: `ok` (the main process runs),
/// or an error line (`error_line`), which becomes the error host-setup would have
/// made itself, printed the same way: `step: path: ERRNO: text; hint`.
pub fn parse_ready(text: &str) -> Result<()> {
    if let Some(fields) = text.lines().find_map(|l| l.strip_prefix("error\t")) {
        let mut f = fields.splitn(3, '\t');
        let (errno, what, hint) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let e = match errno.parse::<i32>().unwrap_or(0) {
            0 => Error::Failed(what.to_string()),
            n => Error::sys(what, nix::errno::Errno::from_raw(n)),
        };
        return Err(if hint.is_empty() { e } else { e.hint(hint) });
    }
    if text.lines().any(|l| l == "ok") {
        return Ok(());
    }
    Err(crate::failed!("init exited before it was ready"))
}

/// A failed ready report, given init's exit code: a command that could not be
/// started (126/127) is reported as the shell would; anything else stays a
/// setup failure.
pub fn not_ready(e: Error, code: i32, shown: bool) -> Error {
    match code {
        126 | 127 => Error::Command { code, msg: e.to_string(), shown },
        _ => e,
    }
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
