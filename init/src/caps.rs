//! `--restrict`: the capabilities and privileges CMD runs with (model: runc's
//! defaults through Docker, libcontainer/capabilities and standard_init_linux.go).
//!
//! After setup, init reduces every capability set to [`DEFAULT`] (Docker's default
//! list), sets no_new_privs and, as the supervising PID 1, makes itself
//! non-dumpable; CMD is forked from that state, so it starts with exactly these
//! limits, and so does init itself (it only forwards signals, reaps and exits).
//!
//! Why the bounding set matters most: for uid 0 the kernel treats every file as
//! carrying all file capabilities, so the permitted set root gets at execve is
//! `inheritable | bounding`. A capset() alone is undone by the next exec; the
//! bounding set is what no exec can widen again, and no_new_privs keeps an exec
//! (a setuid binary, file capabilities) from gaining anything beyond what the
//! process has.

use crate::msg::{self, Error};
use crate::sys::{
    self, CapSets, Errno, PR_CAPBSET_DROP, PR_CAPBSET_READ, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_SET_DUMPABLE,
    PR_SET_NO_NEW_PRIVS,
};

/// The kernel's capability names, by number (linux/capability.h, up to Linux 6.x).
pub const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_CHROOT: u32 = 18;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_AUDIT_WRITE: u32 = 29;
pub const CAP_SETFCAP: u32 = 31;

/// The capabilities CMD keeps with `--restrict`: Docker's default set (moby
/// oci/caps/defaults.go), mask 0xa80425fb, which is what `CapBnd` shows in Docker.
/// What the tutorial's programs need of it: ping a raw ICMP socket (NET_RAW);
/// package managers and daemons chown, setuid/setgid, bind low ports; PID 1
/// forwards signals to processes of any uid (KILL) and the bounding-set drop
/// itself needs SETPCAP. Everything else is gone, among it SYS_ADMIN (mount,
/// sethostname, unshare, setns), NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_RAWIO,
/// SYS_TIME, SYS_BOOT, DAC_READ_SEARCH (open_by_handle_at, the "shocker" escape).
pub const DEFAULT: &[u32] = &[
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_FSETID,
    CAP_FOWNER,
    CAP_MKNOD,
    CAP_NET_RAW,
    CAP_SETGID,
    CAP_SETUID,
    CAP_SETFCAP,
    CAP_SETPCAP,
    CAP_NET_BIND_SERVICE,
    CAP_SYS_CHROOT,
    CAP_KILL,
    CAP_AUDIT_WRITE,
];

/// A list of capability numbers as a 64-bit set (bit n = capability n).
pub const fn mask(caps: &[u32]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < caps.len() {
        m |= 1 << caps[i];
        i += 1;
    }
    m
}

pub const DEFAULT_MASK: u64 = mask(DEFAULT);

/// The name of capability `cap` for messages.
pub fn name(cap: u32) -> &'static [u8] {
    NAMES.get(cap as usize).map_or(b"a capability newer than this init", |n| n.as_bytes())
}

/// The sets to capset: permitted reduced to `keep` (never raised: capset cannot
/// add to it, and must not), effective all of that, inheritable empty. Docker
/// and runc leave inheritable empty since CVE-2022-24769: a non-empty one let a
/// non-root user in the container gain those capabilities by executing a file
/// with inheritable file capabilities. Root's CMD loses nothing by it: at execve
/// root gets `inheritable | bounding`, and the bounding set is `keep`.
pub fn reduced(now: CapSets, keep: u64) -> CapSets {
    let p = now.permitted & keep;
    CapSets { effective: p, permitted: p, inheritable: 0 }
}

/// The five capability sets a spec's CAPS record asks for (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl Sets {
    /// `--restrict`'s sets: `keep` as the bounding set, effective and
    /// permitted `now`'s permitted within it (see [`reduced`]), the rest empty.
    pub fn restricted(now: CapSets, keep: u64) -> Sets {
        let r = reduced(now, keep);
        Sets { bounding: keep, effective: r.effective, permitted: r.permitted, inheritable: 0, ambient: 0 }
    }
}

