//! Start init as PID 1 of new namespaces — the tutorial's
//! `unshare -m -u -i -fp nsenter --net=/var/run/netns/RED` — and wait until it
//! reports that the main process runs.
//!
//! host-setup clones the child straight into new mount, UTS, IPC and PID
//! namespaces (clone flags, not unshare in this process: pivot_root would re-root
//! every task of a shared mount namespace, and CLONE_NEWPID only applies to
//! children). The child execs the static `init` from its read-only image
//! (init_image.rs: a detached overlay, or a sealed memfd copy), which does the
//! rest from inside: joins the cgroups, enters the netns, mounts the overlay,
//! mounts /proc, pivot_roots, drops the old root, sets the hostname and starts the command.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use crate::contract::{self, InitArgs};
use crate::error::{Error, Result, SysContext};
use crate::relay::ChildStdio;
use crate::{sys, userns};

/// What the runtime does while init waits before its pivot (PIVOT_SYNC).
pub type AtPivot<'a> = dyn FnMut() -> Result<()> + 'a;

/// How long init may take to report ready before we give up on it.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Clone a child into new mount, UTS, IPC and PID namespaces and exec init in it,
/// in a new session, with `stdio` on fds 0-2 (a terminal becomes its controlling
/// terminal; None: ours, for tests only). With a `gate`, the child waits before
/// anything else until gate(its pid) has returned Ok (hsrun --systemd-cgroup puts
/// it into a systemd unit there); an error kills it. Returns init's (host) pid and
/// the read end of its ready pipe.
pub fn spawn(
    args: &InitArgs,
    stdio: Option<ChildStdio>,
    gate: Option<&dyn Fn(i32) -> Result<()>>,
) -> Result<(Pid, File)> {
    let mut argv = sys::cstrings(&args.argv())?;
    let envp = match (&args.explicit, &args.run) {
        (Some(x), _) => sys::cstrings(&x.env)?,
        (None, Some(r)) => sys::cstrings(&r.env)?,
        (None, None) => sys::cstrings(&contract::container_env())?,
    };
    // A container described in full, or the run options: records on a sealed
    // memfd (contract_spec.rs, contract_run.rs), read on spec_fd.
    let (records, spec_fd) = match (&args.explicit, &args.run) {
        (Some(x), _) => {
            (Some(crate::memfd::sealed_memfd(c"host-setup-spec", &x.records)?), crate::contract_spec::SPEC_FD)
        }
        (None, Some(r)) if !r.records.is_empty() => {
            (Some(crate::memfd::sealed_memfd(c"host-setup-spec", &r.records)?), r.spec_fd)
        }
        _ => (None, crate::contract_spec::SPEC_FD),
    };
    let image = crate::init_image::init_image(&args.init_bin, &args.image_empty)?;
    let filter = if args.filtered() { args.seccomp.memfd()? } else { None };
    // PIVOT_SYNC: init also reads our answer on its ready fd, a socket then.
    let (ready_r, ready_w) = if args.explicit.as_ref().is_some_and(|x| x.pivot_sync) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .sys(|| "socketpair(AF_UNIX, SOCK_STREAM) for init's ready fd".into())?
    } else {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?
    };
    let go = match gate {
        Some(_) => Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?),
        None => None,
    };
    let mut flags = match &args.explicit {
        Some(x) => x.clone_flags,
        None => libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID,
    };
    // --userns: the child waits on this socket until the host has set up its user
    // namespace, and gets the idmapped layers with the go-ahead (handoff()).
    let handoff = match &args.userns {
        Some(_) => {
            flags |= libc::CLONE_NEWUSER;
            let (p, c) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::SeqPacket,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .sys(|| "socketpair(AF_UNIX, SOCK_SEQPACKET)".into())?;
            Some((p, c))
        }
        None => None,
    };
    // A user namespace joined by path: the child joins it, then makes the others.
    let join_user = match args.explicit.as_ref().and_then(|x| x.join_user.as_ref()) {
        Some(path) => Some(userns::JoinUser::prepare(path, &mut flags)?),
        None => None,
    };
    let host_joins = args.userns.is_some() || join_user.is_some();
    const WHAT: &str = "clone(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID)";
    log::debug!("{WHAT}{} + exec {}", if handoff.is_some() { "+CLONE_NEWUSER" } else { "" }, args.argv().join(" "));
    // A user namespace's child joins no netns the host owns later (setns needs the
    // host's CAP_SYS_ADMIN): it is born in it, cloned from a thread that is there.
    let host_netns = args.explicit.as_ref().is_some_and(|x| x.host_enters_netns(&args.netns));
    let in_netns = match host_joins {
        // An OCI container without a netns of its own stays in the host's.
        true if args.netns.as_os_str().is_empty() => None,
        true => Some(userns::InNetns::enter(&args.netns)?),
        false if host_netns => Some(userns::InNetns::enter(&args.netns)?),
        false => None,
    };
    // Namespaces joined by path (an OCI bundle's): this thread enters them, the
    // child is born in them (a joined pid namespace too: setns(CLONE_NEWPID) only
    // sets the namespace of this thread's children), and this thread goes back.
    let joined = match &args.explicit {
        Some(x) if !x.joins.is_empty() => Some(crate::nsjoin::Joined::enter(&x.joins)?),
        _ => None,
    };
    // --userns on cgroup v1: init, root of its user namespace only, may not open the
    // host root's cgroup files; the child writes "0" into these, opened here.
    let mut join_files = vec![];
    let child = match born_in_cgroup(args, flags)? {
        Some(child) => child,
        None => {
            // Not cloned (no CLONE_INTO_CGROUP here): init (with --userns the child) joins its cgroups.
            if host_joins {
                for d in &args.cgroup_dirs {
                    join_files.push(crate::cgroup::join_file(d)?);
                }
            }
            argv = sys::cstrings(&InitArgs { born_in_cgroup: false, ..args.clone() }.argv())?;
            sys::clone_into_namespaces(flags, WHAT)?
        }
    };
    // init's fds, above an OCI caller's --preserve-fds range (contract_spec::Fds).
    let fds = crate::contract_spec::Fds::of(args);
    let (ready_fd, init_fd, seccomp_fd) = (fds.ready, fds.init, fds.seccomp);
    // The run options' records sit after the layers (contract_run.rs); hsrun's after the preserved fds.
    let spec_fd = if args.explicit.is_some() { fds.spec } else { spec_fd };
    let Some(pid) = child else {
        // The child: PID 1 of the new pid namespace. Only its own fds from here to exec.
        sys::reset_signals_in_child();
        if let Some((r, w)) = &go {
            // Our copy of the write end closed, EOF says the host gave up.
            let _ = nix::unistd::close(w.as_raw_fd());
            if !matches!(sys::read_byte_fd(r.as_raw_fd()), Ok(true)) {
                sys::exit_child(125);
            }
        }
        let console = match stdio {
            Some(ChildStdio::Console { sock, .. }) => Some(sock),
            _ => None,
        };
        ChildStdio::install_in_child(stdio);
        if let Some(j) = &join_user {
            // The cgroups first, as the host's root still (files the host opened).
            let joined = join_files.iter().try_for_each(|(f, _)| sys::write_all_fd(f.as_raw_fd(), b"0"));
            if let Err(e) = joined.and_then(|()| j.in_child()) {
                let e = Error::sys(format!("join the user namespace {}: setns, setresuid(0), unshare", j.path), e);
                sys::write_fd(ready_w.as_raw_fd(), contract::error_line(&e).as_bytes());
                sys::exit_child(125);
            }
        }
        let mut layers = [0; sys::MAX_FDS];
        let mut nlayers = 0;
        if let Some((p, c)) = &handoff {
            // Our copy of the host's end: without it, EOF says the host gave up.
            let _ = nix::unistd::close(p.as_raw_fd());
            // "0" is the writing thread (tasks, v1) and the file was opened by the
            // host's root, whose credentials the kernel checks: no grace period, no
            // privilege needed now. Then the ids, once the host has written the maps.
            let joined = join_files.iter().try_for_each(|(f, _)| sys::write_all_fd(f.as_raw_fd(), b"0"));
            match joined.and_then(|()| sys::recv_fds_in_child(c.as_raw_fd(), &mut layers)).and_then(|n| {
                sys::become_root_in_child()?;
                Ok(n)
            }) {
                Ok(n) => nlayers = n,
                Err(e) => {
                    let e = Error::sys("wait for the host to map the user namespace", e);
                    sys::write_fd(ready_w.as_raw_fd(), contract::error_line(&e).as_bytes());
                    sys::exit_child(125);
                }
            }
        }
        // Move all out of the way first: any may sit on fd 3, 4, 5 or 6.. now.
        let (w, img) = (sys::dup_high(ready_w.as_raw_fd()), sys::dup_high(image.as_raw_fd()));
        let bpf = filter.as_ref().map(|f| sys::dup_high(f.as_raw_fd()));
        let spec = records.as_ref().map(|f| sys::dup_high(f.as_raw_fd()));
        let console = console.map(sys::dup_high);
        for l in &mut layers[..nlayers] {
            *l = sys::dup_high(*l);
        }
        let mut placed = sys::place_fd(w, ready_fd, false)
            .and_then(|()| sys::place_fd(img, init_fd, true))
            .and_then(|()| bpf.map_or(Ok(()), |f| sys::place_fd(f, seccomp_fd, false)));
        // The layers' (and idmapped volumes') fds from LOWER_FD on, the records
        // after them (spec_fd: SPEC_FD when there are none; with --preserve-fds N,
        // hsrun's containers have no layers and every fd of ours moves up by N).
        for (i, l) in layers[..nlayers].iter().enumerate() {
            placed = placed.and_then(|()| sys::place_fd(*l, init::flag::LOWER_FD + i as RawFd, false));
        }
        placed = placed.and_then(|()| spec.map_or(Ok(()), |f| sys::place_fd(f, spec_fd, false)));
        // The console socket right after the records (only hsrun's containers have
        // one, and they have no layers: spec_fd + 1 is contract_spec's CONSOLE_FD).
        placed = placed.and_then(|()| console.map_or(Ok(()), |f| sys::place_fd(f, spec_fd + 1, false)));
        // Nothing else of the host may reach the container: every fd our caller left
        // open without O_CLOEXEC would otherwise be init's, readable through /proc/1/fd.
        sys::close_from(match (nlayers, bpf) {
            _ if console.is_some() => spec_fd + 2,
            _ if spec.is_some() => spec_fd + 1,
            (n, _) if n > 0 => init::flag::LOWER_FD + n as RawFd,
            (_, Some(_)) => seccomp_fd + 1,
            _ => init_fd + 1,
        });
        if bpf.is_none() && (nlayers > 0 || spec.is_some()) {
            let _ = nix::unistd::close(seccomp_fd); // a gap below the layers
        }
        let errno = match placed {
            Ok(()) => sys::exec_fd(init_fd, &argv, &envp),
            Err(e) => e,
        };
        let mut e = Error::sys(format!("exec {}", args.init_bin.display()), errno);
        // Debian's 5.10 fails execveat(fd, "", AT_EMPTY_PATH) with ENOENT when
        // /dev/fd is missing (measured in the bullseye VM, docs/hosts.md; 6.1 does not).
        if errno == nix::errno::Errno::ENOENT && !std::path::Path::new("/dev/fd").exists() {
            e = e.hint(
                "init is exec'd from an fd, which this kernel resolves through /dev/fd: ln -s /proc/self/fd /dev/fd",
            );
        }
        sys::write_fd(ready_fd, contract::error_line(&e).as_bytes());
        sys::exit_child(125);
    };
    drop(in_netns);
    drop(joined);
    drop(ready_w);
    // The gate before a joined user namespace's second clone: the child waits on it
    // first, and the grandchild (CLONE_PARENT) is born in the cgroup the gate put it in.
    if let (Some((r, w)), Some(gate)) = (go, gate) {
        drop(r);
        let opened = gate(pid.as_raw()).and_then(|()| {
            sys::write_all_fd(w.as_raw_fd(), b"g").map_err(|e| Error::sys(format!("let init {pid} go on"), e))
        });
        if let Err(e) = opened {
            // Our own child, just cloned and still waiting for us.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = sys::wait_exit(pid);
            return Err(e);
        }
    }
    let ready = File::from(ready_r);
    let (pid, ready) = match join_user {
        Some(j) => j.init_pid(pid, ready)?,
        None => (pid, ready),
    };
    if let (Some((parent, child)), Some(u)) = (handoff, &args.userns) {
        drop(child);
        if let Err(e) = hand_off(pid.as_raw(), u, args, &parent) {
            // Our own child, just cloned and still waiting for us.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = sys::wait_exit(pid);
            return Err(e);
        }
    }
    Ok((pid, ready))
}

