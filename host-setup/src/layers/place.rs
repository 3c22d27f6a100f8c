//! How a host file goes into a layer, chosen once in the plan: a hard link
//! (`ln -L`), a reflink (`cp -L --reflink=auto`) or a copy (`cp -L`). The plan
//! keeps the choice; the build carries it out and `--explain` prints it.
//!
//! A hard link makes the layer's file the host's file itself (one inode), so
//! nothing may ever write through a layer, and nothing does: overlayfs never
//! writes to a lower layer (a write, chmod or chown inside the container first
//! copies the file up into the container's upper dir), the cache check and prune
//! only stat and unlink, and a linked file is neither chmod-ed nor fsync-ed here.
//! A host upgrade replaces a file by rename: the host path then names a new inode,
//! the fingerprint (dev and inode among its inputs) changes and a new layer is
//! built, while the old layer keeps the old inode alive for the containers still
//! using it, until prune. The fingerprint reads mtime, not ctime: linking changes
//! the host file's ctime and link count, never what the fingerprint reads. What a
//! link does not protect against: a host file rewritten in place (`cp` over it,
//! not a rename) changes in the running containers' layer too.
//!
//! A link is made only where it gives the file a copy would give: the same
//! mount (link(2) is EXDEV across mounts, even bind mounts of one filesystem),
//! no setuid/setgid/sticky bit (a copy drops them), owned by whoever a copy
//! would be owned by (us), and no file capability or ACL (a copy carries no
//! xattrs). Otherwise a reflink on the same filesystem (FICLONE: btrfs, xfs;
//! the copy where the filesystem cannot), a plain copy on another filesystem.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use log::{debug, warn};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, AT_FDCWD};

use super::closure::LayerFile;
use super::elf::Source;
use crate::error::{Result, SysContext};

/// How one file goes into the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A hard link to the host's inode.
    Link,
    /// A reflink (shared extents), or a copy where the filesystem has none.
    Reflink,
    /// A copy of the bytes.
    Copy,
}

impl Placement {
    /// The shell command that does the same (followed by the source and the destination).
    /// Run only where the layer's directory is not there yet ([`LayerPlan::shell`]'s
    /// guard, as the build): a second `ln` over the same file fails with EEXIST.
    ///
    /// [`LayerPlan::shell`]: super::LayerPlan::shell
    pub fn command(self) -> &'static str {
        match self {
            Placement::Link => "ln -L",
            Placement::Reflink => "cp -L --reflink=auto",
            Placement::Copy => "cp -L",
        }
    }
}

/// What the choice depends on, for one host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub mnt_id: Option<u64>,
    /// A file capability or an ACL: what a copy would not carry.
    pub xattrs: bool,
}

/// Where the layer goes: the layers dir's (or its nearest existing ancestor's)
/// filesystem and mount, and the owner a copy made there gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub dev: u64,
    pub mnt_id: Option<u64>,
    pub owner: (u32, u32),
}

/// The choice, from the facts alone.
pub(super) fn choose(src: &Facts, to: &Target) -> Placement {
    // st_dev names the filesystem. (A btrfs subvolume has its own st_dev: seen as
    // another filesystem, copied, though a reflink would work.)
    if src.dev != to.dev {
        return Placement::Copy;
    }
    let same_mount = src.mnt_id.is_some() && src.mnt_id == to.mnt_id;
    let like_a_copy = src.mode & 0o7000 == 0 && (src.uid, src.gid) == to.owner && !src.xattrs;
    if same_mount && like_a_copy {
        Placement::Link
    } else {
        Placement::Reflink
    }
}

/// The xattrs that make a link differ from a copy.
const NOT_COPIED: &[&str] = &["security.capability", "system.posix_acl_access"];

pub(super) fn facts(src: &Source) -> Facts {
    let fd = src.file.as_fd();
    let xattrs = NOT_COPIED.iter().any(|k| match crate::sys::xattr::fget(fd, k.as_ref()) {
        Err(Errno::ENODATA | Errno::EOPNOTSUPP) => false,
        // Present, or unknown: not linked.
        _ => true,
    });
    let m = &src.meta;
    Facts { mode: m.mode(), uid: m.uid(), gid: m.gid(), dev: m.dev(), mnt_id: crate::sys::mnt_id(fd), xattrs }
}

/// The target for a layers dir that may not exist yet: its nearest existing
/// ancestor's filesystem and mount (where the dir will be made).
pub(super) fn target(layers_dir: &Path) -> Option<Target> {
    let dir = layers_dir.ancestors().find_map(|d| File::open(d).ok())?;
    let m = dir.metadata().ok()?;
    let owner = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    Some(Target { dev: m.dev(), mnt_id: crate::sys::mnt_id(dir.as_fd()), owner })
}

