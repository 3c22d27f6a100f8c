//! Writing one layer's entries under its directory, the untrusted way: nothing
//! is done by a path the archive controls. Every parent is opened from the
//! layer's root one component at a time with O_NOFOLLOW|O_DIRECTORY, and every
//! entry is made relative to its parent's fd (mkdirat, openat O_EXCL|O_NOFOLLOW,
//! symlinkat, linkat, mknodat, fchownat/utimensat with AT_SYMLINK_NOFOLLOW). A
//! symlink the archive made earlier can therefore never be walked through: the
//! walk stops with ELOOP/ENOTDIR and the entry is refused (the breakout
//! `ln -s / x; write x/etc/passwd` of CVE-2019-14271 and friends).
//!
//! The caller (unpack.rs) has already refused absolute names and `..`. Errors
//! here are plain messages; the caller names the layer and the entry.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::sys::xattr;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

pub type R<T> = std::result::Result<T, String>;

fn sys(what: impl std::fmt::Display, e: Errno) -> String {
    format!("{what}: {e:?}: {}", crate::error::errno_text(e))
}

/// An entry's owner, mode (permission bits with setuid/setgid/sticky), mtime and xattrs.
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

pub struct LayerFs {
    root: OwnedFd,
    path: PathBuf,
    /// Directories whose mtime is set at the end (making entries in them changes it).
    dirs: Vec<(Vec<OsString>, TimeSpec)>,
}

fn show(comps: &[OsString]) -> String {
    comps.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/")
}

impl LayerFs {
    /// Makes `path` (0755; the archive's `./` entry may change that) and opens it.
    pub fn create(path: &Path) -> R<LayerFs> {
        mkdirat(AT_FDCWD, path, Mode::from_bits_truncate(0o755))
            .map_err(|e| sys(format!("mkdir {}", path.display()), e))?;
        let root =
            openat(AT_FDCWD, path, DIR_FLAGS, Mode::empty()).map_err(|e| sys(format!("open {}", path.display()), e))?;
        Ok(LayerFs { root, path: path.to_path_buf(), dirs: vec![] })
    }

