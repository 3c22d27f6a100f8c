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
        if self.command.is_empty() {
            a.push(flag::PAUSE.into());
            return a;
        }
        match self.pid1 {
            Pid1::Supervise => {}
            Pid1::SuperviseGroup => a.push(flag::PGROUP.into()),
            Pid1::Exec => a.push(flag::EXEC.into()),
        }
        a.push(flag::END.into());
        a.extend(self.command.iter().cloned());
        a
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
mod tests {
    use std::ffi::{CStr, CString};

    use init::args::{parse, Parsed};

    use super::*;

    fn args(cmd: &[&str]) -> InitArgs {
        InitArgs {
            init_bin: "/usr/lib/host-setup/init".into(),
            cgroup_dirs: vec![
                "/sys/fs/cgroup/cpu/host-setup/red".into(),
                "/sys/fs/cgroup/memory/host-setup/red".into(),
            ],
            born_in_cgroup: false,
            netns: "/run/netns/RED".into(),
            rootfs: "/s/containers/red/merge".into(),
            lower: vec!["/s/layers/tools-1".into(), "/s/layers/myroot-2".into()],
            upper: "/s/containers/red/upper".into(),
            work: "/s/containers/red/work".into(),
            hostname: "RED".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            pid1: Default::default(),
            contain: true,
            seccomp: Seccomp::Default,
            userns: None,
            explicit: None,
            run: None,
        }
    }

    /// Parse `argv` with init's own parser, and hand its options to `check`.
    fn with_init_parser(argv: &[String], check: impl FnOnce(&init::args::Opts, &[&CStr])) {
        let owned: Vec<CString> = argv.iter().map(|a| CString::new(a.as_str()).unwrap()).collect();
        let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
        match parse(refs.iter().copied()) {
            Ok(Parsed::Run(o)) => check(&o, &refs),
            other => panic!("init does not take {argv:?}: {other:?}"),
        }
    }

    fn text(c: Option<&CStr>) -> Option<&str> {
        c.map(|c| c.to_str().unwrap())
    }

    #[test]
    fn init_parses_what_host_setup_builds() {
        let a = args(&["/bin/sh", "-c", "echo hi"]);
        with_init_parser(&a.argv(), |o, argv| {
            let cgroups: Vec<&str> = o.cgroups().map(|c| c.to_str().unwrap()).collect();
            assert_eq!(cgroups, ["/sys/fs/cgroup/cpu/host-setup/red", "/sys/fs/cgroup/memory/host-setup/red"]);
            assert_eq!(text(o.netns), Some("/run/netns/RED"));
            assert_eq!(text(o.lower), Some("/s/layers/tools-1:/s/layers/myroot-2"));
            assert_eq!(text(o.upper), Some("/s/containers/red/upper"));
            assert_eq!(text(o.work), Some("/s/containers/red/work"));
            assert_eq!(text(o.rootfs), Some("/s/containers/red/merge"));
            assert_eq!(text(o.hostname), Some("RED"));
            assert_eq!(o.ready_fd, Some(READY_FD));
            assert_eq!(o.seccomp_fd, Some(SECCOMP_FD));
            assert!(o.cgroupns && o.dev && o.mask_proc && o.restrict);
            assert!(!o.pause && !o.exec && !o.pgroup);
            let cmd: Vec<&str> = argv[o.cmd.unwrap()..].iter().map(|c| c.to_str().unwrap()).collect();
            assert_eq!(cmd, ["/bin/sh", "-c", "echo hi"]);
        });
        with_init_parser(&args(&[]).argv(), |o, _| assert!(o.pause && o.cmd.is_none()));
        let group = InitArgs { pid1: Pid1::SuperviseGroup, ..args(&["sh"]) };
        with_init_parser(&group.argv(), |o, _| assert!(o.pgroup && !o.exec));
        let exec = InitArgs { pid1: Pid1::Exec, contain: false, ..args(&["sh"]) };
        with_init_parser(&exec.argv(), |o, _| assert!(o.exec && !o.restrict && !o.dev && o.seccomp_fd.is_none()));
        let unconfined = InitArgs { seccomp: Seccomp::Unconfined, ..args(&["sh"]) };
        with_init_parser(&unconfined.argv(), |o, _| assert!(o.restrict && o.seccomp_fd.is_none()));
        // Born in its cgroup (v2, clone3): nothing to join, the namespace still made.
        let born = InitArgs { born_in_cgroup: true, ..args(&["sh"]) };
        with_init_parser(&born.argv(), |o, _| assert!(o.cgroups().next().is_none() && o.cgroupns));
        // A shell cannot clone3 into a cgroup: the script joins it instead.
        assert!(born.shell().join("\n").contains("echo 0 > /sys/fs/cgroup/cpu/host-setup/red/cgroup.procs"));
        // A command that looks like an option stays the command.
        with_init_parser(&args(&["--pause"]).argv(), |o, argv| {
            assert!(!o.pause);
            assert_eq!(argv[o.cmd.unwrap()].to_str().unwrap(), "--pause");
        });
        // --userns: the host joins the cgroups and the netns; init attaches the layers.
        let ids = crate::userns::IdMap { uid: 1_000_000_000, gid: 1_000_000_000, count: 65536 }.into();
        let points = vec![PathBuf::from("/s/containers/red/lower/0"), PathBuf::from("/s/containers/red/lower/1")];
        let userns = InitArgs { userns: Some(Userns { ids, mount_points: points }), ..args(&["sh"]) };
        with_init_parser(&userns.argv(), |o, _| {
            assert!(o.userns && o.cgroups().next().is_none() && o.netns.is_none() && o.cgroupns);
            assert_eq!(text(o.lower), Some("/s/containers/red/lower/0:/s/containers/red/lower/1"));
        });
        let shell = userns.shell().join("\n");
        assert!(
            shell.contains("unshare --user --map-users=0:1000000000:65536 --map-groups=0:1000000000:65536"),
            "{shell}"
        );
        assert!(
            shell.contains("X-mount.idmap=/proc/$!/ns/user /s/layers/myroot-2 /s/containers/red/lower/1"),
            "{shell}"
        );
        assert!(shell.contains("echo 0 > /sys/fs/cgroup/cpu/host-setup/red/tasks (a file the host opened)"), "{shell}");
        assert!(shell.contains(",userxattr "), "{shell}");
        for seccomp in [true, false] {
            with_init_parser(&exec_argv(&["ps".into(), "-ef".into()], seccomp), |o, argv| {
                assert!(o.restrict && o.exec && o.rootfs.is_none());
                assert_eq!(o.seccomp_fd, seccomp.then_some(SECCOMP_FD));
                assert_eq!(argv[o.cmd.unwrap()].to_str().unwrap(), "ps");
            });
        }
    }

