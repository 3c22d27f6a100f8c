//! The one place in host-setup for `unsafe`: the system calls that nix does not
//! wrap safely (or wraps in a way that does not fit a forked child), each with why
//! it is sound here. Everything else in host-setup uses these or nix.
//!
//! Two facts make the child-side calls sound: host-setup is single-threaded whenever
//! it forks or clones (its only threads, for netlink in another netns, are scoped
//! and joined before it returns), so a child may allocate; and between fork and
//! exec a child only touches its own copies of memory and fds.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::error::{Error, Result, SysContext};

// --- locks ----------------------------------------------------------------------

/// flock(LOCK_EX) on `file`; with `wait` false, LOCK_NB: Ok(false) if another
/// holds it. The lock belongs to the open file description: closing our fd in a
/// forked child does not release it for the parent (nix's `Flock` unlocks on drop,
/// which would).
pub fn flock(file: &File, wait: bool) -> std::result::Result<bool, Errno> {
    let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    // SAFETY: flock on an fd we own for the duration of the call; no memory is passed.
    match unsafe { libc::flock(file.as_raw_fd(), op) } {
        0 => Ok(true),
        _ => match Errno::last() {
            Errno::EWOULDBLOCK if !wait => Ok(false),
            e => Err(e),
        },
    }
}

// --- processes ------------------------------------------------------------------

/// fork(). Ok(None) in the child.
pub fn fork(what: &str) -> Result<Option<Pid>> {
    // SAFETY: host-setup is single-threaded when it forks (see the module doc), so
    // the child's copy of every lock and allocator is consistent.
    match unsafe { nix::unistd::fork() }.sys(|| what.to_string())? {
        ForkResult::Child => Ok(None),
        ForkResult::Parent { child } => Ok(Some(child)),
    }
}

/// clone() with namespace flags and no new stack: like fork(), the child runs on a
/// copy of this stack, but it starts in new namespaces. Ok(None) in the child.
pub fn clone_into_namespaces(flags: libc::c_int, what: &str) -> Result<Option<Pid>> {
    // SAFETY: without CLONE_VM and with a null stack the kernel gives the child a
    // copy-on-write copy of our memory, exactly as fork() does; single-threaded as above.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    match ret {
        r if r < 0 => Err(Error::sys(what, Errno::last())),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// clone3's `struct clone_args` (linux/sched.h), up to `cgroup` (Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// CLONE_INTO_CGROUP (linux/sched.h; clone3 only, cgroup v2 only, Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3() with CLONE_INTO_CGROUP: like `clone_into_namespaces`, but the child is
/// born in the cgroup v2 directory open at `cgroup`, so nobody has to move it there
/// (no write to cgroup.procs, no migration). Ok(None) in the child. The errno on
/// failure: ENOSYS (no clone3, before 5.3), E2BIG or EINVAL (no CLONE_INTO_CGROUP,
/// before 5.7) mean "not on this kernel".
pub fn clone3_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> std::result::Result<Option<Pid>, Errno> {
    let mut args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    // SAFETY: as for clone_into_namespaces: no CLONE_VM and no stack, so the child
    // gets a copy-on-write copy of our memory, exactly as with fork(), and we are
    // single-threaded; `args` lives across the call and its size is passed with it.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        r if r < 0 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Whether a clone3_into_cgroup errno means the kernel cannot do it at all.
pub fn clone3_unsupported(e: Errno) -> bool {
    matches!(e, Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL)
}

/// _exit(): leave a forked child without running the parent's atexit handlers or
/// flushing its copies of the parent's buffers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// An exit code the shell's way: the code, or 128+N for a death by signal N.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Wait for `child` to end (retrying on EINTR); its exit code.
pub fn wait_exit(child: Pid) -> Result<i32> {
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

/// The exit code of `child` if it has ended, without waiting.
pub fn try_wait(child: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(st) => match exit_code(st) {
                Some(code) => return Ok(Some(code)),
                None => continue,
            },
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("waitpid {child}"), e)),
        }
    }
}

