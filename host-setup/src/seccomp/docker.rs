//! Profiles in the Docker/OCI JSON format (moby's profiles/seccomp/default.json,
//! or a user's): `defaultAction` (+ `defaultErrnoRet`), `syscalls[]` with
//! `names`, `action` (+ `errnoRet`), `args[]` (`index`, `value`, `valueTwo`,
//! `op`), and Docker's `includes`/`excludes` (`caps`, `arches`, `minKernel`),
//! which are decided here for the container's capabilities, the host's
//! architecture and kernel. `architectures`/`archMap` are read but not needed:
//! the filter is for the host's own ABI, and every other ABI is refused.
//! Names the architecture does not have (32-bit ones in Docker's list) are
//! skipped, as libseccomp does.

use serde::Deserialize;

use super::{Action, Arch, Cond, Op, Profile, Rule};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    default_action: String,
    default_errno_ret: Option<u16>,
    #[serde(default)]
    syscalls: Vec<Syscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    names: Vec<String>,
    /// The older single-name form.
    name: Option<String>,
    action: String,
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// What `includes`/`excludes` are decided against.
pub struct Host {
    /// The container's capabilities, `CAP_CHOWN` style.
    pub caps: Vec<String>,
    /// The kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Host {
    /// Docker's default capabilities (init --restrict's) and the running kernel.
    pub fn current() -> Host {
        let caps = init::caps::DEFAULT.iter().map(|&c| init::caps::NAMES[c as usize].to_uppercase()).collect();
        let release =
            nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Host { caps, kernel: parse_version(&release).unwrap_or((0, 0)) }
    }
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn action(name: &str, errno: Option<u16>, default_errno: u16) -> Result<Action, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(default_errno)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(default_errno)),
        other => return Err(format!("action {other} is not supported")),
    })
}

fn op(a: &Arg) -> Result<Cond, String> {
    if a.index > 5 {
        return Err(format!("argument index {} (0-5)", a.index));
    }
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_NE" => (Op::Ne, a.value),
        "SCMP_CMP_LT" => (Op::Lt, a.value),
        "SCMP_CMP_LE" => (Op::Le, a.value),
        "SCMP_CMP_EQ" => (Op::Eq, a.value),
        "SCMP_CMP_GE" => (Op::Ge, a.value),
        "SCMP_CMP_GT" => (Op::Gt, a.value),
        // libseccomp: (arg & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq(a.value), a.value_two),
        other => return Err(format!("comparison {other} is not supported")),
    };
    Ok(Cond { index: a.index, op, value })
}

/// Whether an entry applies here (Docker's rule: every `includes` condition
/// holds and no `excludes` one does).
fn applies(inc: &Option<Filter>, exc: &Option<Filter>, arch: Arch, host: &Host) -> bool {
    let has_cap = |c: &String| host.caps.iter().any(|h| h.eq_ignore_ascii_case(c));
    let kernel_at_least = |v: &String| parse_version(v).is_some_and(|v| host.kernel >= v);
    if let Some(i) = inc {
        if i.caps.as_ref().is_some_and(|c| !c.iter().all(has_cap))
            || i.arches.as_ref().is_some_and(|a| !a.iter().any(|a| a == arch.go_name()))
            || i.min_kernel.as_ref().is_some_and(|v| !kernel_at_least(v))
        {
            return false;
        }
    }
    if let Some(e) = exc {
        if e.caps.as_ref().is_some_and(|c| c.iter().any(has_cap))
            || e.arches.as_ref().is_some_and(|a| a.iter().any(|a| a == arch.go_name()))
            || e.min_kernel.as_ref().is_some_and(kernel_at_least)
        {
            return false;
        }
    }
    true
}

/// Parses a profile for `arch`; the error says what is wrong, in words.
pub fn parse_docker(text: &str, arch: Arch, host: &Host) -> Result<Profile, String> {
    let f: File = serde_json::from_str(text).map_err(|e| format!("not a Docker/OCI seccomp profile: {e}"))?;
    // A rule's SCMP_ACT_ERRNO without errnoRet is EPERM (runc), not defaultErrnoRet.
    let eperm = libc::EPERM as u16;
    let default = action(&f.default_action, f.default_errno_ret, eperm)?;
    let mut rules = Vec::new();
    for s in &f.syscalls {
        if !applies(&s.includes, &s.excludes, arch, host) {
            continue;
        }
        let act = action(&s.action, s.errno_ret, eperm)?;
        let conds = s.args.iter().flatten().map(op).collect::<Result<Vec<_>, _>>()?;
        for name in s.names.iter().chain(s.name.iter()) {
            match arch.nr(name) {
                Some(nr) => rules.push(Rule { nr, conds: conds.clone(), action: act }),
                None => log::debug!("seccomp profile: {name}: no such system call on {}", arch.go_name()),
            }
        }
    }
    Ok(Profile { arch, default, rules })
}
