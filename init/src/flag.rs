//! The host-setup -> init contract: the long options, each named once.
//!
//! init's parser (src/args.rs) matches on these constants, and host-setup builds
//! init's command line from them, so the two sides cannot spell a flag
//! differently. What each one does: `init --help` (src/help.rs).

/// `--cgroup DIR`: join DIR (repeatable).
pub const CGROUP: &str = "--cgroup";
/// `--netns FILE`: join the network namespace bound at FILE.
pub const NETNS: &str = "--netns";
/// `--rootfs DIR`: the new root (an overlay of --lower mounted on it, or a bind).
pub const ROOTFS: &str = "--rootfs";
/// `--lower DIRS`: overlay lower dirs, colon-separated, topmost first.
pub const LOWER: &str = "--lower";
/// `--upper DIR`: overlay upper dir.
pub const UPPER: &str = "--upper";
/// `--work DIR`: overlay work dir.
pub const WORK: &str = "--work";
/// `--hostname NAME`.
pub const HOSTNAME: &str = "--hostname";
/// `--ready-fd N`: the ready protocol (src/ready.rs) on fd N.
pub const READY_FD: &str = "--ready-fd";
/// `--seccomp-fd N`: read a seccomp BPF program (struct sock_filter[]) from fd N
/// and install it as the last step before CMD starts (src/seccomp.rs).
pub const SECCOMP_FD: &str = "--seccomp-fd";
/// `--pause`: no CMD, stay PID 1 (also `-P`, catatonit's).
pub const PAUSE: &str = "--pause";
/// `--pgroup`: signals go to CMD's process group (also `-g`, tini's).
pub const PGROUP: &str = "--pgroup";
/// `--exec`: exec CMD in init's place after setup.
pub const EXEC: &str = "--exec";
/// `--cgroupns`: a new cgroup namespace after joining the cgroups.
pub const CGROUPNS: &str = "--cgroupns";
/// `--dev`: a minimal /dev in the new root.
pub const DEV: &str = "--dev";
/// `--mask-proc`: runc's masked and read-only /proc paths.
pub const MASK_PROC: &str = "--mask-proc";
/// `--restrict`: Docker's default capabilities, no_new_privs.
pub const RESTRICT: &str = "--restrict";
/// `--userns`: init runs in a user namespace host-setup made (its uid and gid
/// maps written, init's ids already the namespace's root): each --lower dir is
/// an empty mount point for a detached, idmapped layer mount on fds LOWER_FD,
/// LOWER_FD+1, ... in order (src/userns.rs); the overlay keeps its xattrs in
/// user.overlay.* (`userxattr`); --dev bind-mounts the host's device nodes,
/// since a user namespace may not mknod.
pub const USERNS: &str = "--userns";
/// The fd of the first --lower dir's layer mount with --userns.
pub const LOWER_FD: i32 = 6;
/// `--spec-fd N`: read the in-container part of the spec (mounts, user, caps,
/// rlimits, the wait for `start`, ...) as records from fd N (src/spec.rs).
pub const SPEC_FD: &str = "--spec-fd";
/// `--preserve-fds N`: fds 3..3+N are the process's (an OCI runtime's
/// --preserve-fds: systemd socket activation); init's own fds are above them.
pub const PRESERVE_FDS: &str = "--preserve-fds";
/// `--help` (also `-h`).
pub const HELP: &str = "--help";
/// `--version` (also `-V`).
pub const VERSION: &str = "--version";
/// `--wait-child PID FD OOM_FILE`: not PID 1 at all: host-setup's supervisor
/// execs this to wait for init and journal its exit (src/waiter.rs). Only as
/// the first argument, with exactly these three after it.
pub const WAIT_CHILD: &str = "--wait-child";
/// `--`: the end of init's options; CMD follows.
pub const END: &str = "--";

/// The options that take a value (`--opt VALUE` or `--opt=VALUE`).
pub const WITH_VALUE: [&str; 11] =
    [CGROUP, NETNS, ROOTFS, LOWER, UPPER, WORK, HOSTNAME, READY_FD, SECCOMP_FD, SPEC_FD, PRESERVE_FDS];
