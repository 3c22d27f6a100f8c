//! Thin wrappers over the raw Linux system calls init uses (x86_64, no libc).
//!
//! Every wrapper returns `Result<_, Errno>` straight from the kernel's return
//! value; nothing here retries or prints. Paths are `&CStr` because the kernel
//! wants NUL-terminated strings and init has no allocator to add the NUL.

use core::ffi::{c_char, CStr};
use core::ptr::null;

pub use syscalls::Errno;
use syscalls::{syscall, Sysno};

mod caps;
pub mod files;
mod signals;
pub mod spec;
pub mod tty;

pub use caps::{capget, capset, seccomp_set_filter, CapSets};
pub use signals::{signal_disposition, sigsetmask, sigwait};

pub type Result<T> = core::result::Result<T, Errno>;
/// A process id, process group id or (negative) process group target of kill(2).
pub type Pid = i32;
/// The kernel's sigset_t: bit n-1 stands for signal n (64 signals on x86_64).
pub type SigSet = u64;

// Values from the kernel's uapi headers (x86_64).
pub const AT_FDCWD: isize = -100;
const AT_REMOVEDIR: usize = 0x200;

pub const O_RDONLY: usize = 0;
pub const O_WRONLY: usize = 1;
pub const O_DIRECTORY: usize = 0o200000;
pub const O_CLOEXEC: usize = 0o2000000;
pub const O_PATH: usize = 0o10000000;

pub const MS_RDONLY: usize = 1;
pub const MS_NOSUID: usize = 2;
pub const MS_NODEV: usize = 4;
pub const MS_NOEXEC: usize = 8;
pub const MS_REMOUNT: usize = 32;
pub const MS_BIND: usize = 4096;
pub const MS_REC: usize = 16384;
pub const MS_PRIVATE: usize = 1 << 18;
pub const MNT_DETACH: usize = 2;

pub const CLONE_NEWNET: usize = 0x4000_0000;
pub const CLONE_NEWCGROUP: usize = 0x0200_0000;
pub const S_IFCHR: usize = 0o020000;
pub const WNOHANG: usize = 1;
pub const PR_SET_PDEATHSIG: usize = 1;
pub const PR_SET_DUMPABLE: usize = 4;
pub const PR_SET_NAME: usize = 15;
pub const PR_CAPBSET_READ: usize = 23;
pub const PR_CAPBSET_DROP: usize = 24;
pub const PR_SET_CHILD_SUBREAPER: usize = 36;
const PR_GET_CHILD_SUBREAPER: usize = 37;
pub const PR_SET_NO_NEW_PRIVS: usize = 38;
pub const PR_CAP_AMBIENT: usize = 47;
pub const PR_CAP_AMBIENT_CLEAR_ALL: usize = 4;
const TIOCSPGRP: usize = 0x5410;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const RLIMIT_NOFILE: usize = 7;

pub const SIG_DFL: usize = 0;
pub const SIG_IGN: usize = 1;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGSTOP: i32 = 19;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGSYS: i32 = 31;

// ---- files --------------------------------------------------------------

pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    // SAFETY: the kernel reads buf.len() bytes of the live slice buf.
    unsafe { syscall!(Sysno::write, fd, buf.as_ptr(), buf.len()) }
}

/// write(2) until everything is written (pipes and terminals may take less).
pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into the live slice buf.
    unsafe { syscall!(Sysno::read, fd, buf.as_mut_ptr(), buf.len()) }
}

/// read(2) until `buf` is full or EOF; the count read. Pipes and sockets give what
/// is there, /proc files a page or a record at a time: one read may be short.
pub fn read_full(fd: i32, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn open(path: &CStr, flags: usize) -> Result<i32> {
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::openat, AT_FDCWD, path.as_ptr(), flags, 0) }.map(|fd| fd as i32)
}

/// openat(O_CREAT|O_EXCL|O_WRONLY|O_CLOEXEC) with `mode`: a new empty file.
pub fn create(path: &CStr, mode: usize) -> Result<i32> {
    const O_CREAT_EXCL_WRONLY: usize = 0o100 | 0o200 | 1;
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::openat, AT_FDCWD, path.as_ptr(), O_CREAT_EXCL_WRONLY | O_CLOEXEC, mode) }
        .map(|fd| fd as i32)
}

pub fn close(fd: i32) -> Result<()> {
    // SAFETY: closing an fd touches no memory of ours.
    unsafe { syscall!(Sysno::close, fd) }.map(drop)
}

/// close_range(2) (Linux 5.9). ENOSYS on older kernels: see exec::close_fds_except.
pub fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: closing fds touches no memory of ours.
    unsafe { syscall!(Sysno::close_range, first, last, 0) }.map(drop)
}

