//! Command line: `init [OPTIONS] [--] [CMD [ARG...]]` (the contract host-setup uses).
//!
//! Options come first; the first non-option argument, or everything after `--`,
//! is CMD. Values are taken as `--opt VALUE` or `--opt=VALUE`. Nothing is copied:
//! every value borrows the NUL-terminated argv string, and CMD is an index into
//! argv, whose tail is already the NULL-terminated argv that execve wants.

use core::ffi::CStr;

/// The long options host-setup passes, defined once: `parse` matches on these, and
/// host-setup builds init's command line from them (host-setup/src/contract.rs).
pub mod flag {
    pub const CGROUP: &str = "--cgroup";
    pub const NETNS: &str = "--netns";
    pub const ROOTFS: &str = "--rootfs";
    pub const LOWER: &str = "--lower";
    pub const UPPER: &str = "--upper";
    pub const WORK: &str = "--work";
    pub const HOSTNAME: &str = "--hostname";
    pub const READY_FD: &str = "--ready-fd";
    pub const PAUSE: &str = "--pause";
    pub const PGROUP: &str = "--pgroup";
    pub const EXEC: &str = "--exec";
    pub const CGROUPNS: &str = "--cgroupns";
    pub const DEV: &str = "--dev";
    pub const MASK_PROC: &str = "--mask-proc";
    pub const RESTRICT: &str = "--restrict";
    /// The end of init's options: CMD follows.
    pub const END: &str = "--";
}

/// How many `--cgroup` may be given (a cgroup v1 host has about ten hierarchies).
pub const MAX_CGROUPS: usize = 16;

pub const HELP: &str = "\
usage: init [OPTIONS] [--] [CMD [ARG...]]

PID 1 for a container: joins cgroups and a network namespace, mounts the
root (overlay or bind), pivot_roots into it, mounts /proc, sets the hostname,
then starts CMD, forwards signals to it, reaps zombies and exits with CMD's
status.

options:
  --cgroup DIR     join cgroup DIR: write \"0\" to DIR/cgroup.procs
                   (repeatable; cgroup v1 and v2 alike)
  --netns FILE     join the network namespace bound at FILE (/run/netns/RED)
  --rootfs DIR     the new root: an overlay of --lower mounted on DIR, or else
                   DIR bind-mounted onto itself; then pivot_root into it, mount
                   /proc, detach the old root (needs a new mount namespace)
  --lower DIRS     overlay lower dirs, colon-separated, topmost first
  --upper DIR      overlay upper dir (needs --lower and --work)
  --work DIR       overlay work dir (empty, same filesystem as --upper)
  --hostname NAME  set the hostname (needs a new UTS namespace)
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
  --ready-fd N     write \"ok\\n\" to fd N (>= 3) once CMD runs (with --pause:
                   once setup is done), or \"error: MESSAGE\\n\"; then close it
  --pause          no CMD: stay PID 1 and reap orphans until SIGTERM, SIGINT
                   or SIGHUP, then exit 0 (like a pause container)
  -g, --pgroup     forward signals to CMD's process group, not to CMD alone
  --exec           the tutorial's way: exec CMD as PID 1 after setup, with no
                   supervision (SIGTERM is then ignored, orphans stay zombies,
                   an sh -i without a terminal dies when an orphan exits)
  -h, --help       print this help
  -V, --version    print the version

CMD defaults to /bin/sh; a CMD without '/' is looked up in $PATH. CMD gets
init's environment unchanged and no fd above 2. Once CMD runs, init's own
command line reads \"init -- CMD ARGS\" (no setup paths in /proc/1/cmdline).
Setup order: cgroups, cgroup namespace, netns, rootfs (with /dev), pivot_root,
/proc (masked), hostname, then --restrict. RUST_LOG=debug traces each step.

exit status:
  CMD's status, or 128+N if CMD was killed by signal N
  125  a setup step failed (the message names the step, path and errno)
  126  CMD cannot be executed
  127  CMD not found
  2    usage error
";

/// What the command line asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Opts<'a> {
    pub cgroups: [Option<&'a CStr>; MAX_CGROUPS],
    pub netns: Option<&'a CStr>,
    pub rootfs: Option<&'a CStr>,
    pub lower: Option<&'a CStr>,
    pub upper: Option<&'a CStr>,
    pub work: Option<&'a CStr>,
    pub hostname: Option<&'a CStr>,
    pub ready_fd: Option<i32>,
    pub pause: bool,
    pub pgroup: bool,
    pub exec: bool,
    pub cgroupns: bool,
    pub dev: bool,
    pub mask_proc: bool,
    pub restrict: bool,
    /// Index in argv of CMD; `None`: the default `/bin/sh` (or nothing with --pause).
    pub cmd: Option<usize>,
}

