//! The calls of `--spec-fd` (src/specrun.rs and its helpers): the stream's
//! mapping, paths resolved inside the new root (openat2), device nodes,
//! users, limits.

use core::ffi::CStr;
use core::ptr::null;

use syscalls::{syscall, Sysno};

use super::Result;

pub const MS_NOATIME: usize = 1024;
pub const MS_NODIRATIME: usize = 2048;
pub const MS_MOVE: usize = 8192;
pub const MS_UNBINDABLE: usize = 1 << 17;
pub const MS_SLAVE: usize = 1 << 19;
pub const MS_SHARED: usize = 1 << 20;
pub const MS_RELATIME: usize = 1 << 21;
pub const MS_STRICTATIME: usize = 1 << 24;

pub const O_CREAT: usize = 0o100;
pub const O_NOFOLLOW: usize = 0o400000;
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFIFO: u32 = 0o010000;
pub const PR_SET_KEEPCAPS: usize = 8;
pub const PR_CAP_AMBIENT_RAISE: usize = 2;

/// RESOLVE_IN_ROOT: the dirfd is "/" for the lookup: "..", absolute paths and
/// absolute symlinks all stay below it (runc/crun's defence against a rootfs
/// whose symlinks point at the host). RESOLVE_NO_MAGICLINKS: no /proc/*/fd jumps.
const RESOLVE_IN_ROOT_NO_MAGICLINKS: u64 = 0x10 | 0x02;

/// mmap(2) of the first `len` bytes of `fd`, read-only and private; never
/// unmapped (init keeps the spec until it execs).
pub fn map_fd(fd: i32, len: usize) -> Result<&'static [u8]> {
    const PROT_READ: usize = 1;
    const MAP_PRIVATE: usize = 2;
    // SAFETY: a new read-only mapping placed by the kernel (addr NULL) overlaps
    // nothing of ours and is never unmapped, so the slice stays valid for the
    // rest of the process; host-setup seals the memfd (F_SEAL_WRITE|SHRINK),
    // so no one can change or truncate the bytes under it.
    unsafe {
        let p = syscall!(Sysno::mmap, 0, len, PROT_READ, MAP_PRIVATE, fd, 0)?;
        Ok(core::slice::from_raw_parts(p as *const u8, len))
    }
}

/// openat2(2) of `path` below `root` (an O_PATH dir fd), as if `root` were "/".
pub fn open_in_root(root: i32, path: &CStr, flags: usize) -> Result<i32> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow { flags: flags as u64, mode: 0, resolve: RESOLVE_IN_ROOT_NO_MAGICLINKS };
    // SAFETY: path is NUL-terminated and how a live struct open_how of the size passed.
    unsafe { syscall!(Sysno::openat2, root, path.as_ptr(), &how as *const OpenHow, 24) }.map(|fd| fd as i32)
}

pub fn mkdirat(dir: i32, name: &CStr, mode: usize) -> Result<()> {
    // SAFETY: name is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::mkdirat, dir, name.as_ptr(), mode) }.map(drop)
}

/// mknodat(2) with the full dev_t encoding (glibc's makedev).
pub fn mknodat(dir: i32, name: &CStr, mode: u32, major: u64, minor: u64) -> Result<()> {
    let dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32);
    // SAFETY: name is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::mknodat, dir, name.as_ptr(), mode, dev) }.map(drop)
}

/// fchownat(2) of the entry itself (AT_SYMLINK_NOFOLLOW).
pub fn fchownat(dir: i32, name: &CStr, uid: u32, gid: u32) -> Result<()> {
    const AT_SYMLINK_NOFOLLOW: usize = 0x100;
    // SAFETY: name is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::fchownat, dir, name.as_ptr(), uid, gid, AT_SYMLINK_NOFOLLOW) }.map(drop)
}

pub fn symlinkat(target: &CStr, dir: i32, link: &CStr) -> Result<()> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    unsafe { syscall!(Sysno::symlinkat, target.as_ptr(), dir, link.as_ptr()) }.map(drop)
}

