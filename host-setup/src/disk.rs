//! `--disk SIZE`: a limit on what a container writes. Without it the overlay's
//! upper dir grows until the state dir's filesystem (the host's /var) is full.
//!
//! Docker's overlay2 does `--storage-opt size` with project quotas (xfs pquota, ext4
//! `-O project,quota`). This project's kernel has no quota support at all
//! (CONFIG_QUOTA and XFS quota are off: ext4 refuses `prjquota`, xfs says "quota
//! support not available"), so the container gets the other kind of limit: its
//! upper and work dirs on a filesystem of their own, a tmpfs of SIZE mounted in
//! the host's mount namespace at `containers/NAME/disk`, nosuid and nodev. Writes
//! past it fail with ENOSPC. A tmpfs lives in memory: its pages are charged to the
//! memory cgroup of the process that writes them, so it counts against `--memory`
//! (the spec wants `--disk` below it) and never touches the host's disk.
//!
//! The upper and work dirs must be on the *same mount* (overlayfs refuses two
//! bind mounts of one filesystem), hence one tmpfs holding both. They get the
//! owner and mode the dirs step gave the container's own upper and work dirs
//! (the container's root with --userns), which stay behind, empty.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result, SysContext};
use crate::spec::{format_bytes, Spec};
use crate::state::Paths;

/// statfs's f_type of a tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The mount point of the container's own filesystem.
pub fn dir(paths: &Paths, name: &str) -> PathBuf {
    paths.container(name).join("disk")
}

/// The overlay's upper dir: on the container's own filesystem with --disk.
pub fn upper(paths: &Paths, spec: &Spec) -> PathBuf {
    match spec.disk {
        Some(_) => dir(paths, &spec.name).join("upper"),
        None => paths.upper(&spec.name),
    }
}

/// The overlay's work dir, on the same mount as the upper dir.
pub fn work(paths: &Paths, spec: &Spec) -> PathBuf {
    match spec.disk {
        Some(_) => dir(paths, &spec.name).join("work"),
        None => paths.work(&spec.name),
    }
}

/// What the disk step does: a tmpfs of `bytes` at `dir`, with `upper` and `work`
/// in it owned like `like_upper` (and its root like `like_root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub dir: PathBuf,
    pub bytes: u64,
    pub like_root: PathBuf,
    pub like_upper: PathBuf,
}

impl Tmpfs {
    pub fn new(paths: &Paths, spec: &Spec, bytes: u64) -> Tmpfs {
        let n = &spec.name;
        Tmpfs { dir: dir(paths, n), bytes, like_root: paths.container(n), like_upper: paths.upper(n) }
    }

    fn subdirs(&self) -> [PathBuf; 2] {
        [self.dir.join("upper"), self.dir.join("work")]
    }

    /// tmpfs's options. `size` bounds the data only; each inode costs memory
    /// too, so there is one inode per 4 KiB of the limit (at least 1024).
    pub fn options(&self) -> String {
        format!("size={},nr_inodes={},mode=0700", self.bytes, (self.bytes / 4096).max(1024))
    }

    pub fn make(&self) -> Result<()> {
        let d = &self.dir;
        std::fs::create_dir(d).sys(|| format!("mkdir {}", d.display()))?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some("tmpfs"), d, Some("tmpfs"), flags, Some(self.options().as_str()))
            .sys(|| format!("mount -t tmpfs -o {} tmpfs {}", self.options(), d.display()))?;
        copy_owner(&self.like_root, d)?;
        for s in self.subdirs() {
            std::fs::create_dir(&s).sys(|| format!("mkdir {}", s.display()))?;
            copy_owner(&self.like_upper, &s)?;
        }
        Ok(())
    }

    pub fn shell(&self) -> Vec<String> {
        let (d, [u, w]) = (self.dir.display(), self.subdirs().map(|s| s.display().to_string()));
        let (root, upper) = (self.like_root.display(), self.like_upper.display());
        vec![
            format!("mkdir {d}"),
            format!("mount -t tmpfs -o nosuid,nodev,{} tmpfs {d}", self.options()),
            format!("chown --reference={root} {d}; chmod --reference={root} {d}"),
            format!("mkdir {u} {w}"),
            format!("chown --reference={upper} {u} {w}; chmod --reference={upper} {u} {w}"),
        ]
    }
}

/// `chown --reference=FROM TO; chmod --reference=FROM TO`.
fn copy_owner(from: &Path, to: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(from).sys(|| format!("stat {}", from.display()))?;
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid()))
        .sys(|| format!("chown {}:{} {}", m.uid(), m.gid(), to.display()))?;
    let mode = m.permissions().mode() & 0o7777;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .sys(|| format!("chmod {mode:o} {}", to.display()))
}

/// Undo: detach the tmpfs (what was in it goes with it). Not mounted (an `up`
/// interrupted before the mount) or gone: nothing to do. The container's mount
/// namespace, which had its own copy, is gone by now.
pub fn unmount(dir: &Path) -> Result<()> {
    match umount2(dir, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => log::debug!("umount -l {}", dir.display()),
        Err(Errno::EINVAL | Errno::ENOENT) => log::debug!("{} was not mounted", dir.display()),
        Err(e) => return Err(Error::sys(format!("umount {}", dir.display()), e)),
    }
    Ok(())
}

