//! The spec's mounts: MOUNT, DEVICE, SYMLINK before the pivot (inside the new
//! root, src/inroot.rs), ROOT_READONLY, and READONLY and MASK after it.
//!
//! The kernel's rules that shape this:
//! - a bind mount ignores every flag but MS_REC on creation: ro, nosuid,
//!   nodev, noexec only take effect through a second call,
//!   MS_REMOUNT|MS_BIND|flags, which changes the bind's own mount flags;
//! - propagation (MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE) cannot be
//!   combined with anything else: it is its own mount(2) call;
//! - in a user namespace, flags the host's mount already had (nosuid, nodev,
//!   noexec, ro, atime) are locked: a remount without them fails EPERM, so
//!   they are read back (statfs) and kept, as runc does.

use core::ffi::CStr;

use crate::inroot::{self, fd_path};
use crate::msg::{self, Error};
use crate::spec::{DEVICE, MOUNT, SYMLINK};
use crate::specrun::{cstr, Device, Item, Mount, Spec, PATH_MAX};
use crate::sys::spec::{
    self as s, MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_SHARED, MS_SLAVE, MS_STRICTATIME, MS_UNBINDABLE, S_IFBLK,
    S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT,
};
use crate::sys::{
    self, Errno, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, O_CLOEXEC,
    O_DIRECTORY, O_PATH,
};

/// The propagation flags; a mount(2) call with one of them does only that.
pub const PROPAGATION: usize = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;
const ATIME: usize = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

/// The mount(2) calls of one MOUNT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Flags of the first call (a bind: MS_BIND and MS_REC only).
    pub first: usize,
    /// A bind's MS_REMOUNT|MS_BIND call with the other flags, if any.
    pub remount: Option<usize>,
    /// The propagation call's flags (0: none).
    pub propagation: usize,
}

/// What to call for a record's flags and propagation; `attach`: a detached
/// mount from an fd, whose flags are set like a bind's.
pub fn plan(flags: u64, propagation: u64, attach: bool) -> Plan {
    let flags = flags as usize;
    let extra = if propagation == crate::spec::NONE { 0 } else { propagation as usize };
    let mut prop = (flags & PROPAGATION) | (extra & (PROPAGATION | MS_REC));
    if prop & PROPAGATION == 0 {
        prop = 0;
    } else if flags & PROPAGATION != 0 {
        prop |= flags & MS_REC;
    }
    let rest = flags & !PROPAGATION;
    if rest & MS_BIND == 0 && !attach {
        return Plan { first: rest, remount: None, propagation: prop };
    }
    let other = rest & !(MS_BIND | MS_REC | MS_REMOUNT);
    let remount = (other != 0).then_some(other | MS_BIND | MS_REMOUNT);
    Plan { first: MS_BIND | (rest & MS_REC), remount, propagation: prop }
}

/// The flags `statfs` reports that a remount in a user namespace must keep
/// (ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC have the MS_ values; ST_RELATIME
/// is 4096, MS_RELATIME 1 << 21), added to `want` unless it sets atime itself.
pub fn with_locked(want: usize, st_flags: u64) -> usize {
    let st = st_flags as usize;
    let mut f = want | (st & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
    if want & ATIME == 0 {
        f |= st & (MS_NOATIME | MS_NODIRATIME);
        if st & 4096 != 0 {
            f |= MS_RELATIME;
        }
    }
    f
}

/// mount(NULL, target, NULL, flags) for a remount; on EPERM again with the
/// mount's locked flags (see the header).
pub fn remount(target: &CStr, flags: usize) -> sys::Result<()> {
    match sys::mount(None, target, None, flags, None) {
        Err(Errno::EPERM) => {
            let st = s::statfs_flags(target)?;
            sys::mount(None, target, None, with_locked(flags, st), None)
        }
        r => r,
    }
}

fn opt<'b>(b: &[u8], buf: &'b mut [u8; PATH_MAX]) -> Option<&'b CStr> {
    (!b.is_empty()).then(|| cstr(b, buf))
}

