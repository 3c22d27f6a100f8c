//! Extended attributes by path, never following a symlink at the end (the l*
//! calls: libc has them, nix does not wrap them). Part of sys: the unsafe of
//! host-setup stays in this module.
//!
//! The image unpacker names an entry as `/proc/self/fd/DIRFD/NAME`: the magic
//! link resolves to the directory it already opened without following any
//! symlink (image/unpack.rs), and NAME itself is not followed, so no path the
//! archive controls is ever resolved through a symlink.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

fn cpath(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// The path naming `name` inside the directory open as `dir`.
pub fn at(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// lsetxattr(path, key, value, 0).
pub fn set(path: &Path, key: &OsStr, value: &[u8]) -> Result<(), Errno> {
    let p = cpath(path)?;
    let k = CString::new(key.as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: p and k are NUL-terminated strings and value a live slice, all
    // borrowed for the call; the kernel copies them and keeps no pointer.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(r).map(drop)
}

/// llistxattr(path): the names, in the kernel's order.
pub fn list(path: &Path) -> Result<Vec<OsString>, Errno> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: buf is a live, writable buffer of buf.len() bytes; the kernel
        // writes at most that many and returns how many.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| OsString::from_vec(s.to_vec()))
                    .collect());
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// lgetxattr(path, key).
pub fn get(path: &Path, key: &OsStr) -> Result<Vec<u8>, Errno> {
    let p = cpath(path)?;
    let k = CString::new(key.as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: as in list: a writable buffer of buf.len() bytes.
        let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// fgetxattr(fd, key): the attribute of the inode open as `fd` (no path, so no
/// rename between the open and this call can swap the file).
pub fn fget(fd: BorrowedFd<'_>, key: &OsStr) -> Result<Vec<u8>, Errno> {
    let k = CString::new(key.as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: as in list: a writable buffer of buf.len() bytes; fd is borrowed
        // for the call and k is a NUL-terminated string that outlives it.
        let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}