// --- signals --------------------------------------------------------------------

/// A set of signals.
pub fn sigset(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    set
}

/// Block `set` in this thread (before forking, so that none is lost).
pub fn block(set: &SigSet) -> Result<()> {
    set.thread_block().sys(|| "sigprocmask(SIG_BLOCK)".into())
}

/// One pending signal of `set` (blocked by the caller), taken without waiting.
pub fn take_pending(set: &SigSet) -> Option<Signal> {
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid sigset and timespec for the call; the siginfo pointer may be null.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
    Signal::try_from(n).ok()
}

/// Wait up to `timeout` for a signal of `set` (blocked by the caller) and take it.
pub fn wait_signal(set: &SigSet, timeout: std::time::Duration) -> Option<Signal> {
    let t = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
    loop {
        // SAFETY: a valid sigset and timespec for the call; the siginfo pointer may be null.
        let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &t) };
        // EINTR: another signal's handler ran (a stop and continue); wait again.
        if n >= 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            return Signal::try_from(n).ok();
        }
    }
}

/// In a freshly forked child, before execve: no blocked signals and default
/// dispositions, whatever host-setup had set for itself. Async-signal-safe.
pub fn reset_signals_in_child() {
    let _ = SigSet::empty().thread_set_mask();
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler of ours, so no Rust code can run in a
        // signal context because of it.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
}

// --- fds and exec ---------------------------------------------------------------

/// argv or envp as C strings (a NUL inside is a usage error: it cannot be passed).
pub fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| crate::usage!("argument {s:?} contains a NUL byte")))
        .collect()
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): exec the file open at `fd` (the
/// sealed init). Returns only on failure, with the errno.
pub fn exec_fd(fd: RawFd, argv: &[CString], envp: &[CString]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to C strings that
    // live until the call returns (on success it does not return at all).
    unsafe { libc::syscall(libc::SYS_execveat, fd, c"".as_ptr(), a.as_ptr(), e.as_ptr(), libc::AT_EMPTY_PATH) };
    Errno::last()
}

/// In a forked child: put `from` on fd `to` (dup2, which clears FD_CLOEXEC on the
/// copy), then set FD_CLOEXEC on it again if `cloexec`.
pub fn place_fd(from: RawFd, to: RawFd, cloexec: bool) -> std::result::Result<(), Errno> {
    // SAFETY: dup2/fcntl on fd numbers only; in the child they are its own copies.
    unsafe {
        if libc::dup2(from, to) < 0 {
            return Err(Errno::last());
        }
        if cloexec && libc::fcntl(to, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// In a forked child: a copy of `fd` at 100 or above, close-on-exec (to move it out
/// of the way of the fd numbers the child is about to fill).
pub fn dup_high(fd: RawFd) -> RawFd {
    // SAFETY: fcntl on an fd number only.
    unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) }
}

/// write(2) to an fd known by number (a forked child's ready pipe); best effort.
pub fn write_fd(fd: RawFd, bytes: &[u8]) {
    let _ = write_all_fd(fd, bytes);
}

/// write(2) of all of `bytes` at once, or its errno. Async-signal-safe: for a
/// forked child (a cgroup file takes a write whole or not at all).
pub fn write_all_fd(fd: RawFd, bytes: &[u8]) -> std::result::Result<(), Errno> {
    // SAFETY: the kernel reads bytes.len() bytes from a live slice.
    match unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) } {
        n if n == bytes.len() as isize => Ok(()),
        n if n < 0 => Err(Errno::last()),
        _ => Err(Errno::EIO),
    }
}

/// Wait for one byte on `fd` (a go-ahead pipe): Ok(true) for the byte, Ok(false)
/// at EOF (the writer gave up). Async-signal-safe: for a forked child.
pub fn read_byte_fd(fd: RawFd) -> std::result::Result<bool, Errno> {
    let mut b = 0u8;
    loop {
        // SAFETY: the kernel writes at most 1 byte into a live local.
        match unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) } {
            1 => return Ok(true),
            0 => return Ok(false),
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Errno::last()),
        }
    }
}