/// The host's side of starting init in its user namespace, while the child waits
/// on `sock`: the maps, then the idmapped layers sent with the go-ahead. Until
/// the maps exist the child is no one in its namespace; it becomes its root
/// (sys::become_root_in_child) once it has them.
fn hand_off(pid: i32, u: &contract::Userns, args: &InitArgs, sock: &OwnedFd) -> Result<()> {
    log::debug!("write uid_map and gid_map of {pid}: {}", u.ids.describe());
    userns::write_maps(pid, &u.ids)?;
    let mut layers = userns::idmapped_layers(pid, &args.lower)?;
    if let Some(r) = &args.run {
        layers.extend(userns::idmapped_volumes(pid, &r.idmapped)?);
    }
    if layers.len() > sys::MAX_FDS {
        return Err(crate::usage!("--userns: at most {} layers and volumes", sys::MAX_FDS));
    }
    log::debug!("send {} idmapped layer and volume mounts to {pid}", layers.len());
    sys::send_fds(sock, &layers).sys(|| format!("sendmsg(SCM_RIGHTS) of the layers to {pid}"))
}

/// init born in its cgroup (`clone_into_cgroup`) if `args` asks for it (v2).
fn born_in_cgroup(args: &InitArgs, flags: libc::c_int) -> Result<Option<Option<Pid>>> {
    match args.cgroup_dirs.first().filter(|_| args.born_in_cgroup) {
        Some(dir) => clone_into_cgroup(dir, flags),
        None => Ok(None),
    }
}