/// The kernel's view of a container's filesystem: its size and what is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub limit_bytes: u64,
    pub used_bytes: u64,
}

/// statfs of the container's tmpfs; None if no tmpfs is mounted there (a
/// mount point: its device differs from its parent's).
pub fn usage(dir: &Path) -> Option<Usage> {
    let own = std::fs::symlink_metadata(dir).ok()?;
    let parent = std::fs::metadata(dir.parent()?).ok()?;
    let s = nix::sys::statfs::statfs(dir).ok()?;
    if own.dev() == parent.dev() || s.filesystem_type().0 as i64 != TMPFS_MAGIC {
        return None;
    }
    let bsize = s.block_size() as u64;
    Some(Usage { limit_bytes: s.blocks() * bsize, used_bytes: (s.blocks() - s.blocks_free()) * bsize })
}

/// `status`'s line: `20M on a tmpfs of its own, 1.2M used` (with the kernel's
/// size where it differs), or where the writes go without --disk.
pub fn status_text(paths: &Paths, spec: &Spec) -> String {
    let Some(want) = spec.disk else {
        return "no limit of its own (the upper dir is on the state dir's filesystem)".into();
    };
    let dir = dir(paths, &spec.name);
    match usage(&dir) {
        Some(u) => {
            let kernel = match u.limit_bytes == rounded(want) {
                true => String::new(),
                false => format!(" (kernel: {})", format_bytes(u.limit_bytes)),
            };
            format!("{}{kernel} on a tmpfs of its own, {} used", format_bytes(want), format_bytes(u.used_bytes))
        }
        None => format!("{}: no tmpfs mounted at {}", format_bytes(want), dir.display()),
    }
}

/// What tmpfs makes of `bytes`: whole pages.
pub fn rounded(bytes: u64) -> u64 {
    bytes.div_ceil(4096) * 4096
}

/// Whether this kernel can put a user namespace's overlay upper dir on a tmpfs:
/// overlayfs then keeps its metadata in `user.overlay.*` xattrs, which tmpfs
/// has only since Linux 6.6.
pub fn tmpfs_has_user_xattrs(release: &str) -> bool {
    let mut v = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    (major, minor) >= (6, 6)
}

/// Before `up` changes anything: --disk with a user namespace needs Linux 6.6.
pub fn check(spec: &Spec) -> Result<()> {
    if spec.disk.is_none() || !spec.userns {
        return Ok(());
    }
    let u = nix::sys::utsname::uname().sys(|| "uname".into())?;
    let release = u.release().to_string_lossy();
    if !tmpfs_has_user_xattrs(&release) {
        return Err(crate::precondition!(
            "--disk: this kernel ({release}) has no user xattrs on tmpfs (Linux 6.6+), which a user namespace's overlay needs for its upper dir: use --no-userns or a newer kernel"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Options;

    fn spec(disk: Option<&str>) -> Spec {
        Spec::new("green", &Options { disk: disk.map(Into::into), ..Default::default() }).unwrap()
    }

    #[test]
    fn upper_and_work_move_onto_the_disk() {
        let p = Paths::new("/s");
        let (with, without) = (spec(Some("20M")), spec(None));
        assert_eq!(with.disk, Some(20 << 20));
        assert_eq!(upper(&p, &with), PathBuf::from("/s/containers/green/disk/upper"));
        assert_eq!(work(&p, &with), PathBuf::from("/s/containers/green/disk/work"));
        assert_eq!(upper(&p, &without), PathBuf::from("/s/containers/green/upper"));
        assert_eq!(work(&p, &without), PathBuf::from("/s/containers/green/work"));
    }

    #[test]
    fn explain_shows_the_mount_and_the_owners() {
        let p = Paths::new("/s");
        let t = Tmpfs::new(&p, &spec(Some("20M")), 20 << 20);
        assert_eq!(t.options(), "size=20971520,nr_inodes=5120,mode=0700");
        assert_eq!(Tmpfs { bytes: 1 << 20, ..t.clone() }.options(), "size=1048576,nr_inodes=1024,mode=0700");
        let sh = t.shell();
        assert_eq!(
            sh[1],
            "mount -t tmpfs -o nosuid,nodev,size=20971520,nr_inodes=5120,mode=0700 tmpfs /s/containers/green/disk"
        );
        assert_eq!(sh[2], "chown --reference=/s/containers/green /s/containers/green/disk; chmod --reference=/s/containers/green /s/containers/green/disk");
        assert_eq!(sh[3], "mkdir /s/containers/green/disk/upper /s/containers/green/disk/work");
        assert!(sh[4].starts_with("chown --reference=/s/containers/green/upper /s/containers/green/disk/upper "));
    }

    #[test]
    fn user_xattrs_on_tmpfs_from_6_6() {
        for (r, ok) in [("6.18.44-fc-v1300", true), ("6.6.0", true), ("6.5.13-amd64", false), ("5.15.0-91", false)] {
            assert_eq!(tmpfs_has_user_xattrs(r), ok, "{r}");
        }
        assert_eq!(rounded(20 << 20), 20 << 20);
        assert_eq!(rounded(1_000_000), 1_003_520);
    }
}
