//! The calls of the supervisor's log (src/logpipe.rs, src/waiter.rs): files
//! relative to a directory fd, and waiting on a pipe and a process at once.

use core::ffi::CStr;
use core::ptr::null;

use syscalls::{syscall, Sysno};

use super::{Pid, Result};

pub const O_APPEND: usize = 0o2000;
pub const O_CREAT: usize = 0o100;
pub const O_NOFOLLOW: usize = 0o400000;
pub const POLLIN: i16 = 1;

/// struct pollfd.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// openat(2) of `name` in the directory `dir` (an fd), with `mode` if it is created.
pub fn openat(dir: i32, name: &CStr, flags: usize, mode: usize) -> Result<i32> {
    // SAFETY: name is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::openat, dir, name.as_ptr(), flags, mode) }.map(|fd| fd as i32)
}

/// renameat(2) within the directory `dir`.
pub fn renameat(dir: i32, from: &CStr, to: &CStr) -> Result<()> {
    // SAFETY: both names are NUL-terminated strings that outlive the call.
    unsafe { syscall!(Sysno::renameat, dir, from.as_ptr(), dir, to.as_ptr()) }.map(drop)
}

/// unlinkat(2) of a file in the directory `dir`.
pub fn unlinkat(dir: i32, name: &CStr) -> Result<()> {
    // SAFETY: name is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::unlinkat, dir, name.as_ptr(), 0) }.map(drop)
}

/// The size of the file open at `fd` (lseek to its end; O_APPEND writes go there).
pub fn size(fd: i32) -> Result<u64> {
    const SEEK_END: usize = 2;
    // SAFETY: lseek takes integers only.
    unsafe { syscall!(Sysno::lseek, fd, 0, SEEK_END) }.map(|n| n as u64)
}

/// dup2(2): `from` on fd `to` as well.
pub fn dup2(from: i32, to: i32) -> Result<()> {
    // SAFETY: dup2 takes integers only.
    unsafe { syscall!(Sysno::dup2, from, to) }.map(drop)
}

/// pidfd_open(2) (Linux 5.3): an fd that polls readable once `pid` has exited.
pub fn pidfd_open(pid: Pid) -> Result<i32> {
    // SAFETY: pidfd_open takes integers only.
    unsafe { syscall!(Sysno::pidfd_open, pid, 0) }.map(|fd| fd as i32)
}

/// poll(2) as ppoll with `ms` milliseconds (negative: no timeout); how many are ready.
pub fn poll(fds: &mut [PollFd], ms: i64) -> Result<usize> {
    let ts = [ms / 1000, (ms % 1000) * 1_000_000]; // struct timespec
    let tsp = if ms < 0 { null() } else { ts.as_ptr() };
    // SAFETY: fds is a live array of fds.len() pollfds the kernel writes revents
    // into; ts (if passed) a live timespec; no signal mask (NULL).
    unsafe { syscall!(Sysno::ppoll, fds.as_mut_ptr(), fds.len(), tsp, null::<u64>(), 8) }
}