/// cgroup v2: clone3 with CLONE_INTO_CGROUP, so the child starts in cgroup `dir`
/// and is never migrated (a migration takes cgroup_threadgroup_rwsem for writing,
/// which costs an RCU grace period, milliseconds, when it is not already held).
/// Like fork: Some(None) in the child, Some(Some(pid)) in the parent. None if the
/// kernel cannot (before 5.7): then the caller clones and the child joins.
pub fn clone_into_cgroup(dir: &Path, flags: libc::c_int) -> Result<Option<Option<Pid>>> {
    let what = || format!("clone3(CLONE_INTO_CGROUP, {})", dir.display());
    let fd = File::open(dir).sys(|| format!("open {}", dir.display()))?;
    log::debug!("{}", what());
    match sys::clone3_into_cgroup(flags, fd.as_raw_fd()) {
        Ok(child) => Ok(Some(child)),
        Err(e) if sys::clone3_unsupported(e) => {
            log::debug!("{}: {e}: not on this kernel, clone and join instead", what());
            Ok(None)
        }
        Err(e) => Err(Error::sys(what(), e)),
    }
}

/// Read init's ready report until EOF (contract::parse_ready says what it means).
pub fn wait_ready(ready: File, timeout: Duration) -> Result<()> {
    wait_ready_at(ready, timeout, None)
}

