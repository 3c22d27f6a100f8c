//! `host-setup exec NAME CMD`: run a command inside a running container — in all
//! its namespaces, under its root and in its cgroups — like
//! `nsenter -t PID -m -u -i -n -p -r -w CMD` plus `echo 0 > tasks` (v1; v2: cgroup.procs).

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::contract::{self, CONTAINER_PATH, SECCOMP_FD};
use crate::error::{Error, Result, SysContext};
use crate::relay::{ChildStdio, Pipes};
use crate::state::{Journal, Paths, Proc, Role};
use crate::{forward, spawn, sys};

/// Enter `name` and run `cmd` (a shell if empty); returns its exit status.
/// Unless the container is privileged, the command is started through init
/// (`init --restrict --exec -- CMD`, from its read-only image), so it gets exactly the
/// restrictions the main process got: the same capabilities, no_new_privs and
/// seccomp filter (compiled again from the spec's choice, on a sealed memfd).
pub fn exec(paths: &Paths, name: &str, cmd: &[String], default_init: &Path) -> Result<i32> {
    let j = Journal::read(paths, name)?
        .ok_or_else(|| crate::precondition!("{name} is not up: start it with host-setup {name}"))?;
    let init = j.proc(Role::Init).filter(|p| p.alive()).ok_or_else(|| {
        crate::precondition!("{name} is not running (its init has exited): see host-setup status {name}")
    })?;

    let entry = Entry::open(name, init, &j.cgroup_dirs())?;

    let privileged = j.spec().is_some_and(|s| s.privileged);
    let filter = match j.spec() {
        Some(s) if !privileged => s.seccomp.memfd()?,
        _ => None,
    };
    let cmd: Vec<String> = if cmd.is_empty() { vec!["/bin/sh".into()] } else { cmd.to_vec() };
    let (argv, image) = if privileged {
        (cmd.clone(), None)
    } else {
        let init = j.init_bin().unwrap_or_else(|| default_init.to_path_buf());
        (contract::exec_argv(&cmd, filter.is_some()), Some(crate::init_image::init_image(&init, &paths.image(name))?))
    };

    // On a terminal, a new one for the command (see tty.rs), opened while we can;
    // else pipes we relay (relay.rs): never our own fds 0-2.
    let term = crate::tty::new_if_interactive()?;
    let pipes = match term {
        Some(_) => None,
        None => Some(Pipes::new()?),
    };
    let stdio = match (&term, &pipes) {
        (Some(t), _) => Some(ChildStdio::Tty(t.slave.as_raw_fd())),
        (None, p) => p.as_ref().map(Pipes::child),
    };
    let launch = Launch {
        argv: sys::cstrings(&argv)?,
        env: sys::cstrings(&contract::container_env())?,
        image: image.as_ref(),
        filter: filter.as_ref(),
        spec: None,
        ready: None,
        stdio,
        cwd: None,
    };
    let child = spawn(&entry, &launch, "host-setup")?;
    match (term, pipes) {
        (Some(t), _) => {
            drop(t.slave);
            crate::tty::relay(&t.master, child)
        }
        (None, Some(p)) => p.relay(child),
        (None, None) => forward::wait(child),
    }
}

