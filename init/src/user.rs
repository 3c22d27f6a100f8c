//! The spec's process phase, right before the wait for `start`: RLIMIT,
//! OOM_SCORE_ADJ, USER, CAPS, NO_NEW_PRIVS, CWD (runc's finalizeNamespace).
//!
//! The kernel's order:
//! 1. rlimits and oom_score_adj first: raising a hard limit or lowering the
//!    score needs CAP_SYS_RESOURCE, which CAPS may drop;
//! 2. the bounding set before setuid: PR_CAPBSET_DROP needs CAP_SETPCAP in the
//!    *effective* set, which a setuid from 0 to another uid empties;
//! 3. setgroups, setgid, setuid (they need CAP_SETGID, CAP_SETUID) with
//!    PR_SET_KEEPCAPS: without it, leaving uid 0 also empties the permitted
//!    set, and step 4 could not give anything back;
//! 4. capset, then the ambient set (what a non-root process keeps across execve);
//! 5. no_new_privs last: nothing after it needs to gain a privilege.
//!
//! CWD is tried before step 3 (as root, who may enter a directory the user
//! cannot; runc does the same) and, if that failed, again after step 5.

use crate::caps::{self, Sets};
use crate::msg::{self, fmt_i64, fmt_u64, Error};
use crate::specrun::{cstr, write_file, Item, Spec, User, PATH_MAX};
use crate::sys::spec::{setgid, setgroups, setrlimit, setuid, PR_SET_KEEPCAPS};
use crate::sys::{self, Errno};

/// The kernel's rlimit names, by number (asm-generic/resource.h).
const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

fn rlimit_name(r: u32) -> &'static [u8] {
    RLIMITS.get(r as usize).map_or(b"an unknown resource", |n| n.as_bytes())
}

/// The capability sets to apply: the CAPS record's, else `--restrict`'s.
pub fn wanted(spec: &Spec, restrict: bool) -> Result<Option<Sets>, Error<'static>> {
    let record = spec.items().find_map(|i| if let Item::Caps(s) = i { Some(s) } else { None });
    Ok(match record {
        Some(s) => Some(s),
        None if restrict => Some(Sets::restricted(caps::now()?, caps::DEFAULT_MASK)),
        None => None,
    })
}

/// Steps 1-5 and CWD (see the header); `restrict`: --restrict was given
/// (its sets when there is no CAPS record, and no_new_privs).
pub fn process(spec: &Spec, restrict: bool) -> Result<(), Error<'static>> {
    for item in spec.items() {
        match item {
            Item::Rlimit { resource, soft, hard } => {
                msg::debug(&[b"prlimit ", rlimit_name(resource)]);
                setrlimit(resource, soft, hard)
                    .map_err(|e| Error::new(e, &[b"prlimit64(", rlimit_name(resource), b")"]))?;
            }
            Item::OomScoreAdj(v) => {
                let mut n = [0u8; 20];
                let text = fmt_i64(v, &mut n);
                msg::debug(&[b"oom_score_adj ", text]);
                write_file(c"/proc/self/oom_score_adj", text)
                    .map_err(|e| Error::new(e, &[b"write(/proc/self/oom_score_adj)"]))?;
            }
            _ => {}
        }
    }
    let cwd = spec.items().find_map(|i| if let Item::Cwd(p) = i { Some(p) } else { None });
    let mut buf = [0u8; PATH_MAX];
    let cwd = cwd.map(|p| (p, cstr(p, &mut buf)));
    let early = cwd.map(|(_, c)| sys::chdir(c));

    let sets = wanted(spec, restrict)?;
    if let Some(s) = &sets {
        caps::drop_bounding(s.bounding)?;
    }
    if let Some(u) = spec.items().find_map(|i| if let Item::User(u) = i { Some(u) } else { None }) {
        user(&u, sets.is_some())?;
    }
    if let Some(s) = &sets {
        caps::set(s)?;
    }
    if restrict || spec.has(crate::spec::NO_NEW_PRIVS) {
        caps::no_new_privs()?;
    }
    if let (Some((p, c)), Some(Err(_))) = (cwd, early) {
        sys::chdir(c).map_err(|e| Error::new(e, &[b"chdir(", p, b")"]).hint("the spec's cwd"))?;
    }
    Ok(())
}

/// Step 3: the user's ids, groups and umask; `keep_caps`: CAPS follows.
fn user(u: &User, keep_caps: bool) -> Result<(), Error<'static>> {
    let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
    msg::debug(&[b"user ", fmt_u64(u.uid as u64, &mut a), b":", fmt_u64(u.gid as u64, &mut b)]);
    if keep_caps {
        sys::prctl(PR_SET_KEEPCAPS, 1).map_err(|e| Error::new(e, &[b"prctl(PR_SET_KEEPCAPS, 1)"]))?;
    }
    match setgroups(&u.gids[..u.ngids]) {
        // A user namespace whose /proc/PID/setgroups is "deny" (rootless): no
        // groups to set is then no error.
        Err(Errno::EPERM) if u.ngids == 0 => Ok(()),
        r => r.map_err(|e| Error::new(e, &[b"setgroups(the additional gids)"])),
    }?;
    setgid(u.gid).map_err(|e| {
        Error::new(e, &[b"setresgid(the spec's gid)"]).hint("the gid must be mapped in the user namespace")
    })?;
    setuid(u.uid).map_err(|e| {
        Error::new(e, &[b"setresuid(the spec's uid)"]).hint("the uid must be mapped in the user namespace")
    })?;
    if keep_caps {
        sys::prctl(PR_SET_KEEPCAPS, 0).map_err(|e| Error::new(e, &[b"prctl(PR_SET_KEEPCAPS, 0)"]))?;
    }
    sys::umask(u.umask as usize);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_name(7), b"RLIMIT_NOFILE");
        assert_eq!(rlimit_name(15), b"RLIMIT_RTTIME");
        assert_eq!(rlimit_name(16), b"an unknown resource");
    }
}