/// Drops every capability outside `keep` from the bounding set, up to the
/// kernel's last capability (found by probing: PR_CAPBSET_READ says EINVAL past
/// it, so no /proc is needed, which matters for `--exec` after a chroot).
/// Capabilities already out of the set are left alone. Returns the last cap.
pub fn drop_bounding(keep: u64) -> Result<u32, Error<'static>> {
    let mut cap = 0;
    while cap < 64 {
        match sys::prctl3(PR_CAPBSET_READ, cap as usize, 0) {
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(Error::new(e, &[b"prctl(PR_CAPBSET_READ, ", name(cap), b")"])),
            Ok(1) if keep & (1 << cap) == 0 => {
                sys::prctl3(PR_CAPBSET_DROP, cap as usize, 0).map_err(|e| {
                    let err = Error::new(e, &[b"prctl(PR_CAPBSET_DROP, ", name(cap), b")"]);
                    match e {
                        Errno::EPERM => err.hint("needs cap_setpcap"),
                        _ => err,
                    }
                })?;
            }
            Ok(_) => {}
        }
        cap += 1;
    }
    Ok(cap.saturating_sub(1))
}

/// Reduces this process to `keep` and sets no_new_privs. Steps 1 and 2 are in
/// the only order the kernel allows:
/// 1. the bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP in the
///    *effective* set, and the capset of step 2 removes it from there whenever
///    `keep` lacks it (Docker's set has it; a smaller custom set may not);
/// 2. capset(effective, permitted, inheritable), see [`reduced`]: after it the
///    process cannot take any capability back (permitted only ever shrinks);
/// 3. clear the ambient set (the kernel already trims it to permitted &
///    inheritable, but an explicit clear does not depend on that rule);
/// 4. no_new_privs, inherited by every child and kept across execve: a setuid
///    binary or file capabilities can no longer add privileges. That matters
///    once a process of CMD runs as another uid; for root, execve already
///    yields at most `inheritable | bounding`, i.e. `keep` after steps 1-2.
pub fn restrict(keep: u64) -> Result<(), Error<'static>> {
    let last = drop_bounding(keep)?;
    if msg::debug_enabled() {
        msg::debug(&[b"bounding set reduced up to ", name(last), b" (the kernel's last capability)"]);
    }
    set(&Sets::restricted(now()?, keep))?;
    no_new_privs()
}

/// capget of this process.
pub fn now() -> Result<CapSets, Error<'static>> {
    sys::capget().map_err(|e| Error::new(e, &[b"capget()"]))
}

/// Steps 2 and 3 of [`restrict`] for any sets: capset(effective, permitted,
/// inheritable), then the ambient set cleared and each of `s.ambient` raised
/// (the kernel allows only capabilities both permitted and inheritable; it
/// keeps the ambient set across execve, which is how a non-root process keeps
/// capabilities: a file without file capabilities gets permitted = ambient).
pub fn set(s: &Sets) -> Result<(), Error<'static>> {
    let c = CapSets { effective: s.effective, permitted: s.permitted, inheritable: s.inheritable };
    sys::capset(c).map_err(|e| {
        let err = Error::new(e, &[b"capset(effective, permitted, inheritable)"]);
        match e {
            Errno::EPERM => err.hint("a set beyond the permitted one, or inheritable beyond bounding"),
            _ => err,
        }
    })?;
    msg::debug(&[b"capset: effective, permitted, inheritable set"]);
    sys::prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0)
        .map_err(|e| Error::new(e, &[b"prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)"]))?;
    for cap in (0..64).filter(|c| s.ambient & (1 << c) != 0) {
        sys::prctl3(PR_CAP_AMBIENT, sys::spec::PR_CAP_AMBIENT_RAISE, cap as usize).map_err(|e| {
            Error::new(e, &[b"prctl(PR_CAP_AMBIENT_RAISE, ", name(cap), b")"])
                .hint("an ambient capability must be permitted and inheritable")
        })?;
    }
    msg::debug(&[b"ambient set"]);
    Ok(())
}

