//! `export`'s rootfs: a container's layers flattened into one plain directory,
//! the way overlayfs merges them for the container (Documentation/filesystems/
//! overlayfs.rst), so a runtime that knows nothing of our layers sees the same
//! files:
//!
//! - layers topmost first (the upper dir, then the lower dirs); for each name the
//!   topmost layer that has it decides;
//! - a whiteout (a character device 0/0) hides the name in every layer below: the
//!   container deleted it;
//! - directories merge down through the layers until one is opaque (xattr
//!   `trusted.overlay.opaque` or, on a user namespace's mount, `user.overlay.opaque`
//!   = "y": the container removed the dir and made it anew) or a lower layer has a
//!   non-directory there (which overlay shows no further);
//! - a file is copied with its mode, owner, times and xattrs (file capabilities),
//!   overlay's own xattrs left out; files that are one inode (hard links) stay one.
//!
//! With a user namespace, on-disk ids of the lower layers are what the container
//! sees (they reach it through idmapped mounts), while the upper dir holds host
//! ids (the container's root wrote as host uid BASE): the lower layers' ids are
//! shifted by BASE so the whole rootfs is in host ids, and config.json's mappings
//! make them the container's again. Not handled: overlay's metacopy and
//! redirect_dir (off unless mounted with them, and host-setup does not).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::{Result, SysContext};
use crate::userns::IdMap;

/// One layer: its directory, and the ids to shift its owners by (lower layers
/// of a user-namespaced container).
#[derive(Debug, Clone)]
pub struct Layer {
    pub dir: PathBuf,
    pub shift: Option<IdMap>,
}

/// A directory of one layer at some path of the merged tree.
#[derive(Debug, Clone)]
struct Src {
    path: PathBuf,
    shift: Option<IdMap>,
}

/// What copying counted (for the command's message and the tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub hidden: u64,
    pub links: u64,
}

struct Copier {
    /// (dev, ino) of a source file with several links -> its first copy.
    inodes: HashMap<(u64, u64), PathBuf>,
    counts: Counts,
}

/// Flattens `layers` (topmost first) into `dest`, which must exist and be empty.
pub fn flatten(layers: &[Layer], dest: &Path) -> Result<Counts> {
    let srcs: Vec<Src> =
        layers.iter().filter(|l| l.dir.is_dir()).map(|l| Src { path: l.dir.clone(), shift: l.shift }).collect();
    let Some(top) = srcs.first().cloned() else {
        return Err(crate::failed!("export: rootfs: none of the container's layers exists"));
    };
    let mut c = Copier { inodes: HashMap::new(), counts: Counts::default() };
    c.merge_dir(&srcs, dest)?;
    let m = fs::symlink_metadata(&top.path).sys(|| format!("export: stat {}", top.path.display()))?;
    c.finish(&top, &m, dest)?;
    Ok(c.counts)
}

/// Overlay's whiteout: a character device with device number 0/0.
pub fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether `dir` is an opaque directory: the layers below it do not show through.
pub fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| matches!(xattr::get(dir, k), Ok(Some(v)) if v == b"y"))
}

/// Overlay's own xattrs, which describe the layer, not the file: never copied.
fn overlay_xattr(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")
}

fn stat(p: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        // ENOTDIR: a lower layer has a file where this one has a directory.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(e).sys(|| format!("export: stat {}", p.display())),
    }
}

