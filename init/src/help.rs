//! What init prints about itself: --help, --version, -l.

/// `--version`. Docker runs `<init> --version` for `docker info` and `docker
/// version` and splits the whole output on " - ": the text before the first one
/// must be `tini version X`, the piece after it `git.Y` with exactly one dot
/// (moby daemon/info_unix.go, parseInitVersion). So our own name and version
/// come after a second " - ", not on a line of their own: a dot there would
/// spoil Docker's commit field. catatonit prints `tini version 0.1.7_catatonit`
/// for the same reason. Y is the git commit init was built from (build.rs).
pub const VERSION: &str = concat!(
    "tini version ",
    env!("CARGO_PKG_VERSION"),
    " - git.",
    env!("INIT_GIT_COMMIT"),
    " - init ",
    env!("CARGO_PKG_VERSION"),
    " (host-setup's PID 1; tini's options)\n"
);

/// `-l` (tini) or `-L` (catatonit).
pub const LICENSE: &str = concat!(
    "init ",
    env!("CARGO_PKG_VERSION"),
    ", part of host-setup + init: the MIT License\n\n",
    "Copyright (c) the host-setup + init authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"
);

/// `--help`; every line fits 80 columns.
pub const HELP: &str = "\
usage: init [OPTIONS] [--] [CMD [ARG...]]

PID 1 for a container: joins cgroups and a network namespace, mounts the
root (overlay or bind), pivot_roots into it, mounts /proc, sets the hostname,
then starts CMD, forwards signals to it, reaps zombies and exits with CMD's
status. A drop-in for tini (its options and environment) and catatonit.

options (tini's; -P and -L also catatonit's):
  -s               register as a child subreaper; init does so anyway when it
                   is not PID 1, -s makes a failure an error, not a warning
  -p SIGNAL        the signal init gets when its parent dies: SIGKILL, KILL,
                   or a number (a blocked one, like SIGTERM, is forwarded)
  -v               more output on stderr: -v CMD's start and end, -vv every
                   step, signal and reaped process
  -w               a warning line for each zombie init reaps, other than CMD
  -g, --pgroup     forward signals to CMD's process group, not to CMD alone
  -e CODE          exit 0 when CMD exits with CODE, 0-255 (repeatable)
  -P, --pause      no CMD: stay PID 1 and reap orphans until SIGTERM, SIGINT
                   or SIGHUP, then exit 0 (like a pause container)
  -l, -L           print the license
  -h, --help       print this help
  -V, --version    print the version; the first words in tini's format
                   (tini version X - git.Y), which `docker info` reads

environment (tini's):
  TINI_SUBREAPER           set (to anything): as -s
  TINI_KILL_PROCESS_GROUP  set (to anything): as -g
  TINI_VERBOSITY=N         0 errors only, 1 and warnings (the default), 2 as
                           -v, 3 as -vv (also RUST_LOG=debug); replaces -v

setup options (host-setup's; each one a step before CMD starts):
  --cgroup DIR     join cgroup DIR: write \"0\" to DIR/tasks (v1; init has
                   one thread), else to DIR/cgroup.procs (repeatable)
  --netns FILE     join the network namespace bound at FILE (/run/netns/RED)
  --rootfs DIR     the new root: an overlay of --lower mounted on DIR, or else
                   DIR bind-mounted onto itself; then pivot_root into it, mount
                   /proc, detach the old root (needs a new mount namespace)
  --lower DIRS     overlay lower dirs, colon-separated, topmost first
  --upper DIR      overlay upper dir (needs --lower and --work)
  --work DIR       overlay work dir (empty, same filesystem as --upper)
  --hostname NAME  set the hostname (needs a new UTS namespace)
  --userns         init runs in a user namespace its parent made and mapped:
                   each --lower dir is an empty mount point for the detached
                   (idmapped) layer mount on fd 6, 7, ... in order; the overlay
                   gets userxattr; --dev binds the host's device nodes
  --cgroupns       after joining the cgroups, a new cgroup namespace: CMD sees
                   its own cgroup as \"/\" in /proc/self/cgroup
  --dev            a minimal /dev in the new root (needs --rootfs): tmpfs with
                   null zero full random urandom tty, pts (devpts newinstance),
                   ptmx, shm, fd, stdin, stdout, stderr; no block device
  --mask-proc      after mounting /proc (needs --rootfs and --dev): /dev/null
                   over kcore keys timer_list sched_debug latency_stats
                   timer_stats, an empty tmpfs over acpi scsi; read-only asound
                   bus fs irq sys sysrq-trigger (runc's defaults)
  --restrict       once setup is done, init and CMD keep only Docker's default
                   capabilities (chown dac_override fowner fsetid kill setgid
                   setuid setpcap net_bind_service net_raw sys_chroot mknod
                   audit_write setfcap: bounding, effective, permitted; ambient
                   and inheritable empty) and get no_new_privs; init becomes
                   non-dumpable (CMD cannot open /proc/1/fd, root, exe, mem).
                   With --exec, not as PID 1, only that: the way into a
                   running container (init --restrict --exec -- CMD)
  --seccomp-fd N   read a seccomp filter (a BPF program: struct sock_filter
                   records, at most 4096) from fd N and close it; install it
                   (after --restrict's no_new_privs) as the last step before
                   CMD starts: init and CMD both run under it
  --preserve-fds N fds 3 to 3+N-1 stay open for CMD as they are (an OCI
                   runtime's --preserve-fds); init's own fds are above them
  --spec-fd N      read the in-container part of a spec (an OCI bundle's) as
                   records from fd N (a sealed memfd; src/spec.rs): mounts,
                   devices and links in the new root before the pivot (targets
                   resolved inside it), masked and read-only paths, sysctls,
                   domainname, rlimits, oom_score_adj, user, the five
                   capability sets, no_new_privs, cwd; then the wait for
                   `start` (ready says ok first) and startContainer hooks
  --ready-fd N     on fd N (>= 3), once CMD runs (with --pause: once setup is
                   done): \"ok\\n\", or \"error\\tERRNO\\tWHAT\\tHINT\\n\"; then
                   close it
  --exec           the tutorial's way: exec CMD as PID 1 after setup, with no
                   supervision (SIGTERM is then ignored, orphans stay zombies,
                   an sh -i without a terminal dies when an orphan exits)

Options end at \"--\" or at the first argument that is not one (as tini with
POSIXLY_CORRECT): the rest is CMD. CMD defaults to /bin/sh; a CMD without '/'
is looked up in $PATH. CMD gets init's environment, its signal mask and
ignored signals unchanged, and no fd above 2. Once CMD runs, init's own
command line reads \"init -- CMD ARGS\" (no setup paths in /proc/1/cmdline).
Setup order: cgroups, cgroup namespace, netns, rootfs (with /dev), pivot_root,
/proc (masked), hostname, then --restrict, then --seccomp-fd's filter.
--spec-fd: mounts before the pivot; sysctls, read-only and masked paths after
the hostname; rlimits, user, capabilities, no_new_privs, cwd, the wait for
start and hooks right before the filter.

exit status:
  CMD's status, or 128+N if CMD was killed by signal N (0 if given to -e)
  125  a setup step failed (the message names the step, path and errno)
  126  CMD cannot be executed
  127  CMD not found
  2    usage error
";