/// Everything entering a running container takes, opened by path from the host
/// *before* anything is entered (these paths only mean what we want in the host's
/// mount namespace): the namespaces of its PID 1 that are not ours, its root, the
/// files that join its cgroups.
pub struct Entry {
    init: Proc,
    namespaces: Vec<(File, CloneFlags, &'static str)>,
    pid_ns: Option<File>,
    root: File,
    cgroup_dirs: Vec<PathBuf>,
    cgroup_procs: Vec<(File, PathBuf)>,
}

/// Whether an open namespace file is the namespace we are in already (setns into
/// one's own user namespace is EINVAL; the others would be no-ops).
fn ours(f: &File, kind: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(format!("/proc/self/ns/{kind}"))) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Entry {
    /// Open `init`'s namespaces, root and `cgroup_dirs`; `name` is for messages.
    pub fn open(name: &str, init: Proc, cgroup_dirs: &[PathBuf]) -> Result<Entry> {
        let ns = |kind: &str| -> Result<File> {
            let p = format!("/proc/{}/ns/{kind}", init.pid);
            File::open(&p).sys(|| format!("open {p}"))
        };
        // cgroup after joining the cgroups (its root is the cgroup we are in then,
        // like init's), mount last, because after it the host's /proc is out of reach.
        // With a user namespace: the netns (maybe the host's) before it, whose root
        // we become; the others are the user namespace's and come after it.
        let mut namespaces = vec![];
        for (kind, flag) in [
            ("net", CloneFlags::CLONE_NEWNET),
            ("user", CloneFlags::CLONE_NEWUSER),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let f = ns(kind)?;
            if !ours(&f, kind) {
                namespaces.push((f, flag, kind));
            }
        }
        let pid_ns = Some(ns("pid")?).filter(|f| !ours(f, "pid"));
        let root_path = format!("/proc/{}/root", init.pid);
        let root = File::open(&root_path).sys(|| format!("open {root_path}"))?;
        let mut cgroup_procs = vec![];
        for dir in cgroup_dirs {
            cgroup_procs.push(crate::cgroup::join_file(dir)?);
        }
        // The pid could have been reused between the check and the opens.
        if !init.alive() || Proc::of(init.pid).ok().map(|p| p.start) != Some(init.start) {
            return Err(crate::precondition!("{name} stopped while exec was entering it"));
        }
        Ok(Entry { init, namespaces, pid_ns, root, cgroup_dirs: cgroup_dirs.to_vec(), cgroup_procs })
    }
}

/// What runs once inside: init from its sealed image (`image`, with `argv` init's
/// command line) or, without one, `argv[0]` searched in the container's PATH.
pub struct Launch<'a> {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub image: Option<&'a OwnedFd>,
    /// The seccomp program, on SECCOMP_FD (init --seccomp-fd).
    pub filter: Option<&'a OwnedFd>,
    /// init's --spec-fd records, on SPEC_FD.
    pub spec: Option<&'a OwnedFd>,
    /// The write end of init's ready pipe, on READY_FD (init --ready-fd): `ok`
    /// right before the command's execve, an error line if that fails.
    pub ready: Option<&'a OwnedFd>,
    /// fds 0-2 (None: ours as they are, in a new session). Tty or Fds: exec's
    /// terminal is made here (oci/exec_tty.rs); Console is create's (spawn.rs).
    pub stdio: Option<ChildStdio>,
    /// The working directory, relative to the container's root (None: "/"). A
    /// --spec-fd CWD record, applied by init as the user, is the other way.
    pub cwd: Option<CString>,
}

/// Fork a process into `e`'s container (pid namespace, cgroups, namespaces, root)
/// that execs `l`; returns its host pid. Signals of `forward::signals()` are
/// blocked here (before the fork), for the caller to forward. `who` prefixes the
/// child's own error message (exit 125 if it cannot enter).
pub fn spawn(e: &Entry, l: &Launch, who: &str) -> Result<Pid> {
    // setns(CLONE_NEWPID) changes the pid namespace of our *children* only: enter it
    // here, then fork, and the child is a member of the container's pid namespace.
    if let Some(pid_ns) = &e.pid_ns {
        nix::sched::setns(pid_ns, CloneFlags::CLONE_NEWPID).sys(|| format!("setns(/proc/{}/ns/pid)", e.init.pid))?;
    }
    forward::block()?;
    let (child, born_in) = match born_in_cgroup(&e.cgroup_dirs)? {
        Some(child) => (child, true),
        None => (sys::fork("fork")?, false),
    };
    if let Some(child) = child {
        return Ok(child);
    }
    sys::reset_signals_in_child();
    ChildStdio::install_in_child(l.stdio);
    let cgroups = if born_in { &[][..] } else { &e.cgroup_procs[..] };
    let code = match enter(cgroups, &e.namespaces, &e.root, e.init, l.cwd.as_deref()) {
        Ok(()) => match l.image {
            // init searches $PATH, applies the restrictions, execs the command,
            // and reports 127/126 itself if it cannot.
            Some(fd) => exec_init(
                fd.as_raw_fd(),
                [l.filter.map(|f| f.as_raw_fd()), l.spec.map(|f| f.as_raw_fd()), l.ready.map(|f| f.as_raw_fd())],
                &l.argv,
                &l.env,
            ),
            None => exec_in_path(&l.argv, &l.env),
        },
        Err(err) => {
            eprintln!("{who}: exec: {err}");
            125
        }
    };
    sys::exit_child(code);
}

/// cgroup v2 (one dir, with cgroup.controllers): fork into the container's cgroup
/// (spawn::clone_into_cgroup). None: fork and join instead.
fn born_in_cgroup(dirs: &[PathBuf]) -> Result<Option<Option<Pid>>> {
    match dirs {
        [dir] if dir.join("cgroup.controllers").exists() => spawn::clone_into_cgroup(dir, 0),
        _ => Ok(None),
    }
}

