//! `--dev`: a minimal /dev in the new root, made before pivot_root (as runc and
//! Docker make theirs), instead of whatever the image ships or the host's.
//!
//! /dev            tmpfs "mode=755,size=65536k", nosuid, noexec (not nodev: it holds the nodes)
//! /dev/null zero full random urandom tty
//!                 character devices with their real numbers, mode 0666
//! /dev/pts        devpts "newinstance,ptmxmode=0666,mode=0620,gid=5", nosuid, noexec
//! /dev/ptmx       -> pts/ptmx
//! /dev/shm        tmpfs "mode=1777,size=65536k", nosuid, nodev, noexec
//! /dev/fd         -> /proc/self/fd, and stdin, stdout, stderr -> /proc/self/fd/0, 1, 2
//!
//! No block device at all, and no devtmpfs: with it (and CAP_SYS_ADMIN) the
//! container could reach the host's disks (platform.md, trap 9). Access to other
//! device numbers is for the device cgroup to deny (the host side).
//!
//! Every path is relative to the cwd, which rootfs::enter has made the new root:
//! nothing here resolves against the host's "/".

use core::ffi::CStr;

use crate::msg::{self, Error};
use crate::sys::{self, Errno, MS_NODEV, MS_NOEXEC, MS_NOSUID, O_CLOEXEC, O_DIRECTORY, O_PATH, S_IFCHR};

const O_NOFOLLOW: usize = 0o400000;

/// The tmpfs on /dev: Docker's size (it only holds nodes and links).
pub const DEV_OPTIONS: &CStr = c"mode=755,size=65536k";
/// A devpts of the container's own. `newinstance`: a mount that joined the
/// initial instance (the default before Linux 4.7, and what a mount without it
/// still means where the kernel keeps the legacy behaviour) would show the host's
/// terminals in /dev/pts and let the container open them. `ptmxmode=0666`: the
/// instance's own pts/ptmx, which /dev/ptmx points at, is mode 0000 by default,
/// so nobody could open a new terminal. `mode=0620,gid=5`: new terminals are
/// rw for their owner and writable by group tty (5), as Docker mounts it.
pub const DEVPTS_OPTIONS: &CStr = c"newinstance,ptmxmode=0666,mode=0620,gid=5";
/// POSIX shared memory (shm_open), Docker's default 64 MiB.
pub const SHM_OPTIONS: &CStr = c"mode=1777,size=65536k";

/// The character devices: (path, major, minor), Documentation/admin-guide/devices.txt.
pub const NODES: [(&CStr, u32, u32); 6] = [
    (c"dev/null", 1, 3),
    (c"dev/zero", 1, 5),
    (c"dev/full", 1, 7),
    (c"dev/random", 1, 8),
    (c"dev/urandom", 1, 9),
    (c"dev/tty", 5, 0),
];

/// The symbolic links: (link, target).
pub const LINKS: [(&CStr, &CStr); 5] = [
    (c"dev/ptmx", c"pts/ptmx"),
    (c"dev/fd", c"/proc/self/fd"),
    (c"dev/stdin", c"/proc/self/fd/0"),
    (c"dev/stdout", c"/proc/self/fd/1"),
    (c"dev/stderr", c"/proc/self/fd/2"),
];

/// Everything /dev holds afterwards, sorted (for tests and the help).
pub const ENTRIES: [&str; 13] =
    ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"];

/// Makes the minimal /dev under the cwd (the new root, whose host path is
/// `root`, used in messages only).
pub fn populate(root: &CStr, userns: bool) -> Result<(), Error<'_>> {
    let r = root.to_bytes();
    msg::debug(&[b"minimal /dev in ", r, b"/dev"]);
    match sys::mkdir(c"dev", 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => {
            let err = Error::new(e, &[b"mkdir(", r, b"/dev)"]);
            return Err(match e {
                Errno::EROFS => err.hint("read-only rootfs: give --upper and --work, or ship an empty /dev"),
                _ => err,
            });
        }
    }
    // mount(2) follows symlinks, and before pivot_root an absolute one resolves
    // against the host's root: an image whose /dev is a link to /etc would have
    // init mount over, and populate, the host's /etc (in this mount namespace).
    let fd = sys::open(c"dev", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC).map_err(|e| {
        let err = Error::new(e, &[b"open(", r, b"/dev, O_NOFOLLOW|O_DIRECTORY)"]);
        match e {
            Errno::ENOTDIR | Errno::ELOOP => err.hint("the image's /dev must be a directory, not a symlink"),
            _ => err,
        }
    })?;
    let _ = sys::close(fd);
    mount(r, c"tmpfs", c"dev", c"tmpfs", MS_NOSUID | MS_NOEXEC, DEV_OPTIONS, b"mount(tmpfs, ")?;

    // The modes below are exact, whatever umask init was started with.
    let umask = sys::umask(0);
    let made = nodes_and_links(r, userns);
    sys::umask(umask);
    made
}

