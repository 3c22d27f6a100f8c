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

/// The bytes `call` writes into a buffer it is given (a *getxattr or *listxattr
/// call: the length it wrote, or -1 with errno), the buffer grown until they fit.
/// ERANGE means the buffer is too small; no size query first (a size of 0): the
/// value can grow between that query and the read, and ERANGE comes all the same.
fn read_grow(mut call: impl FnMut(&mut [u8]) -> libc::ssize_t) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 4096];
    loop {
        match Errno::result(call(&mut buf)) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// llistxattr(path): the names, in the kernel's order.
pub fn list(path: &Path) -> Result<Vec<OsString>, Errno> {
    let p = cpath(path)?;
    let buf = read_grow(|buf| {
        // SAFETY: p is a NUL-terminated string that outlives the call; buf is a
        // live, writable buffer of buf.len() bytes: the kernel writes at most that
        // many and returns how many.
        unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })?;
    Ok(buf.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| OsString::from_vec(s.to_vec())).collect())
}

/// lgetxattr(path, key).
pub fn get(path: &Path, key: &OsStr) -> Result<Vec<u8>, Errno> {
    let p = cpath(path)?;
    let k = CString::new(key.as_bytes()).map_err(|_| Errno::EINVAL)?;
    read_grow(|buf| {
        // SAFETY: as in list: p and k are NUL-terminated strings that outlive the
        // call, buf a writable buffer of buf.len() bytes.
        unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

/// fgetxattr(fd, key): the attribute of the inode open as `fd` (no path, so no
/// rename between the open and this call can swap the file).
pub fn fget(fd: BorrowedFd<'_>, key: &OsStr) -> Result<Vec<u8>, Errno> {
    let k = CString::new(key.as_bytes()).map_err(|_| Errno::EINVAL)?;
    read_grow(|buf| {
        // SAFETY: as in list: fd is borrowed for the call, k is a NUL-terminated
        // string that outlives it, buf a writable buffer of buf.len() bytes.
        unsafe { libc::fgetxattr(fd.as_raw_fd(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of `len` bytes as the kernel gives it: ERANGE while it does not fit.
    fn value(len: usize, calls: &mut Vec<usize>) -> impl FnMut(&mut [u8]) -> libc::ssize_t + '_ {
        move |buf| {
            calls.push(buf.len());
            if buf.len() < len {
                Errno::ERANGE.set();
                return -1;
            }
            buf[..len].fill(7);
            len as libc::ssize_t
        }
    }

    #[test]
    fn read_grow_grows_until_the_value_fits() {
        let mut calls = vec![];
        assert_eq!(read_grow(value(10, &mut calls)), Ok(vec![7; 10]));
        assert_eq!(calls, [4096]);
        let mut calls = vec![];
        assert_eq!(read_grow(value(70_000, &mut calls)).map(|v| v.len()), Ok(70_000));
        assert_eq!(calls, [4096, 16_384, 65_536, 262_144]);
        // Not beyond 1 MiB (the kernel's XATTR_SIZE_MAX is 64 KiB, a list's 64 KiB too).
        let mut calls = vec![];
        assert_eq!(read_grow(value(2 << 20, &mut calls)), Err(Errno::ERANGE));
        assert_eq!(calls.last(), Some(&(1 << 20)));
        let mut calls = vec![];
        let e = read_grow(|_| {
            calls.push(0);
            Errno::ENODATA.set();
            -1
        });
        assert_eq!((e, calls.len()), (Err(Errno::ENODATA), 1));
    }
}
