//! Asking the kernel for a filesystem type the way `mount -t TYPE` does, without
//! mounting anything; a reflink of one file into another (the layer cache); a
//! filesystem made with the new mount API and mounted nowhere (init's image).
//! Part of sys: the unsafe of host-setup stays in this module.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// fsopen(fstype, FSOPEN_CLOEXEC): a filesystem context for `fstype`, closed at
/// once. The kernel looks the type up with get_fs_type(), which loads its module
/// (request_module("fs-TYPE")) if it is not registered yet, as a mount would; no
/// superblock is made and nothing is mounted. ENODEV: the kernel has no such type
/// and could not load one.
pub fn fsopen_probe(fstype: &str) -> std::result::Result<(), Errno> {
    FsContext::open(fstype).map(drop)
}

/// ioctl(dst, FICLONE, src): `dst` shares `src`'s data extents (a reflink, as
/// `cp --reflink` makes), copy-on-write on both sides. Only filesystems that
/// share extents do it (btrfs, xfs with reflink=1, bcachefs): EOPNOTSUPP or
/// EINVAL elsewhere (ext4, tmpfs), EXDEV across filesystems.
pub fn ficlone(dst: BorrowedFd<'_>, src: BorrowedFd<'_>) -> std::result::Result<(), Errno> {
    // SAFETY: both fds are borrowed, open, for the duration of the call; FICLONE
    // takes the source fd as its integer argument, no memory is passed.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    Errno::result(r).map(drop)
}

/// The mount an open file is on (statx STATX_MNT_ID, Linux 5.8: the id mountinfo
/// shows); None where the kernel does not say.
pub fn mnt_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the path is a NUL-terminated empty string (AT_EMPTY_PATH: fd itself),
    // st a writable statx buffer the kernel fills; neither outlives the call.
    let r =
        unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_MNT_ID, st.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled by the kernel when r is 0.
    let st = unsafe { st.assume_init() };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

// The new mount API's constants (linux/mount.h), which libc does not define.
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

/// A filesystem context being configured (fsopen), closed when dropped.
pub struct FsContext(OwnedFd);

impl FsContext {
    /// fsopen(fstype, FSOPEN_CLOEXEC).
    pub fn open(fstype: &str) -> std::result::Result<FsContext, Errno> {
        let c = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
        // SAFETY: c is a NUL-terminated string that outlives the call; no other memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), libc::FSOPEN_CLOEXEC) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
        Ok(FsContext(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// fsconfig(FSCONFIG_SET_STRING, key, value). The kernel copies at most 256
    /// bytes of a value (strndup_user): a longer one fails.
    pub fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), Errno> {
        let k = CString::new(key).map_err(|_| Errno::EINVAL)?;
        let v = CString::new(value).map_err(|_| Errno::EINVAL)?;
        // SAFETY: k and v are NUL-terminated strings that outlive the call; the aux
        // argument is 0, as FSCONFIG_SET_STRING requires.
        let r = unsafe {
            libc::syscall(libc::SYS_fsconfig, self.0.as_raw_fd(), FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0)
        };
        Errno::result(r).map(drop)
    }

    /// fsconfig(FSCONFIG_CMD_CREATE), then fsmount(FSMOUNT_CLOEXEC, read-only,
    /// nosuid, nodev): the superblock, as a mount attached nowhere. Its fd keeps
    /// it alive; so does any file opened in it, after the fd is closed.
    pub fn mount_read_only(self) -> std::result::Result<OwnedFd, Errno> {
        let fd = self.0.as_raw_fd();
        // SAFETY: no memory is passed: the key and value are null, aux 0, as
        // FSCONFIG_CMD_CREATE requires.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fd,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                0,
            )
        };
        Errno::result(r)?;
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        // SAFETY: integers only.
        let m = unsafe { libc::syscall(libc::SYS_fsmount, fd, FSMOUNT_CLOEXEC, attrs) };
        if m < 0 {
            return Err(Errno::last());
        }
        // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
    }
}

/// fstatfs(fd)'s f_type: which filesystem an open file is on.
pub fn fs_type(fd: BorrowedFd<'_>) -> std::result::Result<i64, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: st is a writable statfs buffer the kernel fills; fd is borrowed, open.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: zero-initialised, and filled by the kernel since r is 0.
    Ok(unsafe { st.assume_init() }.f_type)
}