fn nodes_and_links(r: &[u8], userns: bool) -> Result<(), Error<'_>> {
    for (path, major, minor) in NODES {
        if userns {
            crate::userns::bind_node(r, path)?;
            continue;
        }
        msg::debug(&[b"mknod ", path.to_bytes()]);
        sys::mknod(path, S_IFCHR | 0o666, major, minor)
            .map_err(|e| Error::new(e, &[b"mknod(", r, b"/", path.to_bytes(), b")"]))?;
    }
    mkdir(r, c"dev/pts", 0o755)?;
    mount(r, c"devpts", c"dev/pts", c"devpts", MS_NOSUID | MS_NOEXEC, DEVPTS_OPTIONS, b"mount(devpts, ")?;
    mkdir(r, c"dev/shm", 0o1777)?;
    mount(r, c"shm", c"dev/shm", c"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, SHM_OPTIONS, b"mount(tmpfs, ")?;
    for (link, target) in LINKS {
        msg::debug(&[b"symlink ", link.to_bytes(), b" -> ", target.to_bytes()]);
        sys::symlink(target, link).map_err(|e| Error::new(e, &[b"symlink(", r, b"/", link.to_bytes(), b")"]))?;
    }
    Ok(())
}

fn mkdir<'a>(r: &'a [u8], path: &'a CStr, mode: usize) -> Result<(), Error<'a>> {
    sys::mkdir(path, mode).map_err(|e| Error::new(e, &[b"mkdir(", r, b"/", path.to_bytes(), b")"]))
}

/// mount(2) of `fstype` on `target`; `what` ("mount(tmpfs, ") starts the message.
fn mount<'a>(
    r: &'a [u8],
    source: &CStr,
    target: &'a CStr,
    fstype: &CStr,
    flags: usize,
    options: &CStr,
    what: &'static [u8],
) -> Result<(), Error<'a>> {
    msg::debug(&[b"mount ", fstype.to_bytes(), b" on ", target.to_bytes(), b": ", options.to_bytes()]);
    sys::mount(Some(source), target, Some(fstype), flags, Some(options))
        .map_err(|e| Error::new(e, &[what, r, b"/", target.to_bytes(), b")"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_the_nodes_links_and_mounts() {
        let mut names: Vec<&str> = NODES.iter().map(|n| n.0.to_str().unwrap()).collect();
        names.extend(LINKS.iter().map(|l| l.0.to_str().unwrap()));
        names.extend(["dev/pts", "dev/shm"]);
        let mut names: Vec<&str> = names.iter().map(|n| n.strip_prefix("dev/").unwrap()).collect();
        names.sort();
        assert_eq!(names, ENTRIES);
    }

    #[test]
    fn device_numbers_and_options() {
        assert!(NODES.contains(&(c"dev/null", 1, 3)));
        assert!(NODES.contains(&(c"dev/urandom", 1, 9)));
        assert!(NODES.contains(&(c"dev/tty", 5, 0)));
        // Character devices only: 1 is mem, 5 is tty; no block major anywhere.
        assert!(NODES.iter().all(|n| n.1 == 1 || n.1 == 5));
        assert_eq!(DEVPTS_OPTIONS.to_bytes(), b"newinstance,ptmxmode=0666,mode=0620,gid=5");
        assert_eq!(DEV_OPTIONS.to_bytes(), b"mode=755,size=65536k");
        assert_eq!(SHM_OPTIONS.to_bytes(), b"mode=1777,size=65536k");
    }
}