impl<'a> Opts<'a> {
    pub fn cgroups(&self) -> impl Iterator<Item = &'a CStr> + '_ {
        self.cgroups.iter().map_while(|c| *c)
    }
}

// Run is large (16 cgroup slots), but there is one, on the stack, and no allocator to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    Run(Opts<'a>),
    Help,
    Version,
}

/// A usage error: `msg` followed by the offending argument (may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage<'a> {
    pub msg: &'static str,
    pub arg: &'a [u8],
}

fn usage<'a, T>(msg: &'static str, arg: &'a [u8]) -> Result<T, Usage<'a>> {
    Err(Usage { msg, arg })
}

/// `--ready-fd` value: a decimal fd number of at least 3 (0-2 belong to CMD).
pub fn parse_fd(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0i32, |n, d| n * 10 + (d - b'0') as i32);
    (n >= 3).then_some(n)
}

/// Parses argv (argv[0] included, and skipped).
pub fn parse<'a>(argv: impl IntoIterator<Item = &'a CStr>) -> Result<Parsed<'a>, Usage<'a>> {
    let mut o = Opts::default();
    let mut ncgroups = 0;
    let mut it = argv.into_iter().enumerate().skip(1);
    while let Some((i, arg)) = it.next() {
        let bytes = arg.to_bytes();
        if bytes == b"--" {
            o.cmd = it.next().map(|(i, _)| i);
            break;
        }
        if bytes.first() != Some(&b'-') {
            o.cmd = Some(i);
            break;
        }
        // "--name=value" or "--name" "value": `inline` is the NUL-terminated value.
        let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) if bytes.starts_with(b"--") => {
                let with_nul = arg.to_bytes_with_nul();
                (&bytes[..eq], CStr::from_bytes_with_nul(&with_nul[eq + 1..]).ok())
            }
            _ => (bytes, None),
        };
        let flag = |set: &mut bool| match inline {
            Some(_) => usage("option takes no value: ", bytes),
            None => {
                *set = true;
                Ok(())
            }
        };
        match name {
            b"-h" | b"--help" => return Ok(Parsed::Help),
            b"-V" | b"--version" => return Ok(Parsed::Version),
            b"--pause" => flag(&mut o.pause)?,
            b"-g" | b"--pgroup" => flag(&mut o.pgroup)?,
            b"--exec" => flag(&mut o.exec)?,
            b"--cgroupns" => flag(&mut o.cgroupns)?,
            b"--dev" => flag(&mut o.dev)?,
            b"--mask-proc" => flag(&mut o.mask_proc)?,
            b"--restrict" => flag(&mut o.restrict)?,
            b"--cgroup" | b"--netns" | b"--rootfs" | b"--lower" | b"--upper" | b"--work" | b"--hostname"
            | b"--ready-fd" => {
                let value = match inline {
                    Some(v) => v,
                    None => match it.next() {
                        Some((_, v)) => v,
                        None => return usage("option needs a value: ", name),
                    },
                };
                let slot = match name {
                    b"--cgroup" => {
                        if ncgroups == MAX_CGROUPS {
                            return usage("too many --cgroup (at most 16)", b"");
                        }
                        ncgroups += 1;
                        &mut o.cgroups[ncgroups - 1]
                    }
                    b"--netns" => &mut o.netns,
                    b"--rootfs" => &mut o.rootfs,
                    b"--lower" => &mut o.lower,
                    b"--upper" => &mut o.upper,
                    b"--work" => &mut o.work,
                    b"--hostname" => &mut o.hostname,
                    _ => match parse_fd(value.to_bytes()) {
                        Some(fd) => {
                            o.ready_fd = Some(fd);
                            continue;
                        }
                        None => return usage("--ready-fd needs a number >= 3, not: ", value.to_bytes()),
                    },
                };
                *slot = Some(value);
            }
            _ => return usage("unknown option: ", bytes),
        }
    }
    check(&o)?;
    Ok(Parsed::Run(o))
}

