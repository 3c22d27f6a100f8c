//! `host-setup exec NAME CMD`: run a command inside a running container — in all
//! its namespaces, under its root and in its cgroups — like
//! `nsenter -t PID -m -u -i -n -p -r -w CMD` plus `echo 0 > tasks` (v1; v2: cgroup.procs).

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
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
/// (`init --restrict --exec -- CMD`, from a sealed memfd), so it gets exactly the
/// restrictions the main process got: the same capabilities, no_new_privs and
/// seccomp filter (compiled again from the spec's choice, on a sealed memfd).
pub fn exec(paths: &Paths, name: &str, cmd: &[String], default_init: &Path) -> Result<i32> {
    let j = Journal::read(paths, name)?
        .ok_or_else(|| crate::precondition!("{name} is not up: start it with host-setup {name}"))?;
    let init = j.proc(Role::Init).filter(|p| p.alive()).ok_or_else(|| {
        crate::precondition!("{name} is not running (its init has exited): see host-setup status {name}")
    })?;

    // Open everything by path *before* entering anything: these paths only mean
    // what we want in the host's mount namespace.
    let ns = |kind: &str| -> Result<File> {
        let p = format!("/proc/{}/ns/{kind}", init.pid);
        File::open(&p).sys(|| format!("open {p}"))
    };
    // cgroup after joining the cgroups (its root is the cgroup we are in then,
    // like init's), mount last, because after it the host's /proc is out of reach.
    // With --userns: the netns (the host's) before the user namespace, whose
    // root we become; the others are the user namespace's and come after it.
    let userns = j.spec().is_some_and(|s| s.userns);
    let mut namespaces = vec![(ns("net")?, CloneFlags::CLONE_NEWNET, "net")];
    if userns {
        namespaces.push((ns("user")?, CloneFlags::CLONE_NEWUSER, "user"));
    }
    namespaces.extend([
        (ns("ipc")?, CloneFlags::CLONE_NEWIPC, "ipc"),
        (ns("uts")?, CloneFlags::CLONE_NEWUTS, "uts"),
        (ns("cgroup")?, CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (ns("mnt")?, CloneFlags::CLONE_NEWNS, "mnt"),
    ]);
    let pid_ns = ns("pid")?;
    let root_path = format!("/proc/{}/root", init.pid);
    let root = File::open(&root_path).sys(|| format!("open {root_path}"))?;
    let mut cgroup_procs = vec![];
    for dir in j.cgroup_dirs() {
        cgroup_procs.push(crate::cgroup::join_file(&dir)?);
    }
    // The pid could have been reused between the check and the opens.
    if !init.alive() || Proc::of(init.pid).ok().map(|p| p.start) != Some(init.start) {
        return Err(crate::precondition!("{name} stopped while host-setup exec was entering it"));
    }

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
        (contract::exec_argv(&cmd, filter.is_some()), Some(crate::memfd::sealed_init(&init)?))
    };
    let c_argv = sys::cstrings(&argv)?;
    let c_env = sys::cstrings(&contract::container_env())?;

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
    // setns(CLONE_NEWPID) changes the pid namespace of our *children* only: enter it
    // here, then fork, and the child is a member of the container's pid namespace.
    nix::sched::setns(&pid_ns, CloneFlags::CLONE_NEWPID).sys(|| format!("setns(/proc/{}/ns/pid)", init.pid))?;
    forward::block()?;
    let (child, born_in) = match born_in_cgroup(&j.cgroup_dirs())? {
        Some(child) => (child, true),
        None => (sys::fork("fork")?, false),
    };
    let Some(child) = child else {
        sys::reset_signals_in_child();
        ChildStdio::install_in_child(stdio);
        let cgroups = if born_in { &[][..] } else { &cgroup_procs[..] };
        let code = match enter(cgroups, &namespaces, &root, init) {
            Ok(()) => match &image {
                // init searches $PATH, applies the restrictions, execs the command,
                // and reports 127/126 itself if it cannot.
                Some(fd) => exec_init(fd.as_raw_fd(), filter.as_ref().map(|f| f.as_raw_fd()), &c_argv, &c_env),
                None => exec_in_path(&argv[0], &c_argv, &c_env),
            },
            Err(e) => {
                eprintln!("host-setup: exec in {name}: {e}");
                125
            }
        };
        sys::exit_child(code);
    };
    match (term, pipes) {
        (Some(t), _) => {
            drop(t.slave);
            crate::tty::relay(&t.master, child)
        }
        (None, Some(p)) => p.relay(child),
        (None, None) => forward::wait(child),
    }
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
    Ok(())
}

/// The fd number init's image has in the child, between fork and exec.
const IMAGE_FD: RawFd = SECCOMP_FD + 1;

/// Exec init from its sealed memfd, the filter (if any) on SECCOMP_FD; returns
/// 126 if that fails. Nothing else of ours stays open: fds 0-2 (ours or the
/// relay's, see relay.rs), the filter, and the image (close-on-exec).
fn exec_init(fd: RawFd, filter: Option<RawFd>, argv: &[CString], env: &[CString]) -> i32 {
    // Both out of the way first: either may sit on SECCOMP_FD now.
    let (image, filter) = (sys::dup_high(fd), filter.map(sys::dup_high));
    let placed = sys::place_fd(image, IMAGE_FD, true)
        .and_then(|()| filter.map_or(Ok(()), |f| sys::place_fd(f, SECCOMP_FD, false)));
    sys::close_from(IMAGE_FD + 1);
    for fd in (3..IMAGE_FD).filter(|&fd| fd != SECCOMP_FD || filter.is_none()) {
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
fn exec_in_path(cmd: &str, argv: &[CString], env: &[CString]) -> i32 {
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
