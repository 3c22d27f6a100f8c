//! Removing a directory tree the careful way — the one remover of host-setup, for
//! container dirs and layer dirs alike: symlinks are removed, never followed, and
//! a tree with anything mounted at or under it is refused, never emptied (the
//! tutorial's `rm -rf put_old` would delete the host's files if the unmount had
//! failed). Mounts are found in mountinfo, which also catches a bind mount of the
//! same filesystem; the walk checks st_dev as well, for a mount that appears
//! while it runs.
//!
//! Below the top, nothing is done by path: every directory is opened relative to
//! its parent's fd with O_NOFOLLOW|O_DIRECTORY, and every entry is unlinked with
//! unlinkat() relative to the fd of the directory it was read from (as std's own
//! remove_dir_all does). A container — or anyone who can write in the tree — that
//! swaps a subdirectory for a symlink while we work gets the symlink removed: a
//! path walk would have followed it and emptied the directory it points to.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::error::{Error, Result, SysContext};

/// How a directory of the tree is opened: never through a symlink.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// Whole walks tried before giving up on a tree that keeps changing under us.
const TRIES: usize = 3;

/// Removes `path` and everything under it. Ok(false) if it was not there.
///
/// Mounts in the tree are found by each directory's mount id (statx STATX_MNT_ID,
/// Linux 5.8) against its parent's: reading /proc/self/mountinfo instead cost
/// O(mounts on the host) per container (each container's /run/netns/NAME is one:
/// 6 ms a read with 1,000 of them) and held the namespace lock that `down`'s
/// umount of the netns waits for. Kernels without it read mountinfo.
pub fn remove_tree(path: &Path) -> Result<bool> {
    remove_tree_unless_mounted(path, None)
}

/// `remove_tree`, given this namespace's mount points (None: by mount id, or
/// read from mountinfo where the kernel gives no mount id).
fn remove_tree_unless_mounted(path: &Path, mounts: Option<&[PathBuf]>) -> Result<bool> {
    let name = path.file_name().ok_or_else(|| crate::failed!("remove {}: not a directory entry", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The parent is ours (the state dir, the layer cache) and is taken as given;
    // only what is below it is guarded.
    let parent_fd =
        match openat(AT_FDCWD, parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::sys(format!("open {}", parent.display()), e)),
        };
    let top = match fstatat(&parent_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(Error::sys(format!("stat {}", path.display()), e)),
    };
    if !is_dir(top.st_mode) {
        // A symlink is removed, not its target.
        return unlink(&parent_fd, name, path).map(|_| true);
    }
    let mounted = match (mounts, crate::sys::mnt_id(parent_fd.as_fd())) {
        (Some(mounts), _) => first_mount_in(parent, name, mounts)?,
        (None, Some(id)) => mount_below(&parent_fd, name, id, path)?,
        (None, None) => first_mount_in(parent, name, &crate::mountinfo::mount_points(&crate::mountinfo::read()?))?,
    };
    if let Some(m) = mounted {
        return Err(crate::precondition!("remove {}: {} is mounted; unmount it first", path.display(), m.display()));
    }
    let mut tries = 0;
    loop {
        tries += 1;
        match remove_dir_at(&parent_fd, name, top.st_dev, path) {
            // Something came back (or moved in) behind the walk: walk again.
            Err(e) if e.errno() == Some(Errno::ENOTEMPTY) && tries < TRIES => {
                log::debug!("{e}: removing {} again", path.display());
            }
            r => return r.map(|_| true),
        }
    }
}

/// The first of `mounts` at or under `parent/name`.
fn first_mount_in(parent: &Path, name: &OsStr, mounts: &[PathBuf]) -> Result<Option<PathBuf>> {
    let real = std::fs::canonicalize(parent).sys(|| format!("resolve {}", parent.display()))?.join(name);
    Ok(mounts.iter().find(|m| m.starts_with(&real)).cloned())
}

/// The first directory at or under `parent`'s `name` on another mount than
/// `mnt` (a bind mount of the same filesystem too: its own mount id). Symlinks
/// are not followed. A file bind-mounted in the tree is not seen here: the walk's
/// unlinkat fails on it with EBUSY, which stops the removal.
fn mount_below(parent: &impl AsFd, name: &OsStr, mnt: u64, shown: &Path) -> Result<Option<PathBuf>> {
    let fd: OwnedFd = match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::sys(format!("open {}", shown.display()), e)),
    };
    if crate::sys::mnt_id(fd.as_fd()).is_some_and(|id| id != mnt) {
        return Ok(Some(shown.to_path_buf()));
    }
    let mut entries = Dir::openat(&fd, ".", DIR_FLAGS, Mode::empty()).sys(|| format!("open {}", shown.display()))?;
    for entry in entries.iter() {
        let entry = entry.sys(|| format!("read {}", shown.display()))?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes());
        if matches!(child.as_bytes(), b"." | b"..") || !matches!(entry.file_type(), Some(Type::Directory) | None) {
            continue;
        }
        if let Some(m) = mount_below(&fd, child, mnt, &shown.join(child))? {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

fn is_dir(mode: u32) -> bool {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Unlink a non-directory `name` of `dir`; an entry gone already is fine.
fn unlink(dir: &impl AsFd, name: &OsStr, shown: &Path) -> Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("rm {}", shown.display()), e)),
    }
}