/// Marks `fd` close-on-exec; EBADF tells that it is not open.
pub fn set_cloexec(fd: i32) -> Result<()> {
    // SAFETY: F_SETFD takes an integer argument, no pointer.
    unsafe { syscall!(Sysno::fcntl, fd, F_SETFD, FD_CLOEXEC) }.map(drop)
}

/// The soft RLIMIT_NOFILE: one more than the highest fd the process may open.
pub fn nofile_limit() -> Result<u64> {
    let mut lim = [0u64; 2]; // struct rlimit64 { cur, max }

    // SAFETY: no new limit (NULL); the kernel writes the old one into lim.
    unsafe { syscall!(Sysno::prlimit64, 0, RLIMIT_NOFILE, null::<u64>(), lim.as_mut_ptr()) }?;
    Ok(lim[0])
}

/// pipe2(2): [read end, write end].
pub fn pipe2(flags: usize) -> Result<[i32; 2]> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two ints into fds.
    unsafe { syscall!(Sysno::pipe2, fds.as_mut_ptr(), flags) }?;
    Ok(fds)
}

pub fn mkdir(path: &CStr, mode: usize) -> Result<()> {
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::mkdirat, AT_FDCWD, path.as_ptr(), mode) }.map(drop)
}

pub fn rmdir(path: &CStr) -> Result<()> {
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::unlinkat, AT_FDCWD, path.as_ptr(), AT_REMOVEDIR) }.map(drop)
}

/// mknodat(2) relative to the cwd; `dev` as makedev(major, minor) for minors < 256.
pub fn mknod(path: &CStr, mode: usize, major: u32, minor: u32) -> Result<()> {
    let dev = ((major as usize) << 8) | minor as usize;
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::mknodat, AT_FDCWD, path.as_ptr(), mode, dev) }.map(drop)
}

/// symlinkat(2): `link` will point at `target`.
pub fn symlink(target: &CStr, link: &CStr) -> Result<()> {
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    unsafe { syscall!(Sysno::symlinkat, target.as_ptr(), AT_FDCWD, link.as_ptr()) }.map(drop)
}

/// umask(2): sets the mask, returns the previous one (it cannot fail).
pub fn umask(mask: usize) -> usize {
    // SAFETY: umask takes an integer and cannot fail.
    unsafe { syscall!(Sysno::umask, mask) }.unwrap_or(0)
}

pub fn chdir(path: &CStr) -> Result<()> {
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::chdir, path.as_ptr()) }.map(drop)
}

// ---- mounts and namespaces ---------------------------------------------

fn opt_ptr(s: Option<&CStr>) -> *const c_char {
    s.map_or(null(), CStr::as_ptr)
}

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: usize,
    data: Option<&CStr>,
) -> Result<()> {
    // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::mount, opt_ptr(source), target.as_ptr(), opt_ptr(fstype), flags, opt_ptr(data)) }.map(drop)
}

/// move_mount(2) of the detached mount `fd` onto `target` (MOVE_MOUNT_F_EMPTY_PATH).
pub fn attach_mount(fd: i32, target: &CStr) -> Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: usize = 4;
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    unsafe { syscall!(Sysno::move_mount, fd, c"".as_ptr(), AT_FDCWD, target.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH) }
        .map(drop)
}

pub fn umount2(target: &CStr, flags: usize) -> Result<()> {
    // SAFETY: target is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::umount2, target.as_ptr(), flags) }.map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<()> {
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    unsafe { syscall!(Sysno::pivot_root, new_root.as_ptr(), put_old.as_ptr()) }.map(drop)
}

pub fn sethostname(name: &[u8]) -> Result<()> {
    // SAFETY: the kernel reads name.len() bytes of the live slice name.
    unsafe { syscall!(Sysno::sethostname, name.as_ptr(), name.len()) }.map(drop)
}

pub fn unshare(flags: usize) -> Result<()> {
    // SAFETY: unshare takes flags only.
    unsafe { syscall!(Sysno::unshare, flags) }.map(drop)
}

pub fn setns(fd: i32, nstype: usize) -> Result<()> {
    // SAFETY: setns takes an fd and flags only.
    unsafe { syscall!(Sysno::setns, fd, nstype) }.map(drop)
}

// ---- processes ------------------------------------------------------------

/// fork(2) as clone(SIGCHLD): 0 in the child, the child's pid in the parent.
/// The child runs on a copy of the parent's stack, exactly as after libc's fork.
pub fn fork() -> Result<Pid> {
    // SAFETY: clone without CLONE_VM or a new stack is fork(2): the child
    // gets a copy of our memory and returns here with 0.
    unsafe { syscall!(Sysno::clone, SIGCHLD, 0, 0, 0, 0) }.map(|p| p as Pid)
}

/// execve(2); it only returns on failure.
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of C strings.
pub unsafe fn execve(path: &CStr, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    // SAFETY: path is NUL-terminated; argv and envp are as the caller promised.
    match syscall!(Sysno::execve, path.as_ptr(), argv, envp) {
        Ok(_) => Errno::EINVAL, // unreachable: a successful execve does not return
        Err(e) => e,
    }
}

