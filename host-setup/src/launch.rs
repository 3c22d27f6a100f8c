//! Start init as PID 1 of new namespaces — the tutorial's
//! `unshare -m -u -i -fp nsenter --net=/var/run/netns/RED /bin/sh` — and wait until
//! it reports that the main process runs.
//!
//! host-setup clones the child straight into new mount, UTS, IPC and PID
//! namespaces (clone flags, not unshare in this process: pivot_root would re-root
//! every task of a shared mount namespace, and CLONE_NEWPID only applies to
//! children). The child execs the static `init`, which does the rest from inside:
//! joins the cgroups, enters the netns, mounts the overlay, pivot_roots, mounts
//! /proc, drops put_old, sets the hostname and starts the command.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};

/// How long init may take to report ready before we give up on it.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The fd on which init reports readiness (`init --ready-fd 3`).
const READY_FD: RawFd = 3;

/// Everything init needs to know, turned into its command line.
#[derive(Debug, Clone)]
pub struct InitArgs {
    pub init_bin: PathBuf,
    pub cgroup_dirs: Vec<PathBuf>,
    pub netns: PathBuf,
    pub rootfs: PathBuf,
    /// Overlay lower dirs, topmost first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub hostname: String,
    /// The main process; empty: `--pause`.
    pub command: Vec<String>,
    pub pid1: crate::spec::Pid1,
    /// Contain the container (init --cgroupns --dev --mask-proc --restrict); false
    /// with --privileged.
    pub contain: bool,
}

/// init's containment flags: a cgroup namespace, a minimal /dev, a masked /proc,
/// and for the command Docker's default capabilities plus no_new_privs.
pub const CONTAIN_FLAGS: [&str; 4] = ["--cgroupns", "--dev", "--mask-proc", "--restrict"];

impl InitArgs {
    pub fn argv(&self, ready_fd: Option<RawFd>) -> Vec<String> {
        let mut a = vec![self.init_bin.display().to_string()];
        for d in &self.cgroup_dirs {
            a.extend(["--cgroup".into(), d.display().to_string()]);
        }
        a.extend(["--netns".into(), self.netns.display().to_string()]);
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        a.extend(["--lower".into(), lower.join(":")]);
        a.extend(["--upper".into(), self.upper.display().to_string()]);
        a.extend(["--work".into(), self.work.display().to_string()]);
        a.extend(["--rootfs".into(), self.rootfs.display().to_string()]);
        a.extend(["--hostname".into(), self.hostname.clone()]);
        if self.contain {
            a.extend(CONTAIN_FLAGS.iter().map(|f| f.to_string()));
        }
        if let Some(fd) = ready_fd {
            a.extend(["--ready-fd".into(), fd.to_string()]);
        }
        if self.command.is_empty() {
            a.push("--pause".into());
        } else {
            match self.pid1 {
                crate::spec::Pid1::Supervise => {}
                crate::spec::Pid1::SuperviseGroup => a.push("--pgroup".into()),
                crate::spec::Pid1::Exec => a.push("--exec".into()),
            }
            a.push("--".into());
            a.extend(self.command.iter().cloned());
        }
        a
    }

    /// The tutorial's shell commands for what init does (section 4-1 3) to 4-2 5)).
    pub fn explain(&self) -> Vec<String> {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        let mut out = vec![format!(
            "unshare -m -u -i -fp nsenter --net={} /bin/sh   # new mount, UTS, IPC and PID namespaces; in there:",
            self.netns.display()
        )];
        for d in &self.cgroup_dirs {
            out.push(format!("  echo 0 > {}/cgroup.procs", d.display()));
        }
        let merge = self.rootfs.display();
        out.extend([
            "  mount --make-rprivate /".to_string(),
            format!(
                "  mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {merge}",
                lower.join(":"),
                self.upper.display(),
                self.work.display()
            ),
            format!("  mkdir -p {merge}/put_old; cd {merge}; pivot_root . put_old; cd /"),
            "  mount -t proc proc /proc".to_string(),
            "  umount -l /put_old; rmdir /put_old".to_string(),
            format!("  hostname {}", self.hostname),
        ]);
        if self.contain {
            out.extend([
                "  # containment, not in the tutorial (--privileged leaves it out):".to_string(),
                "  unshare -C                                   # init, after joining the cgroups: a cgroup namespace".to_string(),
                "  mount -t tmpfs tmpfs /dev; mknod /dev/null c 1 3 ...   # null zero full random urandom tty, devpts, shm"
                    .to_string(),
                "  mount --bind /dev/null /proc/kcore ...; mount -o remount,bind,ro /proc/sys ...".to_string(),
                "  capsh --drop=<all but Docker's default set> --no-new-privs --   # for the command".to_string(),
            ]);
        }
        out.push(if self.command.is_empty() {
            "  # init stays PID 1 and waits (--pause); enter with host-setup exec".to_string()
        } else {
            format!("  exec {}", self.command.join(" "))
        });
        out
    }
}