/// Removes the directory `name` of `parent` and everything in it, on device `dev`.
fn remove_dir_at(parent: &impl AsFd, name: &OsStr, dev: u64, shown: &Path) -> Result<()> {
    #[cfg(test)]
    hooks::run(hooks::At::Open, shown);
    let fd: OwnedFd = match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        // Swapped for a symlink (O_NOFOLLOW: ELOOP) or a file since it was read:
        // that is what is removed, unfollowed.
        Err(Errno::ELOOP | Errno::ENOTDIR) => return unlink(parent, name, shown),
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("open {}", shown.display()), e)),
    };
    let st = fstat(&fd).sys(|| format!("stat {}", shown.display()))?;
    if st.st_dev != dev {
        return Err(crate::failed!("not removing {}: another filesystem is mounted there", shown.display()));
    }
    #[cfg(test)]
    hooks::run(hooks::At::Opened, shown);
    // A second fd on the same directory ("." of the one just opened) to read it,
    // while `fd` names it for unlinkat.
    let mut entries = Dir::openat(&fd, ".", DIR_FLAGS, Mode::empty()).sys(|| format!("open {}", shown.display()))?;
    for entry in entries.iter() {
        let entry = entry.sys(|| format!("read {}", shown.display()))?;
        let child: &CStr = entry.file_name();
        if matches!(child.to_bytes(), b"." | b"..") {
            continue;
        }
        let child = OsStr::from_bytes(child.to_bytes());
        let child_shown = shown.join(child);
        let dir = match entry.file_type() {
            Some(t) => t == Type::Directory,
            None => match fstatat(&fd, child, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => is_dir(st.st_mode),
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(Error::sys(format!("stat {}", child_shown.display()), e)),
            },
        };
        if dir {
            remove_dir_at(&fd, child, dev, &child_shown)?;
            continue;
        }
        match unlinkat(&fd, child, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            // A directory now, where something else was when we looked.
            Err(Errno::EISDIR) => remove_dir_at(&fd, child, dev, &child_shown)?,
            Err(e) => return Err(Error::sys(format!("rm {}", child_shown.display()), e)),
        }
    }
    drop(entries);
    #[cfg(test)]
    hooks::run(hooks::At::Rmdir, shown);
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        // The directory was moved away and a symlink or file put in its place
        // after we opened it: we emptied the directory itself, through its fd;
        // the name is removed, unfollowed.
        Err(Errno::ENOTDIR) => unlink(parent, name, shown),
        Err(e) => Err(Error::sys(format!("rmdir {}", shown.display()), e)),
    }
}

/// Test hooks: run a closure at a point of the walk, to change the tree there as
/// a racing container would.
#[cfg(test)]
mod hooks {
    use std::cell::RefCell;
    use std::path::Path;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum At {
        /// Before a directory is opened (after it was read as one).
        Open,
        /// After it was opened, before its entries are removed.
        Opened,
        /// After its entries were removed, before it is.
        Rmdir,
    }

    type Hook = Box<dyn FnMut(At, &Path)>;
    thread_local!(static HOOK: RefCell<Option<Hook>> = RefCell::new(None));

    pub fn set(h: Option<Hook>) {
        HOOK.with(|c| *c.borrow_mut() = h);
    }

    pub fn run(at: At, p: &Path) {
        HOOK.with(|c| {
            if let Some(h) = c.borrow_mut().as_mut() {
                h(at, p)
            }
        });
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