/// exit_group(2): ends the whole process with `code` (0..=255).
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group does not return and touches no memory of ours.
        let _ = unsafe { syscall!(Sysno::exit_group, code) };
    }
}

/// wait4(2) without rusage: the reaped pid (0 with WNOHANG if none is ready) and its status.
pub fn wait4(pid: Pid, options: usize) -> Result<(Pid, i32)> {
    let mut status: i32 = 0;
    // SAFETY: the kernel writes the status into the live int; no rusage (NULL).
    let pid = unsafe { syscall!(Sysno::wait4, pid, &mut status as *mut i32, options, 0) }?;
    Ok((pid as Pid, status))
}

pub fn kill(pid: Pid, sig: i32) -> Result<()> {
    // SAFETY: kill takes integers only.
    unsafe { syscall!(Sysno::kill, pid, sig) }.map(drop)
}

pub fn getpid() -> Pid {
    // SAFETY: getpid takes nothing and cannot fail.
    unsafe { syscall!(Sysno::getpid) }.map_or(0, |p| p as Pid)
}

pub fn setpgid(pid: Pid, pgid: Pid) -> Result<()> {
    // SAFETY: setpgid takes integers only.
    unsafe { syscall!(Sysno::setpgid, pid, pgid) }.map(drop)
}

/// tcsetpgrp(3): make `pgrp` the foreground process group of the terminal on `fd`.
pub fn tcsetpgrp(fd: i32, pgrp: Pid) -> Result<()> {
    // SAFETY: TIOCSPGRP reads one pid_t through the pointer, which lives until the call returns.
    unsafe { syscall!(Sysno::ioctl, fd, TIOCSPGRP, &pgrp as *const Pid) }.map(drop)
}

pub fn prctl(option: usize, arg2: usize) -> Result<()> {
    prctl3(option, arg2, 0).map(drop)
}

/// PR_GET_CHILD_SUBREAPER: whether this process is a child subreaper (the flag
/// survives execve, so a parent may have set it before exec'ing init).
pub fn is_child_subreaper() -> Result<bool> {
    let mut flag: i32 = 0;
    // SAFETY: the kernel writes one int through the pointer, which lives until the call returns.
    unsafe { syscall!(Sysno::prctl, PR_GET_CHILD_SUBREAPER, &mut flag as *mut i32, 0, 0, 0) }?;
    Ok(flag != 0)
}

/// prctl(2) with a third argument (the rest 0, as PR_CAP_AMBIENT and others
/// require); returns the kernel's value (PR_CAPBSET_READ: 1 or 0).
pub fn prctl3(option: usize, arg2: usize, arg3: usize) -> Result<usize> {
    // SAFETY: the options init uses take integers (or, for PR_SET_NAME, a
    // NUL-terminated string the caller keeps alive).
    unsafe { syscall!(Sysno::prctl, option, arg2, arg3, 0, 0) }
}

// ---- environment -----------------------------------------------------------

/// The value of `name` in a NULL-terminated environment array.
///
/// # Safety
/// `envp` must be a NULL-terminated array of C strings (the one from the initial stack).
pub unsafe fn getenv<'a>(envp: *const *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    let mut p = envp;
    while !(*p).is_null() {
        let entry = CStr::from_ptr(*p).to_bytes();
        if entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'=' {
            return Some(&entry[name.len() + 1..]);
        }
        p = p.add(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getenv_finds_exact_names_only() {
        let vars = [c"PATHX=no".as_ptr(), c"PATH=/bin:/usr/bin".as_ptr(), c"EMPTY=".as_ptr(), null()];
        // SAFETY: vars is a NULL-terminated array of C string literals.
        unsafe {
            assert_eq!(getenv(vars.as_ptr(), b"PATH"), Some(&b"/bin:/usr/bin"[..]));
            assert_eq!(getenv(vars.as_ptr(), b"EMPTY"), Some(&b""[..]));
            assert_eq!(getenv(vars.as_ptr(), b"PAT"), None);
            assert_eq!(getenv(vars.as_ptr(), b"HOME"), None);
        }
    }

    #[test]
    fn wrappers_return_kernel_errnos() {
        assert_eq!(open(c"/nonexistent/pid1-unit-test", O_RDONLY), Err(Errno::ENOENT));
        assert_eq!(close(-1), Err(Errno::EBADF));
        assert_eq!(set_cloexec(-1), Err(Errno::EBADF));
        let [r, w] = pipe2(O_CLOEXEC).unwrap();
        write_all(w, b"hi").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(read(r, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"hi");
        close(r).unwrap();
        close(w).unwrap();
        assert_eq!(read_full(-1, &mut buf), Err(Errno::EBADF));
        assert_eq!(getpid() as u32, std::process::id());
    }
}