/// As wait_ready; with PIVOT_SYNC, init says `pivot` first and waits: `at_pivot`
/// runs (the runtime's hooks), then init gets `go`, or `abort` and its error is
/// `at_pivot`'s. The time `at_pivot` takes does not count against `timeout`.
pub fn wait_ready_at(mut ready: File, timeout: Duration, mut at_pivot: Option<&mut AtPivot>) -> Result<()> {
    let mut text = String::new();
    let mut deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    let mut failed = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        match nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => return Err(crate::failed!("init did not report ready within {} s", timeout.as_secs())),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll init's ready pipe", e)),
        }
        match ready.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // init closed its socket with our `abort` partly unread: ECONNRESET.
            Err(_) if failed.is_some() => break,
            Err(e) => return Err(e).sys(|| "read init's ready pipe".into()),
        }
        if let (Some(f), Some(rest)) = (at_pivot.as_mut(), text.strip_prefix("pivot\n")) {
            text = rest.to_string();
            let r = f();
            // init may have died meanwhile: then the write fails and EOF follows.
            let _ = ready.write_all(if r.is_ok() { b"go\n" } else { b"abort\n" });
            failed = r.err();
            at_pivot = None;
            deadline = Instant::now() + timeout;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    contract::parse_ready(&text)
}