/// no_new_privs (step 4 of [`restrict`]).
pub fn no_new_privs() -> Result<(), Error<'static>> {
    sys::prctl(PR_SET_NO_NEW_PRIVS, 1).map_err(|e| Error::new(e, &[b"prctl(PR_SET_NO_NEW_PRIVS, 1)"]))?;
    msg::debug(&[b"no_new_privs set"]);
    Ok(())
}

/// PID 1 makes itself non-dumpable, as runc's init does. For a non-dumpable
/// process the kernel requires CAP_SYS_PTRACE (which CMD lacks) on top of the
/// usual same-uid rule before another process may ptrace it or follow its
/// /proc/1/fd/*, /proc/1/exe, /proc/1/root, /proc/1/cwd links or read
/// /proc/1/mem and /proc/1/environ (listing /proc/1/fd still works: it only
/// shows numbers).
/// Without it, once init holds the same capabilities as CMD (the cap-subset
/// rule of ptrace no longer protects it), root in the container could reach
/// whatever init holds open or was started from (its binary, the host's fds).
/// The flag is inherited by fork but reset by execve for a process whose
/// uids match, so CMD is dumpable again once it runs.
pub fn non_dumpable() -> Result<(), Error<'static>> {
    msg::debug(&[b"prctl(PR_SET_DUMPABLE, 0)"]);
    sys::prctl(PR_SET_DUMPABLE, 0).map_err(|e| Error::new(e, &[b"prctl(PR_SET_DUMPABLE, 0)"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_dockers() {
        assert_eq!(DEFAULT_MASK, 0xa804_25fb);
        let names: Vec<&str> = DEFAULT.iter().map(|&c| NAMES[c as usize]).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "cap_audit_write",
                "cap_chown",
                "cap_dac_override",
                "cap_fowner",
                "cap_fsetid",
                "cap_kill",
                "cap_mknod",
                "cap_net_bind_service",
                "cap_net_raw",
                "cap_setfcap",
                "cap_setgid",
                "cap_setpcap",
                "cap_setuid",
                "cap_sys_chroot",
            ]
        );
        // Not one of these.
        for bad in ["cap_sys_admin", "cap_net_admin", "cap_sys_ptrace", "cap_sys_module", "cap_dac_read_search"] {
            let n = NAMES.iter().position(|&x| x == bad).unwrap();
            assert_eq!(DEFAULT_MASK & (1 << n), 0, "{bad}");
        }
    }

    #[test]
    fn names_match_numbers() {
        assert_eq!(NAMES[CAP_NET_RAW as usize], "cap_net_raw");
        assert_eq!(NAMES[CAP_SETFCAP as usize], "cap_setfcap");
        assert_eq!(NAMES[21], "cap_sys_admin");
        assert_eq!(NAMES[40], "cap_checkpoint_restore");
        assert_eq!(name(40), b"cap_checkpoint_restore");
        assert_eq!(name(41), b"a capability newer than this init");
    }

    #[test]
    fn masks() {
        assert_eq!(mask(&[]), 0);
        assert_eq!(mask(&[0, 1, 40]), 0x100_0000_0003);
        assert_eq!(mask(&[63]), 1 << 63);
    }

    #[test]
    fn reduced_sets_never_raise() {
        let all = (1u64 << 41) - 1;
        let full = CapSets { effective: all, permitted: all, inheritable: 0 };
        let r = reduced(full, DEFAULT_MASK);
        assert_eq!(r, CapSets { effective: DEFAULT_MASK, permitted: DEFAULT_MASK, inheritable: 0 });
        // Fewer capabilities than the default to start with: nothing is added.
        let few = CapSets { effective: 0, permitted: 1 | 1 << 21, inheritable: all };
        assert_eq!(reduced(few, DEFAULT_MASK), CapSets { effective: 1, permitted: 1, inheritable: 0 });
        let none = CapSets { effective: 0, permitted: 0, inheritable: 0 };
        assert_eq!(reduced(none, DEFAULT_MASK), none);
    }
}