    /// Opens the directory `comps` below the root without following a symlink
    /// anywhere; with `create`, missing ones are made (0755, root's, as tar does).
    /// Ok(None) if one is missing and `create` is false.
    fn dir(&self, comps: &[OsString], create: bool) -> R<Option<OwnedFd>> {
        let mut cur = openat(&self.root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| sys("open the layer dir", e))?;
        for (i, c) in comps.iter().enumerate() {
            let here = || show(&comps[..=i]);
            cur = match openat(&cur, c.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if !create => return Ok(None),
                Err(Errno::ENOENT) => {
                    mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755))
                        .map_err(|e| sys(format!("mkdir {}", here()), e))?;
                    openat(&cur, c.as_os_str(), DIR_FLAGS, Mode::empty())
                        .map_err(|e| sys(format!("open {}", here()), e))?
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let st = fstatat(&cur, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|e| sys(format!("stat {}", here()), e))?;
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                        return Err(format!("the path goes through the symlink {} the archive made", here()));
                    }
                    return Err(format!("{} is not a directory", here()));
                }
                Err(e) => return Err(sys(format!("open {}", here()), e)),
            };
        }
        Ok(Some(cur))
    }

    fn parent(&self, comps: &[OsString]) -> R<(OwnedFd, OsString)> {
        let (name, up) = comps.split_last().ok_or("the layer's root can only be a directory")?;
        Ok((self.dir(up, true)?.expect("created"), name.clone()))
    }

    /// Removes what `name` is now (a later entry replaces an earlier one, as tar
    /// does); a directory stays if `keep_dir`. True if a directory is kept.
    fn clear(&self, parent: &OwnedFd, comps: &[OsString], keep_dir: bool) -> R<bool> {
        let name = comps.last().expect("not the root");
        let st = match fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(sys(format!("stat {}", show(comps)), e)),
            Ok(st) => st,
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            // Every component on the way is a real directory of ours (just walked).
            let p = comps.iter().fold(self.path.clone(), |p, c| p.join(c));
            crate::state::remove_tree(&p).map_err(|e| e.to_string())?;
            return Ok(false);
        }
        unlinkat(parent, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| sys(format!("unlink {}", show(comps)), e))?;
        Ok(false)
    }

    /// Owner, then mode (chown clears setuid bits and file capabilities), then xattrs.
    fn finish_fd(&self, fd: &OwnedFd, at: &Path, comps: &[OsString], m: &Meta) -> R<()> {
        fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(|e| sys(format!("chown {}", show(comps)), e))?;
        fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777)).map_err(|e| sys(format!("chmod {}", show(comps)), e))?;
        self.xattrs(at, comps, m)
    }

    fn xattrs(&self, at: &Path, comps: &[OsString], m: &Meta) -> R<()> {
        for (k, v) in &m.xattrs {
            xattr::set(at, k, v).map_err(|e| sys(format!("setxattr {} on {}", k.to_string_lossy(), show(comps)), e))?;
        }
        Ok(())
    }

    pub fn mkdir(&mut self, comps: &[OsString], m: &Meta) -> R<()> {
        if comps.is_empty() {
            let root = openat(&self.root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| sys("open the layer dir", e))?;
            self.finish_fd(&root, &self.path, comps, m)?;
        } else {
            let (parent, name) = self.parent(comps)?;
            if !self.clear(&parent, comps, true)? {
                mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| sys(format!("mkdir {}", show(comps)), e))?;
            }
            let fd = openat(&parent, name.as_os_str(), DIR_FLAGS, Mode::empty())
                .map_err(|e| sys(format!("open {}", show(comps)), e))?;
            self.finish_fd(&fd, &xattr::at(parent.as_fd(), &name), comps, m)?;
        }
        self.dirs.push((comps.to_vec(), m.mtime));
        Ok(())
    }

    /// A regular file from `data`, its runs of zeros left as holes. `budget`:
    /// bytes the layer may still write (a decompression bomb runs out of it).
    pub fn file(&mut self, comps: &[OsString], m: &Meta, data: &mut dyn Read, budget: &mut u64) -> R<()> {
        let (parent, name) = self.parent(comps)?;
        self.clear(&parent, comps, false)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&parent, name.as_os_str(), flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| sys(format!("create {}", show(comps)), e))?;
        let mut f = File::from(fd);
        let mut buf = vec![0u8; 128 << 10];
        let mut len = 0u64;
        loop {
            let n = data.read(&mut buf).map_err(|e| super::unpack::read_error(&e))?;
            if n == 0 {
                break;
            }
            if n as u64 > *budget {
                return Err("the layer unpacks to more than the size limit (a decompression bomb?)".into());
            }
            *budget -= n as u64;
            len += n as u64;
            let res = if buf[..n].iter().all(|b| *b == 0) {
                f.seek(SeekFrom::Current(n as i64)).map(drop)
            } else {
                f.write_all(&buf[..n])
            };
            res.map_err(|e| format!("write {}: {}", show(comps), crate::error::io_text(&e)))?;
        }
        f.set_len(len).map_err(|e| format!("truncate {}: {}", show(comps), crate::error::io_text(&e)))?;
        let fd = OwnedFd::from(f);
        self.finish_fd(&fd, &xattr::at(parent.as_fd(), &name), comps, m)?;
        futimens(&fd, &m.mtime, &m.mtime).map_err(|e| sys(format!("utimes {}", show(comps)), e))
    }

    pub fn symlink(&mut self, comps: &[OsString], target: &Path, m: &Meta) -> R<()> {
        let (parent, name) = self.parent(comps)?;
        self.clear(&parent, comps, false)?;
        symlinkat(target, &parent, name.as_os_str()).map_err(|e| sys(format!("symlink {}", show(comps)), e))?;
        self.meta_at(&parent, &name, comps, m, true)
    }

    pub fn fifo(&mut self, comps: &[OsString], m: &Meta) -> R<()> {
        let (parent, name) = self.parent(comps)?;
        self.clear(&parent, comps, false)?;
        mkfifoat(&parent, name.as_os_str(), Mode::from_bits_truncate(0o600))
            .map_err(|e| sys(format!("mkfifo {}", show(comps)), e))?;
        self.meta_at(&parent, &name, comps, m, false)
    }

    /// Metadata by name, for what cannot be opened (a symlink) or should not be (a fifo).
    fn meta_at(&self, parent: &OwnedFd, name: &OsStr, comps: &[OsString], m: &Meta, link: bool) -> R<()> {
        let (uid, gid) = (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)));
        fchownat(parent, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| sys(format!("chown {}", show(comps)), e))?;
        if !link {
            // fchmodat without following: the fifo was made by us a moment ago.
            nix::sys::stat::fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(m.mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| sys(format!("chmod {}", show(comps)), e))?;
        }
        self.xattrs(&xattr::at(parent.as_fd(), name), comps, m)?;
        utimensat(parent, name, &m.mtime, &m.mtime, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| sys(format!("utimes {}", show(comps)), e))
    }

    /// A hard link to `target`, which must already be in this layer (and not a directory).
    pub fn hardlink(&mut self, comps: &[OsString], target: &[OsString]) -> R<()> {
        let missing = || format!("hard link to {}: no such file in this layer", show(target));
        let (tname, tup) = target.split_last().ok_or("hard link to the layer's root")?;
        let tparent = self.dir(tup, false)?.ok_or_else(missing)?;
        let st = match fstatat(&tparent, tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Err(missing()),
            r => r.map_err(|e| sys(format!("stat {}", show(target)), e))?,
        };
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            return Err(format!("hard link to the directory {}", show(target)));
        }
        let (parent, name) = self.parent(comps)?;
        if comps == target {
            return Ok(());
        }
        self.clear(&parent, comps, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        linkat(&tparent, tname.as_os_str(), &parent, name.as_os_str(), AtFlags::empty())
            .map_err(|e| sys(format!("link {}", show(comps)), e))
    }

    /// `.wh.NAME`: an overlay whiteout, the 0/0 character device. overlayfs takes
    /// it as a whiteout in a lower layer with and without `userxattr`, so one
    /// layer dir serves containers with and without a user namespace.
    pub fn whiteout(&mut self, comps: &[OsString]) -> R<()> {
        let (parent, name) = self.parent(comps)?;
        self.clear(&parent, comps, false)?;
        mknodat(&parent, name.as_os_str(), SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(|e| sys(format!("mknod whiteout {}", show(comps)), e))
    }

    /// `.wh..wh..opq` in DIR: DIR hides what lower layers have in it. Both forms:
    /// `trusted.overlay.opaque` (read by an overlay mounted without `userxattr`)
    /// and `user.overlay.opaque` (read with it, as in a user namespace).
    pub fn opaque(&mut self, dir: &[OsString]) -> R<()> {
        // The parent's fd stays open while its /proc/self/fd path is used.
        let parent = match dir.split_last() {
            None => None,
            Some((name, _)) => {
                let (parent, _) = self.parent(dir)?;
                self.dir(dir, true)?;
                Some((parent, name))
            }
        };
        let at = match &parent {
            None => self.path.clone(),
            Some((fd, name)) => xattr::at(fd.as_fd(), name),
        };
        for k in ["trusted.overlay.opaque", "user.overlay.opaque"] {
            xattr::set(&at, OsStr::new(k), b"y").map_err(|e| sys(format!("setxattr {k} on {}", show(dir)), e))?;
        }
        Ok(())
    }

    /// Sets the directories' mtimes, deepest last-made first, and syncs the layer
    /// to disk before the caller renames it into place.
    pub fn finish(self) -> R<()> {
        for (comps, t) in self.dirs.iter().rev() {
            if let Some(fd) = self.dir(comps, false)? {
                futimens(&fd, t, t).map_err(|e| sys(format!("utimes {}", show(comps)), e))?;
            }
        }
        nix::unistd::syncfs(&self.root).map_err(|e| sys(format!("syncfs {}", self.path.display()), e))
    }
}