/// st_mode of `path` (relative to `dir`; "" with AT_EMPTY_PATH: `dir` itself).
pub fn stat_mode(dir: i32, path: &CStr) -> Result<u32> {
    const AT_EMPTY_PATH: usize = 0x1000;
    let mut st = [0u64; 18]; // struct stat, 144 bytes on x86_64; st_mode is the u32 at byte 24
                             // SAFETY: the kernel writes one struct stat (144 bytes) into st.
    unsafe { syscall!(Sysno::newfstatat, dir, path.as_ptr(), st.as_mut_ptr(), AT_EMPTY_PATH) }?;
    Ok(st[3] as u32)
}

/// The f_flags (ST_RDONLY, ST_NOSUID, ...) of the filesystem mount at `path`.
pub fn statfs_flags(path: &CStr) -> Result<u64> {
    let mut st = [0u64; 15]; // struct statfs, 120 bytes; f_flags is the 11th word
                             // SAFETY: the kernel writes one struct statfs (120 bytes) into st.
    unsafe { syscall!(Sysno::statfs, path.as_ptr(), st.as_mut_ptr()) }?;
    Ok(st[10])
}

/// move_mount(2) of the detached mount `from` onto the file open at `to`.
pub fn move_mount_fds(from: i32, to: i32) -> Result<()> {
    const F_EMPTY_PATH: usize = 4;
    const T_EMPTY_PATH: usize = 0x40;
    // SAFETY: both paths are the empty C string literal.
    unsafe { syscall!(Sysno::move_mount, from, c"".as_ptr(), to, c"".as_ptr(), F_EMPTY_PATH | T_EMPTY_PATH) }.map(drop)
}

pub fn chroot(path: &CStr) -> Result<()> {
    // SAFETY: path is a NUL-terminated string that outlives the call.
    unsafe { syscall!(Sysno::chroot, path.as_ptr()) }.map(drop)
}

pub fn setdomainname(name: &[u8]) -> Result<()> {
    // SAFETY: the kernel reads name.len() bytes of the live slice.
    unsafe { syscall!(Sysno::setdomainname, name.as_ptr(), name.len()) }.map(drop)
}

pub fn setgroups(gids: &[u32]) -> Result<()> {
    // SAFETY: the kernel reads gids.len() gid_t of the live slice.
    unsafe { syscall!(Sysno::setgroups, gids.len(), gids.as_ptr()) }.map(drop)
}

/// setresgid(2) with all three ids `gid`.
pub fn setgid(gid: u32) -> Result<()> {
    // SAFETY: integers only.
    unsafe { syscall!(Sysno::setresgid, gid, gid, gid) }.map(drop)
}

/// setresuid(2) with all three ids `uid`.
pub fn setuid(uid: u32) -> Result<()> {
    // SAFETY: integers only.
    unsafe { syscall!(Sysno::setresuid, uid, uid, uid) }.map(drop)
}

/// prlimit64(2) on this process: sets (soft, hard) of `resource`.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> Result<()> {
    let lim = [soft, hard];
    // SAFETY: the kernel reads one struct rlimit64 from lim; no old limit (NULL).
    unsafe { syscall!(Sysno::prlimit64, 0, resource, lim.as_ptr(), null::<u64>()) }.map(drop)
}

/// readlink(2) of `path` into `buf`; the length of the link text.
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: path is NUL-terminated; the kernel writes at most buf.len() bytes into buf.
    unsafe { syscall!(Sysno::readlinkat, super::AT_FDCWD, path.as_ptr(), buf.as_mut_ptr(), buf.len()) }
}

/// CLOCK_MONOTONIC in milliseconds (a hook's timeout).
pub fn monotonic_ms() -> i64 {
    const CLOCK_MONOTONIC: usize = 1;
    let mut ts = [0i64; 2]; // struct timespec
                            // SAFETY: the kernel writes one struct timespec (16 bytes) into ts.
    let _ = unsafe { syscall!(Sysno::clock_gettime, CLOCK_MONOTONIC, ts.as_mut_ptr()) };
    ts[0] * 1000 + ts[1] / 1_000_000
}
