//! Paths of the spec resolved inside the new root, before the pivot, without
//! ever leaving it (runc's securejoin + procfd mounts, crun's openat2).
//!
//! Before pivot_root, "/" is still the host's: an image whose /x is a symlink
//! to /etc would make a plain mount(2) on ROOT/x land on the host's /etc.
//! openat2(RESOLVE_IN_ROOT) resolves "..", absolute paths and absolute
//! symlinks against the new root's fd instead, so a symlink to /tmp means
//! ROOT/tmp. The mount then goes onto the resolved file itself through its fd
//! (/proc/self/fd/N, a magic link the kernel follows to that exact dentry), so
//! nothing can swap a symlink in between.

use core::ffi::CStr;

use crate::msg::fmt_u64;
use crate::specrun::{cstr, PATH_MAX};
use crate::sys::spec::{mkdirat, open_in_root, O_CREAT, O_NOFOLLOW};
use crate::sys::{self, files, Errno, Result, O_CLOEXEC, O_DIRECTORY, O_PATH, O_WRONLY};

/// `path` without its leading slashes ("." for the root itself).
pub fn relative(path: &[u8]) -> &[u8] {
    let p = &path[path.iter().take_while(|&&b| b == b'/').count()..];
    if p.is_empty() {
        b"."
    } else {
        p
    }
}

/// (parent, last component) of a relative path; the parent "." if none.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let p = match path.iter().rposition(|&b| b != b'/') {
        Some(end) => &path[..=end],
        None => return (b".", b"."),
    };
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (if i == 0 { b"/" } else { &p[..i] }, &p[i + 1..]),
        None => (b".", p),
    }
}

/// An O_PATH fd of `path` (absolute inside the new root, which `root` is open on).
pub fn open(root: i32, path: &[u8], flags: usize) -> Result<i32> {
    let mut buf = [0u8; PATH_MAX];
    open_in_root(root, cstr(relative(path), &mut buf), flags | O_CLOEXEC)
}

/// Makes every missing directory above `path` (mode 0755), each created in
/// its parent as resolved in the root, so a symlink on the way stays inside.
pub fn mkdir_parents(root: i32, path: &[u8]) -> Result<()> {
    let rel = relative(path);
    for (i, _) in rel.iter().enumerate().filter(|&(i, &b)| b == b'/' && i > 0) {
        make(root, &rel[..i], true)?;
    }
    Ok(())
}

/// Makes `path` itself as a directory or an empty file, if it is missing.
fn make(root: i32, path: &[u8], dir: bool) -> Result<()> {
    let (parent, name) = split_last(path);
    let pfd = open(root, parent, O_PATH | O_DIRECTORY)?;
    let mut buf = [0u8; PATH_MAX];
    let name = cstr(name, &mut buf);
    let made = if dir {
        mkdirat(pfd, name, 0o755)
    } else {
        // O_NOFOLLOW: a dangling symlink there is not followed out of the root
        // (ELOOP: it exists; the open in root below resolves it safely).
        files::openat(pfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o755).map(|fd| {
            let _ = sys::close(fd);
        })
    };
    let _ = sys::close(pfd);
    match made {
        Err(Errno::EEXIST) | Err(Errno::ELOOP) => Ok(()),
        r => r,
    }
}

/// The mount point `path`: made (runc's rule: a directory, or an empty file
/// when what is mounted there is not a directory) with its parents if
/// missing, then opened O_PATH inside the root.
pub fn mount_point(root: i32, path: &[u8], dir: bool) -> Result<i32> {
    mkdir_parents(root, path)?;
    if relative(path) != b"." {
        make(root, path, dir)?;
    }
    open(root, path, O_PATH)
}

/// "/proc/self/fd/N" for `fd`, to give mount(2) the resolved file.
pub fn fd_path(fd: i32, buf: &mut [u8; 32]) -> &CStr {
    const P: &[u8] = b"/proc/self/fd/";
    let mut n = [0u8; 20];
    let d = fmt_u64(fd as u64, &mut n);
    buf[..P.len()].copy_from_slice(P);
    buf[P.len()..P.len() + d.len()].copy_from_slice(d);
    buf[P.len() + d.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=P.len() + d.len()]).unwrap_or(c"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(b"/proc"), b"proc");
        assert_eq!(relative(b"//a/b"), b"a/b");
        assert_eq!(relative(b"/"), b".");
        assert_eq!(relative(b"dev/pts"), b"dev/pts");
    }

    #[test]
    fn last_component() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"a/b/"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"c"), (&b"."[..], &b"c"[..]));
        assert_eq!(split_last(b"/c"), (&b"/"[..], &b"c"[..]));
    }

    #[test]
    fn fd_paths() {
        let mut b = [0u8; 32];
        assert_eq!(fd_path(7, &mut b).to_bytes(), b"/proc/self/fd/7");
        assert_eq!(fd_path(1234567890, &mut b).to_bytes(), b"/proc/self/fd/1234567890");
    }
}
