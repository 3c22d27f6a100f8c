//! Asking the kernel for a filesystem type the way `mount -t TYPE` does, without
//! mounting anything; a reflink of one file into another (the layer cache).
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
    let c = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
    // SAFETY: c is a NUL-terminated string that outlives the call; no other memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it; the
    // OwnedFd closes it when dropped here.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    Ok(())
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