impl Copier {
    /// Copies the merge of `srcs` (one directory per layer, topmost first, the
    /// first one deciding the directory's own metadata) into the empty dir `dest`.
    fn merge_dir(&mut self, srcs: &[Src], dest: &Path) -> Result<()> {
        let mut names = BTreeSet::<OsString>::new();
        for s in srcs {
            let rd = match fs::read_dir(&s.path) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).sys(|| format!("export: read dir {}", s.path.display())),
            };
            for e in rd {
                names.insert(e.sys(|| format!("export: read dir {}", s.path.display()))?.file_name());
            }
        }
        for name in names {
            let mut dirs: Vec<Src> = vec![];
            let mut file: Option<(Src, Metadata)> = None;
            let mut whiteout = false;
            for s in srcs {
                let path = s.path.join(&name);
                let Some(m) = stat(&path)? else { continue };
                let here = Src { path, shift: s.shift };
                if is_whiteout(&m) {
                    whiteout = dirs.is_empty();
                    break;
                }
                if !m.is_dir() {
                    if dirs.is_empty() {
                        file = Some((here, m));
                    }
                    break;
                }
                let opaque = is_opaque(&here.path);
                dirs.push(here);
                if opaque {
                    break;
                }
            }
            let to = dest.join(&name);
            if whiteout {
                self.counts.hidden += 1;
            } else if let Some(top) = dirs.first().cloned() {
                fs::create_dir(&to).sys(|| format!("export: mkdir {}", to.display()))?;
                self.merge_dir(&dirs, &to)?;
                let m = fs::symlink_metadata(&top.path).sys(|| format!("export: stat {}", top.path.display()))?;
                self.finish(&top, &m, &to)?;
            } else if let Some((src, m)) = file {
                self.copy_file(&src, &m, &to)?;
            }
        }
        Ok(())
    }

    /// A non-directory: a regular file (or a hard link to one already copied), a
    /// symlink, a device node, a fifo or a socket.
    fn copy_file(&mut self, src: &Src, m: &Metadata, to: &Path) -> Result<()> {
        let ft = m.file_type();
        let p = &src.path;
        if ft.is_file() && m.nlink() > 1 {
            if let Some(first) = self.inodes.get(&(m.dev(), m.ino())) {
                fs::hard_link(first, to).sys(|| format!("export: link {} {}", first.display(), to.display()))?;
                self.counts.links += 1;
                return Ok(());
            }
            self.inodes.insert((m.dev(), m.ino()), to.to_path_buf());
        }
        if ft.is_file() {
            fs::copy(p, to).sys(|| format!("export: copy {} to {}", p.display(), to.display()))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(p).sys(|| format!("export: readlink {}", p.display()))?;
            std::os::unix::fs::symlink(&target, to).sys(|| format!("export: symlink {}", to.display()))?;
        } else {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else if ft.is_fifo() {
                SFlag::S_IFIFO
            } else {
                SFlag::S_IFSOCK
            };
            mknod(to, kind, Mode::from_bits_truncate(m.mode() & 0o7777), m.rdev())
                .sys(|| format!("export: mknod {}", to.display()))?;
        }
        self.finish(src, m, to)
    }

    /// Owner (shifted), mode, xattrs and times of `src` onto the copy `to`. The
    /// mode after the owner: chown clears the set-user-ID and set-group-ID bits.
    /// The times last: creating children and setting xattrs change them.
    fn finish(&mut self, src: &Src, m: &Metadata, to: &Path) -> Result<()> {
        let shift = |id: u32, base: fn(&IdMap) -> u32| match src.shift {
            Some(ids) if id < ids.count => base(&ids) + id,
            _ => id,
        };
        let (uid, gid) = (shift(m.uid(), |i| i.uid), shift(m.gid(), |i| i.gid));
        std::os::unix::fs::lchown(to, Some(uid), Some(gid)).sys(|| format!("export: chown {}", to.display()))?;
        let symlink = m.file_type().is_symlink();
        if !symlink {
            fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
                .sys(|| format!("export: chmod {}", to.display()))?;
        }
        let p = &src.path;
        let names = xattr::list(p).sys(|| format!("export: list xattrs of {}", p.display()))?;
        for name in names.filter(|n| !overlay_xattr(n)) {
            if let Some(v) = xattr::get(p, &name).sys(|| format!("export: read xattr {name:?} of {}", p.display()))? {
                xattr::set(to, &name, &v).sys(|| format!("export: write xattr {name:?} of {}", to.display()))?;
            }
        }
        let at = TimeSpec::new(m.atime(), m.atime_nsec());
        let mt = TimeSpec::new(m.mtime(), m.mtime_nsec());
        utimensat(nix::fcntl::AT_FDCWD, to, &at, &mt, UtimensatFlags::NoFollowSymlink)
            .sys(|| format!("export: set times of {}", to.display()))?;
        self.counts.entries += 1;
        Ok(())
    }
}