/// Puts `f` at `dst` as planned and returns what was done: where the kernel
/// refuses, a link falls back to a reflink and a reflink to a copy.
pub(super) fn place(f: &LayerFile, how: Placement, dst: &Path) -> Result<Placement> {
    let real = f.src.real.display();
    if how == Placement::Link {
        // From the fd opened during resolution: the inode the fingerprint describes.
        match nix::unistd::linkat(f.src.file.as_fd(), "", AT_FDCWD, dst, AtFlags::AT_EMPTY_PATH) {
            Ok(()) => {
                debug!("link {real} to {}", dst.display());
                return Ok(Placement::Link);
            }
            // EXDEV: another mount of the filesystem; ENOENT: the host file was
            // removed since (a link count of 0 cannot be raised); EPERM, EMLINK.
            Err(e) => warn!("link {real} to {}: {e}; copying it instead", dst.display()),
        }
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .sys(|| format!("create {}", dst.display()))?;
    let want = f.src.meta.len();
    let cloned = how != Placement::Copy
        && match crate::sys::ficlone(out.as_fd(), f.src.file.as_fd()) {
            Ok(()) => true,
            Err(e) => {
                // EOPNOTSUPP, EINVAL (ext4, tmpfs), EXDEV: `cp --reflink=auto` copies then.
                debug!("reflink {real} to {}: {e}; copying", dst.display());
                false
            }
        };
    let n = if cloned {
        debug!("reflink {real} to {}", dst.display());
        out.metadata().sys(|| format!("stat {}", dst.display()))?.len()
    } else {
        debug!("copy {real} to {}", dst.display());
        let mut from = &f.src.file;
        from.seek(SeekFrom::Start(0)).sys(|| format!("copy {real} to {}", dst.display()))?;
        std::io::copy(&mut from, &mut out).sys(|| format!("copy {real} to {}", dst.display()))?
    };
    if n != want {
        return Err(crate::failed!(
            "copy {real} to {}: {real} changed while being copied ({n} bytes, not {want})",
            dst.display()
        ));
    }
    // The permission bits, without setuid/setgid/sticky (as `cp -L` does).
    let mode = f.src.meta.mode() & 0o777;
    out.set_permissions(fs::Permissions::from_mode(mode)).sys(|| format!("chmod {mode:o} {}", dst.display()))?;
    // Durable before the rename makes the layer visible: a cached layer is
    // never checked against its inputs again. (A link needs only its directory's
    // fsync; the host's inode is not ours to flush.)
    out.sync_all().sys(|| format!("fsync {}", dst.display()))?;
    Ok(if cloned { Placement::Reflink } else { Placement::Copy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Facts {
        Facts { mode: 0o100755, uid: 0, gid: 0, dev: 2049, mnt_id: Some(30), xattrs: false }
    }

    fn to() -> Target {
        Target { dev: 2049, mnt_id: Some(30), owner: (0, 0) }
    }

    #[test]
    fn same_mount_and_like_a_copy_is_a_link() {
        assert_eq!(choose(&src(), &to()), Placement::Link);
        assert_eq!(choose(&Facts { mode: 0o100644, ..src() }, &to()), Placement::Link);
    }

    #[test]
    fn another_filesystem_is_a_copy() {
        assert_eq!(choose(&src(), &Target { dev: 40, mnt_id: Some(31), ..to() }), Placement::Copy);
        // Whatever else is true of the file.
        assert_eq!(choose(&Facts { mode: 0o104755, ..src() }, &Target { dev: 40, ..to() }), Placement::Copy);
    }

    #[test]
    fn what_a_link_would_change_is_reflinked() {
        let cases = [
            Facts { mode: 0o104755, ..src() }, // setuid (mount, umount)
            Facts { mode: 0o102755, ..src() }, // setgid
            Facts { mode: 0o101755, ..src() }, // sticky
            Facts { uid: 1000, ..src() },
            Facts { gid: 50, ..src() },
            Facts { xattrs: true, ..src() }, // ping's cap_net_raw
        ];
        for f in cases {
            assert_eq!(choose(&f, &to()), Placement::Reflink, "{f:?}");
        }
        // Owned by whoever runs host-setup, as its copy would be.
        assert_eq!(
            choose(&Facts { uid: 1000, gid: 1000, ..src() }, &Target { owner: (1000, 1000), ..to() }),
            Placement::Link
        );
    }

    #[test]
    fn another_mount_of_the_same_filesystem_is_a_reflink() {
        assert_eq!(choose(&src(), &Target { mnt_id: Some(99), ..to() }), Placement::Reflink);
        // Unknown mount (no /proc): never a link.
        assert_eq!(choose(&Facts { mnt_id: None, ..src() }, &Target { mnt_id: None, ..to() }), Placement::Reflink);
    }

    #[test]
    fn commands() {
        assert_eq!(Placement::Link.command(), "ln -L");
        assert_eq!(Placement::Reflink.command(), "cp -L --reflink=auto");
        assert_eq!(Placement::Copy.command(), "cp -L");
    }

    #[test]
    fn facts_of_a_real_file() {
        let p = std::env::temp_dir().join(format!("layers-unit-{}-facts", std::process::id()));
        fs::write(&p, b"x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let src = Source::open(p.clone());
        let t = target(&p.with_extension("d").join("layers"));
        fs::remove_file(&p).unwrap();
        let f = facts(&src.unwrap());
        let t = t.unwrap();
        assert_eq!((f.mode & 0o7777, f.xattrs), (0o755, false));
        assert_eq!((f.dev, f.mnt_id), (t.dev, t.mnt_id), "the file and its dir's ancestor: one mount");
        assert!(f.mnt_id.is_some());
        assert_eq!(choose(&f, &t), Placement::Link);
    }
}
