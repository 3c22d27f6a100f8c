//! Asking the kernel for a filesystem type the way `mount -t TYPE` does, without
//! mounting anything. Part of sys: the unsafe of host-setup stays in this module.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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