/// The environment of everything that runs in a container: nothing of the host's
/// but the terminal type (and RUST_LOG, so `RUST_LOG=debug` traces init too).
pub fn container_env() -> Vec<String> {
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(), "HOME=/".to_string()];
    env.push(format!("TERM={}", std::env::var("TERM").unwrap_or_else(|_| "xterm".into())));
    if let Ok(l) = std::env::var("RUST_LOG") {
        env.push(format!("RUST_LOG={l}"));
    }
    env
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| crate::usage!("argument {s:?} contains a NUL byte")))
        .collect()
}

/// The signals host-setup passes on to the container (run, exec) instead of
/// reacting to them itself.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    set
}

/// In a freshly forked child, before execve: no blocked signals and default
/// dispositions, whatever host-setup had set for itself.
pub fn reset_signals_in_child() {
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// A sealed in-memory copy of the init binary, to exec instead of the file.
///
/// runc's CVE-2019-5736: a process in the container opened /proc/PID/exe of a
/// host binary that had been exec'd into the container and wrote to it, replacing
/// the runtime on the host. Exec'ing init from a memfd sealed against writes,
/// growth and shrinking leaves nothing on the host's disk to reach that way.
pub fn sealed_init(path: &std::path::Path) -> Result<OwnedFd> {
    let name = c"host-setup-init";
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::sys("memfd_create(host-setup-init)", Errno::last()));
    }
    let fd = owned(fd);
    let mut src = File::open(path).sys(|| format!("open {}", path.display()))?;
    let mut dst = File::from(fd.try_clone().sys(|| "dup memfd".into())?);
    std::io::copy(&mut src, &mut dst).sys(|| format!("copy {} into a memfd", path.display()))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(Error::sys("fcntl(memfd, F_ADD_SEALS)", Errno::last()));
    }
    Ok(fd)
}

/// execveat(fd, "", AT_EMPTY_PATH): exec the file open at `fd` (async-signal-safe;
/// returns only on failure).
///
/// # Safety
/// `argv` and `envp` are NULL-terminated arrays of C strings.
pub unsafe fn exec_fd(fd: RawFd, argv: *const *const libc::c_char, envp: *const *const libc::c_char) {
    libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), argv, envp, libc::AT_EMPTY_PATH);
}

/// The fd number init's image has in the child, between clone and exec.
const INIT_FD: RawFd = READY_FD + 1;

/// Clone a child into new mount, UTS, IPC and PID namespaces and exec init in it,
/// on the terminal `console` if given (a new session with it as the controlling
/// terminal). Returns init's (host) pid and the read end of its ready pipe.
pub fn spawn(args: &InitArgs, console: Option<RawFd>) -> Result<(Pid, File)> {
    let argv = cstrings(&args.argv(Some(READY_FD)))?;
    let envp = cstrings(&container_env())?;
    let image = sealed_init(&args.init_bin)?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?;
    log::debug!(
        "clone(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID) + exec {}",
        args.argv(Some(READY_FD)).join(" ")
    );

    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
    // clone() without a new stack behaves like fork() (the child gets a copy of this
    // stack), but takes namespace flags. host-setup is single-threaded here.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if ret < 0 {
        return Err(Error::sys("clone(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID)", Errno::last()));
    }
    if ret == 0 {
        // Child: PID 1 of the new pid namespace. Only async-signal-safe calls until exec.
        unsafe {
            reset_signals_in_child();
            crate::tty::attach_in_child(console);
            // Move both out of the way first: either may sit on fd 3 or 4 now.
            let w = libc::fcntl(ready_w.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100);
            let img = libc::fcntl(image.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100);
            libc::dup2(w, READY_FD); // dup2 clears FD_CLOEXEC on the copy: init keeps it
            libc::dup2(img, INIT_FD);
            libc::fcntl(INIT_FD, libc::F_SETFD, libc::FD_CLOEXEC); // gone with the exec
                                                                   // Nothing else of the host may reach the container: every fd our caller
                                                                   // left open without O_CLOEXEC would otherwise be init's, and readable
                                                                   // through /proc/1/fd from inside.
            close_from(INIT_FD + 1);
            let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
            argv_p.push(std::ptr::null());
            let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
            envp_p.push(std::ptr::null());
            exec_fd(INIT_FD, argv_p.as_ptr(), envp_p.as_ptr());
            let msg = format!(
                "error: exec {}: {}\n",
                args.init_bin.display(),
                crate::error::io_text(&std::io::Error::last_os_error())
            );
            libc::write(READY_FD, msg.as_ptr().cast(), msg.len());
            libc::_exit(125);
        }
    }
    drop(ready_w);
    Ok((Pid::from_raw(ret as i32), File::from(ready_r)))
}