/// Combinations that make no sense are usage errors, caught before any setup.
fn check<'a>(o: &Opts<'a>) -> Result<(), Usage<'a>> {
    if o.upper.is_some() != o.work.is_some() {
        return usage("--upper and --work go together", b"");
    }
    if o.upper.is_some() && o.lower.is_none() {
        return usage("--upper and --work need --lower", b"");
    }
    if o.lower.is_some() && o.rootfs.is_none() {
        return usage("--lower needs --rootfs (where to mount the overlay)", b"");
    }
    if o.dev && o.rootfs.is_none() {
        return usage("--dev needs --rootfs (the new root to make /dev in)", b"");
    }
    if o.mask_proc && o.rootfs.is_none() {
        return usage("--mask-proc needs --rootfs (it masks the new /proc)", b"");
    }
    if o.mask_proc && !o.dev {
        return usage("--mask-proc needs --dev (it binds the new /dev/null)", b"");
    }
    if o.pause && o.exec {
        return usage("--pause and --exec exclude each other", b"");
    }
    if o.pause && o.cmd.is_some() {
        return usage("--pause takes no CMD", b"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// Parses a whitespace-free command line given as a list (argv[0] = "init").
    fn with<R>(args: &[&str], f: impl FnOnce(Result<Parsed, Usage>) -> R) -> R {
        let owned: Vec<CString> =
            std::iter::once("init").chain(args.iter().copied()).map(|a| CString::new(a).unwrap()).collect();
        let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
        f(parse(refs.iter().copied()))
    }

    fn opts(args: &[&str]) -> Opts<'static> {
        // Leak: the borrowed strings must outlive the returned Opts in tests.
        let owned: &'static [CString] =
            Vec::leak(std::iter::once("init").chain(args.iter().copied()).map(|a| CString::new(a).unwrap()).collect());
        match parse(owned.iter().map(|c| c.as_c_str())) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        with(args, |r| match r {
            Err(u) => format!("{}{}", u.msg, String::from_utf8_lossy(u.arg)),
            Ok(p) => panic!("{args:?} parsed: {p:?}"),
        })
    }

    fn s(c: Option<&CStr>) -> Option<&str> {
        c.map(|c| c.to_str().unwrap())
    }

    #[test]
    fn no_arguments_is_the_default_shell() {
        let o = opts(&[]);
        assert_eq!(o, Opts::default());
        assert_eq!(o.cmd, None);
    }

    #[test]
    fn every_flag_with_separate_values() {
        let o = opts(&[
            "--cgroup",
            "/sys/fs/cgroup/cpu/red",
            "--cgroup",
            "/sys/fs/cgroup/memory/red",
            "--netns",
            "/run/netns/RED",
            "--rootfs",
            "/c/merge",
            "--lower",
            "/l/tools:/l/myroot",
            "--upper",
            "/c/upper",
            "--work",
            "/c/work",
            "--hostname",
            "RED",
            "--ready-fd",
            "7",
            "-g",
            "/bin/sh",
            "-c",
            "echo hi",
        ]);
        let cgroups: Vec<_> = o.cgroups().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(cgroups, ["/sys/fs/cgroup/cpu/red", "/sys/fs/cgroup/memory/red"]);
        assert_eq!(s(o.netns), Some("/run/netns/RED"));
        assert_eq!(s(o.rootfs), Some("/c/merge"));
        assert_eq!(s(o.lower), Some("/l/tools:/l/myroot"));
        assert_eq!(s(o.upper), Some("/c/upper"));
        assert_eq!(s(o.work), Some("/c/work"));
        assert_eq!(s(o.hostname), Some("RED"));
        assert_eq!(o.ready_fd, Some(7));
        assert!(o.pgroup && !o.pause && !o.exec);
        assert_eq!(o.cmd, Some(20)); // argv[20] = "/bin/sh"
    }

    #[test]
    fn values_after_equals_sign() {
        let o = opts(&["--rootfs=/c/m", "--hostname=a=b", "--ready-fd=3", "--cgroup=/x", "--pgroup", "true"]);
        assert_eq!(s(o.rootfs), Some("/c/m"));
        assert_eq!(s(o.hostname), Some("a=b"));
        assert_eq!(o.ready_fd, Some(3));
        assert_eq!(o.cgroups().count(), 1);
        assert!(o.pgroup);
        assert_eq!(o.cmd, Some(6));
        // An empty value is a value (the kernel will judge it).
        assert_eq!(s(opts(&["--hostname="]).hostname), Some(""));
    }

    #[test]
    fn flags_pause_exec() {
        assert!(opts(&["--pause"]).pause);
        let o = opts(&["--exec", "/bin/sh"]);
        assert!(o.exec);
        assert_eq!(o.cmd, Some(2));
        assert!(opts(&["-g"]).pgroup);
    }

    #[test]
    fn containment_flags() {
        let o = opts(&["--rootfs", "/r", "--dev", "--mask-proc", "--cgroupns", "--restrict", "--", "sh"]);
        assert!(o.dev && o.mask_proc && o.cgroupns && o.restrict);
        assert_eq!(o.cmd, Some(8));
        let o = opts(&["--restrict", "--exec", "--", "id"]);
        assert!(o.restrict && o.exec && !o.dev && !o.cgroupns);
        assert_eq!(o.cmd, Some(4));
        assert!(opts(&["--cgroupns", "--pause"]).cgroupns);
        let d = opts(&["--rootfs", "/r", "sh"]);
        assert!(!d.dev && !d.mask_proc && !d.cgroupns && !d.restrict, "all off by default");
        assert_eq!(err(&["--dev"]), "--dev needs --rootfs (the new root to make /dev in)");
        assert_eq!(err(&["--mask-proc", "--dev"]), "--dev needs --rootfs (the new root to make /dev in)");
        assert_eq!(err(&["--mask-proc"]), "--mask-proc needs --rootfs (it masks the new /proc)");
        assert_eq!(err(&["--rootfs", "/r", "--mask-proc"]), "--mask-proc needs --dev (it binds the new /dev/null)");
        assert_eq!(err(&["--restrict=1"]), "option takes no value: --restrict=1");
        // After CMD they are CMD's.
        assert!(!opts(&["sh", "--restrict"]).restrict);
    }

    #[test]
    fn double_dash_ends_options() {
        let o = opts(&["--", "--help"]);
        assert_eq!(o.cmd, Some(2));
        let o = opts(&["-g", "--", "-weird-cmd", "--rootfs"]);
        assert_eq!(o.cmd, Some(3));
        assert_eq!(o.rootfs, None);
        // "--" with nothing after it: the default CMD.
        assert_eq!(opts(&["--"]).cmd, None);
    }

    #[test]
    fn first_non_option_is_cmd_and_later_flags_are_its_own() {
        let o = opts(&["sh", "--pause", "-g"]);
        assert_eq!(o.cmd, Some(1));
        assert!(!o.pause && !o.pgroup);
    }

    #[test]
    fn help_and_version() {
        let is = |args: &[&str], want: Parsed<'static>| with(args, |r| assert_eq!(r, Ok(want), "{args:?}"));
        is(&["-h"], Parsed::Help);
        is(&["--help", "--bogus"], Parsed::Help);
        is(&["-V"], Parsed::Version);
        is(&["--version"], Parsed::Version);
        assert!(HELP.contains("--ready-fd N") && HELP.contains("127  CMD not found"));
        for flag in ["--restrict", "--dev", "--mask-proc", "--cgroupns"] {
            assert!(HELP.contains(&format!("  {flag} ")), "{flag} in --help");
        }
        assert!(HELP.lines().all(|l| l.len() <= 80), "help lines fit 80 columns");
    }

    #[test]
    fn usage_errors() {
        assert_eq!(err(&["--bogus"]), "unknown option: --bogus");
        assert_eq!(err(&["-x", "sh"]), "unknown option: -x");
        assert_eq!(err(&["-"]), "unknown option: -");
        assert_eq!(err(&["--bogus=1"]), "unknown option: --bogus=1");
        assert_eq!(err(&["--rootfs"]), "option needs a value: --rootfs");
        assert_eq!(err(&["--pause=yes"]), "option takes no value: --pause=yes");
        assert_eq!(err(&["--ready-fd", "x"]), "--ready-fd needs a number >= 3, not: x");
        assert_eq!(err(&["--ready-fd", "2"]), "--ready-fd needs a number >= 3, not: 2");
        assert_eq!(err(&["--ready-fd", "9999999999"]), "--ready-fd needs a number >= 3, not: 9999999999");
        assert_eq!(err(&["--upper", "/u", "--rootfs", "/r", "--lower", "/l"]), "--upper and --work go together");
        assert_eq!(err(&["--work", "/w", "--upper", "/u", "--rootfs", "/r"]), "--upper and --work need --lower");
        assert_eq!(err(&["--lower", "/l"]), "--lower needs --rootfs (where to mount the overlay)");
        assert_eq!(err(&["--pause", "--exec"]), "--pause and --exec exclude each other");
        assert_eq!(err(&["--pause", "sleep", "1"]), "--pause takes no CMD");
        assert_eq!(err(&["--pause", "--", "sleep"]), "--pause takes no CMD");
        let many: Vec<&str> = std::iter::repeat(["--cgroup", "/c"]).take(MAX_CGROUPS + 1).flatten().collect();
        assert_eq!(err(&many), "too many --cgroup (at most 16)");
        let enough: Vec<&str> = std::iter::repeat(["--cgroup", "/c"]).take(MAX_CGROUPS).flatten().collect();
        assert_eq!(opts(&enough).cgroups().count(), MAX_CGROUPS);
    }

    #[test]
    fn fd_numbers() {
        assert_eq!(parse_fd(b"3"), Some(3));
        assert_eq!(parse_fd(b"0042"), Some(42));
        assert_eq!(parse_fd(b"999999999"), Some(999_999_999));
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"-3"), None);
        assert_eq!(parse_fd(b"+3"), None);
        assert_eq!(parse_fd(b"0"), None);
    }
}