/// Before the pivot, with the cwd at the new root: MOUNT, DEVICE, SYMLINK in order.
pub fn before_pivot(spec: &Spec, userns: bool) -> Result<(), Error<'static>> {
    let root = sys::open(c".", O_PATH | O_DIRECTORY | O_CLOEXEC).map_err(|e| Error::new(e, &[b"open(new root)"]))?;
    let r = spec.each(MOUNT, &mut |item| match item {
        Item::Mount(m) => mount(root, &m),
        _ => Ok(()),
    });
    let r = r.and_then(|()| {
        spec.each(DEVICE, &mut |item| match item {
            Item::Device(d) => device(root, &d, userns),
            _ => Ok(()),
        })
    });
    let r = r.and_then(|()| {
        spec.each(SYMLINK, &mut |item| match item {
            Item::Symlink { target, link } => symlink(root, target, link),
            _ => Ok(()),
        })
    });
    let _ = sys::close(root);
    r
}

fn mount(root: i32, m: &Mount<'static>) -> Result<(), Error<'static>> {
    let t = m.target;
    let label = if m.source.is_empty() { m.fstype } else { m.source };
    let what: [&[u8]; 5] = [b"mount(", label, b", ", t, b")"];
    let p = plan(m.flags, m.propagation, m.src_fd != crate::spec::NONE);
    let (mut sb, mut fb, mut db) = ([0u8; PATH_MAX], [0u8; PATH_MAX], [0u8; PATH_MAX]);
    let (source, fstype, data) = (opt(m.source, &mut sb), opt(m.fstype, &mut fb), opt(m.data, &mut db));
    // runc's rule for the mount point: an empty file if a file is mounted, else a dir.
    let dir = match (m.src_fd, source) {
        (fd, _) if fd != crate::spec::NONE => s::stat_mode(fd as i32, c""),
        (_, Some(src)) if p.first & MS_BIND != 0 => s::stat_mode(sys::AT_FDCWD as i32, src),
        _ => Ok(S_IFDIR),
    }
    .map_err(|e| Error::new(e, &[b"stat(", m.source, b") for a mount on ", t]))?
        & S_IFMT
        == S_IFDIR;
    let mut remount_flags = p.remount;
    let fd = inroot::mount_point(root, t, dir).map_err(|e| {
        let err = Error::new(e, &[b"mount point ", t, b" in the new root"]);
        match e {
            Errno::EROFS => err.hint("a read-only rootfs: the mount point must exist in it"),
            Errno::ENOSYS => err.hint("openat2 (RESOLVE_IN_ROOT) needs Linux 5.6"),
            _ => err,
        }
    })?;
    let mut pb = [0u8; 32];
    let target = fd_path(fd, &mut pb);
    msg::debug(&[b"mount ", label, b" on ", t]);
    let done = if m.src_fd != crate::spec::NONE {
        let r = s::move_mount_fds(m.src_fd as i32, fd);
        let _ = sys::close(m.src_fd as i32);
        r
    } else if fstype == Some(c"cgroup") {
        crate::cgroup1::mount(root, t, target, p.first)
    } else if fstype == Some(c"cgroup2") {
        crate::cgroup2::mount(target, p.first, data)
    } else {
        match sys::mount(source, target, fstype, p.first, if p.first & MS_BIND != 0 { None } else { data }) {
            // A sysfs belongs to the user namespace owning the netns (here the host's:
            // host-setup made it): in another one its mount is EPERM. Bind the host's
            // /sys instead, as runc falls back, with the flags asked for.
            Err(Errno::EPERM) if fstype == Some(c"sysfs") => {
                msg::debug(&[b"sysfs EPERM (a user namespace): bind the host's /sys on ", t]);
                let other = p.first & !(MS_BIND | MS_REC | MS_REMOUNT);
                remount_flags = (other != 0).then_some(other | MS_BIND | MS_REMOUNT);
                sys::mount(Some(c"/sys"), target, None, MS_BIND | MS_REC, None)
            }
            r => r,
        }
    };
    let done = done.and_then(|()| {
        // The bind is a new mount on `target`: reopen so the remount sees it, not what is under it.
        let Some(flags) = remount_flags else { return Ok(()) };
        let fd2 = inroot::open(root, t, O_PATH)?;
        let mut b2 = [0u8; 32];
        let r = remount(fd_path(fd2, &mut b2), flags);
        let _ = sys::close(fd2);
        r
    });
    let done = done.and_then(|()| match p.propagation {
        0 => Ok(()),
        prop => {
            let fd2 = inroot::open(root, t, O_PATH)?;
            let mut b2 = [0u8; 32];
            let r = sys::mount(None, fd_path(fd2, &mut b2), None, prop, None);
            let _ = sys::close(fd2);
            r
        }
    });
    let _ = sys::close(fd);
    done.map_err(|e| Error::new(e, &what))
}

fn device(root: i32, d: &Device<'static>, userns: bool) -> Result<(), Error<'static>> {
    let what: [&[u8]; 3] = [b"mknod(", d.path, b") in the new root"];
    let kind = match d.kind {
        b'b' => S_IFBLK,
        b'p' => S_IFIFO,
        _ => S_IFCHR,
    };
    // A user namespace may not mknod devices (EPERM even for its root; with
    // --userns init knows, else the EPERM tells): bind the host's node instead,
    // as rootless runc does (its path is the same; before the pivot "/" is the
    // host's). A device cgroup's EPERM ends up here too, harmlessly: it denies
    // the open of the bound node as well.
    if !userns || kind == S_IFIFO {
        match mknod(root, d, kind) {
            Err(e) if e.errno == Errno::EPERM && kind != S_IFIFO => {}
            r => return r,
        }
    }
    let fd = inroot::mount_point(root, d.path, false).map_err(|e| Error::new(e, &what))?;
    let (mut sb, mut pb) = ([0u8; PATH_MAX], [0u8; 32]);
    msg::debug(&[b"bind the host's ", d.path]);
    let r = sys::mount(Some(cstr(d.path, &mut sb)), fd_path(fd, &mut pb), None, MS_BIND, None);
    let _ = sys::close(fd);
    r.map_err(|e| Error::new(e, &[b"mount(", d.path, b", MS_BIND) of the host's device"]))
}

fn mknod(root: i32, d: &Device<'static>, kind: u32) -> Result<(), Error<'static>> {
    let what: [&[u8]; 3] = [b"mknod(", d.path, b") in the new root"];
    inroot::mkdir_parents(root, d.path).map_err(|e| Error::new(e, &what))?;
    let (parent, name) = inroot::split_last(inroot::relative(d.path));
    let pfd = inroot::open(root, parent, O_PATH | O_DIRECTORY).map_err(|e| Error::new(e, &what))?;
    let mut nb = [0u8; PATH_MAX];
    let name = cstr(name, &mut nb);
    msg::debug(&[b"mknod ", d.path]);
    // The mode is exact, whatever init's umask.
    let umask = sys::umask(0);
    let made = match s::mknodat(pfd, name, kind | d.mode, d.major, d.minor) {
        Err(Errno::EEXIST) => Ok(()), // runc leaves a node the image or --dev made
        r => r,
    };
    sys::umask(umask);
    let owned = made.and_then(|()| match (d.uid, d.gid) {
        (crate::spec::NONE, crate::spec::NONE) => Ok(()),
        (u, g) => s::fchownat(pfd, name, u as u32, g as u32),
    });
    let _ = sys::close(pfd);
    owned.map_err(|e| Error::new(e, &what))
}

fn symlink(root: i32, target: &'static [u8], link: &'static [u8]) -> Result<(), Error<'static>> {
    let what: [&[u8]; 5] = [b"symlink(", target, b", ", link, b") in the new root"];
    inroot::mkdir_parents(root, link).map_err(|e| Error::new(e, &what))?;
    let (parent, name) = inroot::split_last(inroot::relative(link));
    let pfd = inroot::open(root, parent, O_PATH | O_DIRECTORY).map_err(|e| Error::new(e, &what))?;
    let (mut tb, mut nb) = ([0u8; PATH_MAX], [0u8; PATH_MAX]);
    let r = match s::symlinkat(cstr(target, &mut tb), pfd, cstr(name, &mut nb)) {
        Err(Errno::EEXIST) => Ok(()),
        r => r,
    };
    let _ = sys::close(pfd);
    r.map_err(|e| Error::new(e, &what))
}

/// ROOT_READONLY, before the pivot: the new root (the cwd, a mount) read-only.
pub fn root_readonly() -> Result<(), Error<'static>> {
    msg::debug(&[b"remount the new root read-only"]);
    remount(c".", MS_BIND | MS_REMOUNT | MS_RDONLY).map_err(|e| Error::new(e, &[b"mount(/, MS_REMOUNT|MS_RDONLY)"]))
}

/// READONLY after the pivot: `path` bound onto itself and remounted read-only;
/// a missing path is fine (runc).
pub fn readonly(path: &'static [u8]) -> Result<(), Error<'static>> {
    let mut b = [0u8; PATH_MAX];
    let p = cstr(path, &mut b);
    match sys::mount(Some(p), p, None, MS_BIND | MS_REC, None) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.map_err(|e| Error::new(e, &[b"mount(", path, b", ", path, b", MS_BIND|MS_REC)"]))?,
    }
    msg::debug(&[b"read-only ", path]);
    remount(p, MS_BIND | MS_REMOUNT | MS_RDONLY)
        .map_err(|e| Error::new(e, &[b"mount(", path, b", MS_BIND|MS_REMOUNT|MS_RDONLY)"]))
}

/// MASK after the pivot: /dev/null over a file, an empty read-only tmpfs over a
/// directory (ENOTDIR from the bind tells which); a missing path is fine.
pub fn mask(path: &'static [u8]) -> Result<(), Error<'static>> {
    let mut b = [0u8; PATH_MAX];
    let p = cstr(path, &mut b);
    match sys::mount(Some(c"/dev/null"), p, None, MS_BIND, None) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => sys::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), MS_RDONLY, None)
            .map_err(|e| Error::new(e, &[b"mount(tmpfs, ", path, b", MS_RDONLY)"])),
        Err(e) => Err(Error::new(e, &[b"mount(/dev/null, ", path, b", MS_BIND)"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::NONE;

    #[test]
    fn plain_mounts_take_their_flags_in_one_call() {
        let f = (MS_NOSUID | MS_NODEV | MS_NOEXEC) as u64;
        assert_eq!(plan(f, NONE, false), Plan { first: f as usize, remount: None, propagation: 0 });
    }

    #[test]
    fn bind_flags_need_the_remount() {
        let f = (MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID) as u64;
        let p = plan(f, 0, false);
        assert_eq!(p.first, MS_BIND | MS_REC);
        assert_eq!(p.remount, Some(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID));
        assert_eq!(p.propagation, 0);
        assert_eq!(plan(MS_BIND as u64, NONE, false).remount, None);
        // A detached mount from an fd: like a bind.
        assert_eq!(plan(MS_RDONLY as u64, NONE, true).remount, Some(MS_BIND | MS_REMOUNT | MS_RDONLY));
    }

    #[test]
    fn propagation_is_its_own_call() {
        let p = plan((MS_BIND | MS_REC) as u64, (MS_SLAVE | MS_REC) as u64, false);
        assert_eq!((p.first, p.remount, p.propagation), (MS_BIND | MS_REC, None, MS_SLAVE | MS_REC));
        // Given in the flags: taken out of the first call.
        let p = plan((MS_NOSUID | MS_SHARED) as u64, NONE, false);
        assert_eq!((p.first, p.propagation), (MS_NOSUID, MS_SHARED));
        assert_eq!(plan(0, MS_REC as u64, false).propagation, 0);
    }

    #[test]
    fn locked_flags_are_kept() {
        let st = (MS_NOSUID | MS_NODEV | 4096) as u64; // ST_RELATIME
        assert_eq!(
            with_locked(MS_BIND | MS_REMOUNT | MS_RDONLY, st),
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_RELATIME
        );
        assert_eq!(with_locked(MS_NOATIME, st), MS_NOATIME | MS_NOSUID | MS_NODEV);
    }
}