    #[test]
    fn shell_follows_the_tutorial() {
        let e = args(&[]).shell().join("\n");
        assert!(e.contains("unshare -m -u -i -p -f nsenter --net=/run/netns/RED sh -e 3>$ready/fifo <<'EOF' &"));
        assert!(e.contains("\n  exec /proc/self/fd/9 --cgroupns --restrict --ready-fd 3 --pause\nEOF\n"), "{e}");
        assert!(e.contains("lowerdir=/s/layers/tools-1:/s/layers/myroot-2,upperdir="));
        assert!(e.contains("pivot_root . .; umount -l ."));
        assert!(e.contains("# not here: seccomp, default (Docker's default profile"));
        let file = InitArgs { seccomp: Seccomp::File { path: "/p.json".into(), text: "{}".into() }, ..args(&[]) };
        assert!(file.shell().join("\n").contains("seccomp, profile /p.json"));
        let none = InitArgs { seccomp: Seccomp::Unconfined, ..args(&[]) }.shell().join("\n");
        assert!(!none.contains("seccomp"));
    }

    #[test]
    fn ready_reports() {
        use nix::errno::Errno;
        assert!(parse_ready("ok\n").is_ok());
        // init's errors come out exactly as host-setup's own, errno included.
        let e = parse_ready("error\t22\tpivot_root(/m, put_old)\t\"/\" is shared\n").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        let own = Error::sys("pivot_root(/m, put_old)", Errno::EINVAL).hint("\"/\" is shared");
        assert_eq!(e.to_string(), own.to_string());
        assert_eq!(e.to_string(), "pivot_root(/m, put_old): EINVAL: invalid argument; \"/\" is shared");
        // The same line, written by host-setup's side, reads back the same.
        let back = parse_ready(&error_line(&own)).unwrap_err();
        assert_eq!((back.errno(), back.to_string()), (own.errno(), own.to_string()));
        let e = parse_ready("ok\nerror\t2\texec /bin/nope\t\n").unwrap_err();
        assert_eq!(
            (e.errno(), e.to_string().as_str()),
            (Some(Errno::ENOENT), "exec /bin/nope: ENOENT: no such file or directory")
        );
        let e = parse_ready("error\t0\tsomething failed\ta hint\n").unwrap_err();
        assert_eq!((e.errno(), e.to_string().as_str()), (None, "something failed; a hint"));
        let e = parse_ready(&error_line(&crate::failed!("a\tb\nc"))).unwrap_err();
        assert_eq!(e.to_string(), "a b c");
        assert_eq!(parse_ready("").unwrap_err().to_string(), "init exited before it was ready");
    }

    #[test]
    fn container_env_is_clean() {
        let env = container_env();
        assert!(env[0].starts_with("PATH=/usr/local/sbin:"));
        assert!(env.iter().all(|e| !e.starts_with("USER=") && !e.starts_with("SSH_")));
    }
}