/// In the child: join the cgroups, the namespaces, the root.
fn enter(
    cgroups: &[(File, std::path::PathBuf)],
    namespaces: &[(File, CloneFlags, &str)],
    root: &File,
    init: Proc,
    cwd: Option<&std::ffi::CStr>,
) -> Result<()> {
    for (f, p) in cgroups {
        // "0" is "the writing thread" (v1's tasks; the child of fork has one) or
        // "process" (cgroup.procs): pids are read in the writer's pid namespace,
        // and ours is the container's now.
        (&*f).write_all(b"0").sys(|| format!("write 0 to {}", p.display()))?;
    }
    for (f, flag, kind) in namespaces {
        nix::sched::setns(f, *flag).sys(|| format!("setns(/proc/{}/ns/{kind})", init.pid))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            sys::become_root_in_child().sys(|| "setresuid(0) in the user namespace".into())?;
        }
    }
    // After pivot_root the namespace's root is not where setns puts us: take
    // init's root explicitly, as nsenter --root does.
    nix::unistd::fchdir(root).sys(|| format!("fchdir(/proc/{}/root)", init.pid))?;
    nix::unistd::chroot(".").sys(|| "chroot(.)".into())?;
    nix::unistd::chdir("/").sys(|| "chdir(/)".into())?;
    if let Some(cwd) = cwd {
        nix::unistd::chdir(cwd).sys(|| format!("chdir({})", cwd.to_string_lossy()))?;
    }
    Ok(())
}

/// The fd number init's image has in the child, between fork and exec.
const IMAGE_FD: RawFd = SECCOMP_FD + 1;

/// The fd number of init's --spec-fd records in the child (after the image), the
/// highest init gets.
pub const SPEC_FD: RawFd = IMAGE_FD + 1;

/// Exec init from its sealed memfd with `[filter, spec, ready]` (each if given) on
/// SECCOMP_FD, SPEC_FD and READY_FD; returns 126 if that fails. Nothing else
/// of ours stays open: fds 0-2 (ours or the relay's, see relay.rs), those, and
/// the image (close-on-exec).
fn exec_init(fd: RawFd, extra: [Option<RawFd>; 3], argv: &[CString], env: &[CString]) -> i32 {
    const TO: [RawFd; 3] = [SECCOMP_FD, SPEC_FD, contract::READY_FD];
    // All out of the way first: any may sit on one of the target numbers now.
    let image = sys::dup_high(fd);
    let extra = extra.map(|f| f.map(sys::dup_high));
    let mut placed = sys::place_fd(image, IMAGE_FD, true);
    for (from, to) in extra.iter().zip(TO) {
        if let Some(from) = from {
            placed = placed.and_then(|()| sys::place_fd(*from, to, false));
        }
    }
    sys::close_from(SPEC_FD + 1);
    let keep = |fd: RawFd| fd == IMAGE_FD || TO.iter().zip(&extra).any(|(to, f)| *to == fd && f.is_some());
    for fd in (3..=SPEC_FD).filter(|&fd| !keep(fd)) {
        let _ = nix::unistd::close(fd);
    }
    let errno = match placed {
        Ok(()) => sys::exec_fd(IMAGE_FD, argv, env),
        Err(e) => e,
    };
    eprintln!("host-setup: {}", Error::sys("exec init", errno));
    126
}

/// execve with the container's PATH; returns 127 (not found) or 126 (cannot run)
/// after printing why, as a shell would.
fn exec_in_path(argv: &[CString], env: &[CString]) -> i32 {
    let cmd = argv.first().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    let candidates: Vec<String> = if cmd.contains('/') {
        vec![cmd.to_string()]
    } else {
        CONTAINER_PATH.split(':').map(|d| format!("{d}/{cmd}")).filter(|p| Path::new(p).exists()).collect()
    };
    let mut last = Error::sys(format!("exec {cmd}"), nix::errno::Errno::ENOENT);
    // Only fds 0-2 go on into the container (every other of ours is close-on-exec,
    // but a caller's `3< file` is not).
    sys::close_from(3);
    for c in candidates {
        let path = CString::new(c.as_bytes()).unwrap_or_default();
        let Err(e) = nix::unistd::execve(&path, argv, env);
        last = Error::sys(format!("exec {c}"), e);
    }
    eprintln!("host-setup: {last}");
    if last.errno() == Some(nix::errno::Errno::ENOENT) {
        127
    } else {
        126
    }
}
