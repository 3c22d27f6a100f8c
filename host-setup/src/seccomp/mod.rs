//! The container's seccomp filter: Docker's default profile (default.rs), none
//! (`--seccomp unconfined`, and with --privileged), or a profile file in the
//! Docker/OCI JSON format (docker.rs). host-setup compiles the chosen profile to a
//! BPF program (bpf.rs) for the host's architecture and hands it to init on a
//! sealed memfd (`init --seccomp-fd N`); init installs it after no_new_privs, as
//! the last step before the command (init/src/seccomp.rs). `exec` gets the same.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SysContext};

pub mod bpf;
mod default;
mod docker;
#[cfg(test)]
mod tests;

pub use default::{default_profile, DENIED};
pub use docker::parse_docker;

/// The user's choice, as recorded in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Seccomp {
    /// Docker's default profile, for Docker's default capabilities.
    #[default]
    Default,
    /// No filter (`--seccomp unconfined`; always with --privileged).
    Unconfined,
    /// A profile in the Docker/OCI JSON format: its path, and its text as read at
    /// `up` (so that `exec` gets the very filter the main process got, whatever
    /// happens to the file later).
    File { path: PathBuf, text: String },
}

impl Seccomp {
    /// `--seccomp VALUE`: `default`, `unconfined` or a profile file (read now,
    /// made absolute, and checked: a bad profile is refused before anything changes).
    pub fn from_arg(v: &str) -> Result<Seccomp> {
        Ok(match v {
            "default" => Seccomp::Default,
            "unconfined" => Seccomp::Unconfined,
            file => {
                let path = std::env::current_dir().sys(|| "getcwd".into())?.join(file);
                let text = std::fs::read_to_string(&path).sys(|| format!("read seccomp profile {}", path.display()))?;
                let s = Seccomp::File { path, text };
                s.profile()?;
                s
            }
        })
    }

    /// In words, for `status` and `--explain`.
    pub fn describe(&self) -> String {
        match self {
            Seccomp::Default => "default (Docker's default profile: EPERM for the rest, ENOSYS for clone3)".into(),
            Seccomp::Unconfined => "unconfined (no filter)".into(),
            Seccomp::File { path, .. } => format!("profile {}", path.display()),
        }
    }

    /// The profile to compile, or None for no filter.
    pub fn profile(&self) -> Result<Option<Profile>> {
        let arch = Arch::native();
        match self {
            Seccomp::Unconfined => Ok(None),
            Seccomp::Default => Ok(Some(default_profile(arch))),
            Seccomp::File { path, text } => {
                let profile = parse_docker(text, arch, &docker::Host::current())
                    .map_err(|e| crate::usage!("seccomp profile {}: {e}", path.display()))?;
                Ok(Some(profile))
            }
        }
    }

    /// The compiled program in a sealed memfd (None: unconfined).
    pub fn memfd(&self) -> Result<Option<OwnedFd>> {
        let Some(p) = self.profile()? else { return Ok(None) };
        let bytes = bpf::to_bytes(&bpf::compile(&p)?);
        crate::memfd::sealed_memfd(c"host-setup-seccomp", &bytes).map(Some)
    }
}

/// The architectures the filter can be built for (the host's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// AUDIT_ARCH_* (linux/audit.h): seccomp_data.arch.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => 0xc000_003e,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }

    /// Go's name (Docker profiles' `includes.arches`).
    pub fn go_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The system call's number on this architecture.
    pub fn nr(self, name: &str) -> Option<u32> {
        use std::str::FromStr;
        let n = match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok().map(|s| s.id()),
            // The kernel's newfstatat is `fstatat` in the syscalls crate's table.
            Arch::Aarch64 => syscalls::aarch64::Sysno::from_str(if name == "newfstatat" { "fstatat" } else { name })
                .ok()
                .map(|s| s.id()),
        };
        n.map(|n| n as u32)
    }

    /// Every system call name this architecture has (by number: the crate's
    /// `iter()` leaves out the last one).
    pub fn names(self) -> Vec<&'static str> {
        use syscalls::{aarch64, x86_64};
        match self {
            Arch::X86_64 => {
                let (a, b) = (x86_64::Sysno::first().id(), x86_64::Sysno::last().id());
                (a..=b).filter_map(|n| x86_64::Sysno::new(n as usize)).map(|s| s.name()).collect()
            }
            Arch::Aarch64 => {
                let (a, b) = (aarch64::Sysno::first().id(), aarch64::Sysno::last().id());
                (a..=b).filter_map(|n| aarch64::Sysno::new(n as usize)).map(|s| s.name()).collect()
            }
        }
    }
}

/// What a rule (or the default) does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Log,
    Trace(u16),
}

impl Action {
    /// SECCOMP_RET_* (linux/seccomp.h).
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(e) => 0x0005_0000 | e as u32,
            Action::Trace(d) => 0x7ff0_0000 | d as u32,
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }
}

/// libseccomp's comparisons (SCMP_CMP_*); MaskedEq(mask): (arg & mask) == value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq(u64),
}

/// A condition on argument `index` (0-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// When system call `nr` is made and every condition holds: `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub conds: Vec<Cond>,
    pub action: Action,
}

/// A filter before compilation: per call, the first rule that applies decides;
/// calls no rule applies to get `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub arch: Arch,
    pub default: Action,
    pub rules: Vec<Rule>,
}

impl Profile {
    /// Compile and run on one call (for the unit tests).
    #[cfg(test)]
    pub fn verdict(&self, name: &str, args: [u64; 6]) -> u32 {
        let prog = bpf::compile(self).expect("compiles");
        let nr = self.arch.nr(name).unwrap_or_else(|| panic!("{name}: no such system call"));
        bpf::run(&prog, &bpf::Data { nr, arch: self.arch.audit(), args })
    }
}
