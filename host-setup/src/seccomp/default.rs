//! Docker's default seccomp profile, for Docker's default capabilities (the ones
//! init --restrict keeps), in effect: every system call of the architecture is
//! allowed except those below, which fail with EPERM; `clone3` fails with ENOSYS
//! (so that libc falls back to `clone`, whose flags a filter can see); `clone`
//! with any namespace flag, `socket` for AF_ALG (38) and AF_VSOCK (40) and
//! `personality` beyond Docker's harmless values fail with EPERM.
//!
//! Docker's profile is an allow list; this is the same set written as its
//! complement over the architecture's table (the `syscalls` crate's), checked by
//! the tests against the number of calls allowed, so that a new crate version
//! with new system calls shows up as a failing test, not as a wider filter.

use super::{Action, Arch, Cond, Op, Profile, Rule};

/// Refused outright, by what they reach. Docker allows some of them only with a
/// capability the container does not keep (named), or never.
#[rustfmt::skip]
pub const DENIED: &[&str] = &[
    // the kernel keyring (not namespaced)
    "add_key", "keyctl", "request_key",
    // kernel modules, kexec (CAP_SYS_MODULE, CAP_SYS_BOOT)
    "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
    "kexec_load", "kexec_file_load", "reboot",
    // eBPF, tracing, fanotify (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)
    "bpf", "perf_event_open", "uprobe", "lookup_dcookie", "fanotify_init",
    // io_uring and userfaultfd: large attack surfaces, a history of exploits
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
    // mounts and namespaces (CAP_SYS_ADMIN)
    "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "open_tree_attr", "fsopen", "fsconfig",
    "fsmount", "fspick", "pivot_root", "unshare", "setns", "sethostname", "setdomainname",
    // file handles bypass the mount's view (CAP_DAC_READ_SEARCH)
    "open_by_handle_at",
    // the host's clock, swap, quotas, accounting, kernel log, terminal (CAP_SYS_TIME and others)
    "clock_settime", "clock_settime64", "settimeofday", "swapon", "swapoff", "quotactl", "quotactl_fd", "acct",
    "syslog", "vhangup", "_sysctl", "sysfs", "ustat", "uselib", "nfsservctl",
    // NUMA placement (CAP_SYS_NICE)
    "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "migrate_pages", "move_pages",
    // other processes' memory and files (CAP_SYS_PTRACE)
    "kcmp", "pidfd_getfd", "process_madvise",
    // raw I/O ports (CAP_SYS_RAWIO)
    "ioperm", "iopl",
    // LSM attributes, file attributes by handle: newer than Docker's list
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "file_getattr", "file_setattr",
    // never implemented
    "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver",
];

/// Decided by their arguments (see `default_profile`).
pub const CONDITIONAL: &[&str] = &["clone", "clone3", "socket", "personality"];

/// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (0x7e020000):
/// `clone` with any of them is refused without CAP_SYS_ADMIN.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query).
pub const PERSONALITIES: [u64; 5] = [0, 8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_ALG and AF_VSOCK: `socket` for them is refused.
pub const AF_ALG: u64 = 38;
pub const AF_VSOCK: u64 = 40;

pub fn default_profile(arch: Arch) -> Profile {
    let eperm = Action::Errno(libc::EPERM as u16);
    let mut rules = Vec::new();
    let mut rule = |name: &str, conds: Vec<Cond>, action: Action| {
        if let Some(nr) = arch.nr(name) {
            rules.push(Rule { nr, conds, action });
        }
    };
    for name in arch.names() {
        if !DENIED.contains(&name) && !CONDITIONAL.contains(&name) {
            rule(name, vec![], Action::Allow);
        }
    }
    let arg0 = |op, value| vec![Cond { index: 0, op, value }];
    rule("clone", arg0(Op::MaskedEq(CLONE_NAMESPACE_FLAGS), 0), Action::Allow);
    rule("clone3", vec![], Action::Errno(libc::ENOSYS as u16));
    rule("socket", arg0(Op::Lt, AF_ALG), Action::Allow);
    rule("socket", arg0(Op::Eq, AF_ALG + 1), Action::Allow);
    rule("socket", arg0(Op::Gt, AF_VSOCK), Action::Allow);
    for v in PERSONALITIES {
        rule("personality", arg0(Op::Eq, v), Action::Allow);
    }
    Profile { arch, default: eperm, rules }
}