/// Read init's ready report until EOF: `ok` (the main process runs) or
/// `error: <message>` (setup failed; init exits).
pub fn wait_ready(mut ready: File, timeout: Duration) -> Result<()> {
    let mut text = String::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [nix::poll::PollFd::new(ready.as_fd_ref(), nix::poll::PollFlags::POLLIN)];
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)) {
            Ok(0) => return Err(crate::failed!("init did not report ready within {} s", timeout.as_secs())),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll init's ready pipe", e)),
        }
        match ready.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).sys(|| "read init's ready pipe".into()),
        }
    }
    parse_ready(&text)
}

/// init's ready report (init/src/ready.rs): `ok`, or
/// `error\t<errno>\t<what>\t<hint>` (errno 0: none; hint may be empty), which
/// becomes the error host-setup would have made itself, printed the same way.
/// `error: <message>` is the line host-setup's own child writes when it cannot
/// exec init at all (`spawn` above).
fn parse_ready(text: &str) -> Result<()> {
    for line in text.lines() {
        if let Some(fields) = line.strip_prefix("error\t") {
            let mut f = fields.splitn(3, '\t');
            let (errno, what, hint) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
            let e = match errno.parse::<i32>().unwrap_or(0) {
                0 => Error::Failed(what.to_string()),
                n => Error::sys(what, Errno::from_raw(n)),
            };
            return Err(if hint.is_empty() { e } else { e.hint(hint) });
        }
        if let Some(message) = line.strip_prefix("error: ") {
            return Err(Error::Failed(message.to_string()));
        }
    }
    if text.lines().any(|l| l == "ok") {
        return Ok(());
    }
    Err(crate::failed!("init exited before it was ready"))
}

trait AsFdRef {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}
impl AsFdRef for File {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
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

/// Exit code the shell way: the code, or 128+N for a death by signal N.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Wait for `child` while passing on every signal in `forwarded_signals()` to it.
/// The caller has blocked those signals (before forking, so none is lost).
pub fn wait_forwarding(child: Pid) -> Result<i32> {
    let set = forwarded_signals();
    loop {
        // The child may have exited before we got here: check first, then sleep.
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st) => {
                if let Some(code) = exit_code(st) {
                    return Ok(code);
                }
                continue;
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("waitpid {child}"), e)),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                log::debug!("forward {sig} to {child}");
                let _ = nix::sys::signal::kill(child, sig);
            }
            Err(_) => {}
        }
    }
}

/// Block the forwarded signals in this process (before forking the child).
pub fn block_forwarded_signals() -> Result<()> {
    forwarded_signals().thread_block().sys(|| "sigprocmask".into())
}

/// Wait for a child without forwarding anything (the supervisor of a background
/// container), retrying on EINTR.
pub fn wait_child(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(st) => {
                if let Some(code) = exit_code(st) {
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("waitpid {child}"), e)),
        }
    }
}

/// Open /dev/null and a log file onto fds 0, 1 and 2 (a background container's
/// supervisor and init: no terminal, and nothing of the caller's pipes kept open).
pub fn redirect_stdio(log: &std::path::Path) -> Result<()> {
    let null = File::open("/dev/null").sys(|| "open /dev/null".into())?;
    let out =
        std::fs::OpenOptions::new().create(true).append(true).open(log).sys(|| format!("open {}", log.display()))?;
    for (from, to) in [(null.as_raw_fd(), 0), (out.as_raw_fd(), 1), (out.as_raw_fd(), 2)] {
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(Error::sys(format!("dup2 {from} {to}"), Errno::last()));
        }
    }
    Ok(())
}

/// fds 0, 1 and 2 must be open before any pipe is made, or a pipe could land on
/// one of them and be taken for stdin/stdout.
pub fn ensure_std_fds() {
    for fd in 0..3 {
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            if let Ok(f) = File::options().read(true).write(true).open("/dev/null") {
                let raw = f.as_raw_fd();
                if raw != fd {
                    unsafe { libc::dup2(raw, fd) };
                } else {
                    std::mem::forget(f);
                }
            }
        }
    }
}