/// Close every fd from `first` on (close_range; before Linux 5.9, one by one up to
/// the fd limit). Async-signal-safe: for a forked child.
pub fn close_from(first: RawFd) {
    // SAFETY: closing fd numbers touches no memory; the caller (a child about to
    // exec) owns no Rust object wrapping these fds that it will use again.
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
    for fd in open.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: the fds a daemonising process inherited and will not use; the
        // File objects it keeps are in `keep`.
        unsafe { libc::close(fd) };
    }
}

/// fds 0, 1 and 2 must be open before any pipe is made, or a pipe could land on
/// one of them and be taken for stdin/stdout.
pub fn ensure_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the fd number is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        if let Ok(f) = File::options().read(true).write(true).open("/dev/null") {
            if f.as_raw_fd() == fd {
                std::mem::forget(f); // it is fd `fd` now, for good
            } else {
                let _ = place_fd(f.as_raw_fd(), fd, false);
            }
        }
    }
}

/// Own an fd that arrived as a number (a pipe end after fork, a bpf program).
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass an fd that is open and that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// --- terminals ------------------------------------------------------------------

/// In a forked child, before exec: a new session (out of host-setup's, so the
/// user's terminal is never its controlling terminal) and, given a terminal, that
/// one as controlling terminal on fds 0, 1 and 2. Async-signal-safe.
pub fn new_session_in_child(tty: Option<RawFd>) {
    let _ = nix::unistd::setsid();
    if let Some(tty) = tty {
        // SAFETY: TIOCSCTTY takes an int argument, no pointer.
        unsafe { libc::ioctl(tty, libc::TIOCSCTTY, 0) };
        for fd in 0..3 {
            let _ = place_fd(tty, fd, false);
        }
    }
}

// --- bpf ------------------------------------------------------------------------

/// bpf(cmd, attr, sizeof attr). `A` must be a `#[repr(C)]` prefix of the kernel's
/// `union bpf_attr` for `cmd` (the kernel zero-extends a short attr).
pub fn bpf<A>(cmd: libc::c_long, attr: &A) -> std::result::Result<i64, Errno> {
    // SAFETY: the kernel reads size_of::<A>() bytes of `attr`, which is valid for
    // that long; the pointers inside it (instructions, log buffer) are the
    // caller's, valid for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const A, std::mem::size_of::<A>()) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// pidfd_open(2): an fd that becomes readable when `pid` ends (turns zombie), to
/// wait on with poll instead of looking at /proc again and again. Linux 5.3+.
pub fn pidfd_open(pid: i32) -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new fd that
    // nothing else owns; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just gave us this fd, open and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// malloc_trim(0): give the heap's free pages back to the kernel. The supervisor
/// is a fork of host-setup that then idles for the container's whole life: every
/// page of the parent's heap it still maps is its own once the parent has gone.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own heap; the process is single-threaded
    // and no allocation is under way in this call.
    unsafe { libc::malloc_trim(0) };
}

/// Clear FD_CLOEXEC on `fd`: keep it open across the next exec.
pub fn keep_on_exec(fd: RawFd) -> std::result::Result<(), Errno> {
    // SAFETY: fcntl(F_SETFD) on an fd number only; no memory is passed.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_the_shell_way() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(p, 7)), Some(7));
        assert_eq!(exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)), Some(137));
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn nul_in_argv_is_a_usage_error() {
        assert_eq!(cstrings(&["a\0b".into()]).unwrap_err().exit_code(), 2);
        assert_eq!(cstrings(&["ls".into(), "-l".into()]).unwrap().len(), 2);
    }
}

mod fs;
mod net;
mod tty;
mod userns;
/// Extended attributes by path (image unpacking, tests): `sys::xattr::set`.
pub mod xattr;
pub use fs::*;
pub use net::*;
pub use tty::*;
pub use userns::*;