/// Close every fd from `first` on (close_range; on kernels before 5.9, one by one
/// up to the fd limit). Async-signal-safe: for a forked child.
pub fn close_from(first: RawFd) {
    unsafe {
        if libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) == 0 {
            return;
        }
        let max = match libc::sysconf(libc::_SC_OPEN_MAX) {
            n if n > 0 => n.min(1 << 20) as RawFd,
            _ => 1024,
        };
        for fd in first..max {
            libc::close(fd);
        }
    }
}

/// Close every fd above 2 except `keep` (the supervisor, after it detached).
pub fn close_fds_except(keep: &[RawFd]) {
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            unsafe { libc::close(fd) };
        }
    }
}

/// Own an fd from a raw number (after fork, for pipes passed by number).
pub fn owned(fd: RawFd) -> OwnedFd {
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> InitArgs {
        InitArgs {
            init_bin: "/usr/lib/host-setup/init".into(),
            cgroup_dirs: vec![
                "/sys/fs/cgroup/cpu/host-setup/red".into(),
                "/sys/fs/cgroup/memory/host-setup/red".into(),
            ],
            netns: "/run/netns/RED".into(),
            rootfs: "/s/containers/red/merge".into(),
            lower: vec!["/s/layers/tools-1".into(), "/s/layers/myroot-2".into()],
            upper: "/s/containers/red/upper".into(),
            work: "/s/containers/red/work".into(),
            hostname: "RED".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            pid1: Default::default(),
            contain: true,
        }
    }

    #[test]
    fn init_command_line() {
        let a = args(&["/bin/sh", "-c", "echo hi"]).argv(Some(3)).join(" ");
        assert_eq!(
            a,
            "/usr/lib/host-setup/init --cgroup /sys/fs/cgroup/cpu/host-setup/red --cgroup /sys/fs/cgroup/memory/host-setup/red \
             --netns /run/netns/RED --lower /s/layers/tools-1:/s/layers/myroot-2 --upper /s/containers/red/upper \
             --work /s/containers/red/work --rootfs /s/containers/red/merge --hostname RED \
             --cgroupns --dev --mask-proc --restrict --ready-fd 3 -- /bin/sh -c echo hi"
        );
        assert!(args(&[]).argv(None).ends_with(&["--pause".to_string()]));
    }

    #[test]
    fn explain_follows_the_tutorial() {
        let e = args(&[]).explain().join("\n");
        assert!(e.contains("unshare -m -u -i -fp nsenter --net=/run/netns/RED"));
        assert!(e.contains("lowerdir=/s/layers/tools-1:/s/layers/myroot-2,upperdir="));
        assert!(e.contains("pivot_root . put_old"));
        assert!(e.contains("umount -l /put_old"));
    }

    #[test]
    fn ready_reports() {
        assert!(parse_ready("ok\n").is_ok());
        // init's errors come out exactly as host-setup's own, errno included.
        let e = parse_ready("error\t22\tpivot_root(/m, put_old)\t\"/\" is shared\n").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        assert_eq!(e.to_string(), "pivot_root(/m, put_old): EINVAL: invalid argument; \"/\" is shared");
        assert_eq!(
            e.to_string(),
            Error::sys("pivot_root(/m, put_old)", Errno::EINVAL).hint("\"/\" is shared").to_string()
        );
        let e = parse_ready("ok\nerror\t2\texec /bin/nope\t\n").unwrap_err();
        assert_eq!(
            (e.errno(), e.to_string().as_str()),
            (Some(Errno::ENOENT), "exec /bin/nope: ENOENT: no such file or directory")
        );
        // errno 0: a failure without one.
        let e = parse_ready("error\t0\tsomething failed\ta hint\n").unwrap_err();
        assert_eq!((e.errno(), e.to_string().as_str()), (None, "something failed; a hint"));
        // host-setup's own child, when it could not exec init.
        let e = parse_ready("error: exec /x/init: ENOENT: no such file or directory\n").unwrap_err();
        assert_eq!(e.to_string(), "exec /x/init: ENOENT: no such file or directory");
        assert_eq!(parse_ready("").unwrap_err().to_string(), "init exited before it was ready");
    }

    #[test]
    fn container_env_is_clean() {
        let env = container_env();
        assert!(env[0].starts_with("PATH=/usr/local/sbin:"));
        assert!(env.iter().all(|e| !e.starts_with("USER=") && !e.starts_with("SSH_")));
    }
}
