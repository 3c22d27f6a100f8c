//! Step 3 of the setup: the container's root filesystem.
//!
//! mount(MS_REC|MS_PRIVATE "/") -> overlay (or bind) on DIR -> chdir(DIR) ->
//! [--dev: DIR/dev] -> [--spec-fd: its mounts, devices, links] -> mount proc on
//! DIR/proc (unless the spec mounts one) -> [createContainer hooks] ->
//! [ROOT_READONLY] -> pivot_root(".", ".")
//! -> umount2(".", MNT_DETACH) -> chdir("/") -> [--mask-proc].
//! (--spec-fd's ROOT_PROPAGATION replaces MS_PRIVATE; NO_PIVOT replaces the pivot;
//! a ROOT_PROPAGATION that is not recursively private or slave adds
//! src/rootparent.rs: DIR's parent mount private (slave), the old root rslave.)
//!
//! The caller must have given init a new mount namespace (unshare -m /
//! CLONE_NEWNS): pivot_root re-roots every process of the mount namespace whose
//! root was the old root, so doing this in the host's namespace would re-root the host.
//! The tutorial's way, `mkdir put_old; pivot_root . put_old; umount -l put_old;
//! rmdir put_old`, and runc's and youki's, `pivot_root . .; umount -l .`, are
//! equivalent; the second is used because it needs no directory: the put_old made
//! and removed in the container's upper dir cost an rmdir on the host's
//! filesystem, 0.3-4 ms on ext4 (measured), on every start.

use core::ffi::CStr;

use crate::msg::{self, Error};
use crate::signals::Inherited;
use crate::specrun::Spec;
use crate::sys::spec::{MS_MOVE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
use crate::sys::{
    self, Errno, MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC, O_CLOEXEC, O_DIRECTORY,
    O_PATH,
};
use crate::{dev, maskproc, mounts, rootparent, userns};

/// The kernel reads at most one page of mount options.
const OPTIONS_MAX: usize = 4096;

/// Where the rootfs comes from: DIR, and the overlay layers if any.
#[derive(Debug, Clone, Copy)]
pub struct Rootfs<'a> {
    pub dir: &'a CStr,
    pub lower: Option<&'a CStr>,
    pub upper: Option<&'a CStr>,
    pub work: Option<&'a CStr>,
    /// --dev: a minimal /dev (src/dev.rs) before pivot_root.
    pub dev: bool,
    /// --mask-proc: runc's masked and read-only /proc paths (src/maskproc.rs).
    pub mask_proc: bool,
    /// --userns: layers attached from fds, userxattr, bound device nodes (src/userns.rs).
    pub userns: bool,
    /// --spec-fd: "/"'s propagation, the spec's mounts, devices and links
    /// before the pivot (src/mounts.rs), ROOT_READONLY, NO_PIVOT.
    pub spec: Option<Spec>,
    /// What the createContainer hooks get back (src/hooks.rs).
    pub inherited: Inherited,
    /// --ready-fd: PIVOT_SYNC talks to the runtime on it (src/pivotsync.rs).
    pub ready_fd: Option<i32>,
}

/// Builds "lowerdir=L[,upperdir=U,workdir=W]" + NUL in `buf`; None if it exceeds a page.
/// (Directory names holding ',' or ':' cannot be expressed; overlayfs has no escaping
/// for ',' in the mount(2) data string.)
pub fn overlay_options<'b>(
    lower: &[u8],
    upper_work: Option<(&[u8], &[u8])>,
    userxattr: bool,
    buf: &'b mut [u8; OPTIONS_MAX],
) -> Option<&'b CStr> {
    let mut len = 0;
    let mut put = |s: &[u8]| -> Option<()> {
        let end = len + s.len();
        if end > OPTIONS_MAX {
            return None;
        }
        buf[len..end].copy_from_slice(s);
        len = end;
        Some(())
    };
    put(b"lowerdir=")?;
    put(lower)?;
    if let Some((upper, work)) = upper_work {
        put(b",upperdir=")?;
        put(upper)?;
        put(b",workdir=")?;
        put(work)?;
    }
    if userxattr {
        put(b",userxattr")?;
    }
    put(b"\0")?;
    CStr::from_bytes_with_nul(&buf[..len]).ok()
}

/// Mounts the rootfs and pivots into it; afterwards "/" is DIR, the cwd is "/",
/// /proc is this pid namespace's, and the host's tree is gone from this namespace.
pub fn enter(r: Rootfs<'_>) -> Result<(), Error<'_>> {
    let dir = r.dir;
    let d = dir.to_bytes();

    // A clear message when DIR is missing, rather than an ENOENT from mount
    // that could as well be about a layer.
    msg::debug(&[b"check rootfs ", d]);
    let fd = sys::open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)
        .map_err(|e| Error::new(e, &[b"open(", d, b")"]).hint("--rootfs must be an existing directory"))?;
    let _ = sys::close(fd);

    // On systemd hosts "/" is a shared mount, and a new mount namespace copies it
    // as shared: pivot_root then fails with EINVAL, and every mount below would
    // propagate back to the host. Make our whole tree private first (MS_REC).
    // A spec's ROOT_PROPAGATION goes on "/" instead, except a shared or
    // unbindable one: pivot_root refuses a shared new root or parent (EINVAL),
    // and an unbindable "/" cannot be bound onto itself below. Those are made
    // private first and get their propagation after the pivot (a shared "/"
    // is then a peer group of the container's own, not the host's).
    let wanted = r.spec.map_or(MS_REC | MS_PRIVATE, |s| s.propagation);
    let first = if wanted & (MS_SHARED | MS_UNBINDABLE) != 0 { MS_REC | MS_PRIVATE } else { wanted };
    msg::debug(&[b"set the propagation of / (MS_REC|MS_PRIVATE unless the spec says)"]);
    sys::mount(None, c"/", None, first, None).map_err(|e| {
        let err = Error::new(e, &[b"mount(/, MS_REC|MS_PRIVATE)"]);
        match e {
            Errno::EINVAL => err.hint("\"/\" is not a mount point: run init in a new mount namespace, not a chroot"),
            _ => err,
        }
    })?;
    // A non-recursive word leaves the mounts below "/" in the host's peer groups:
    // pivot_root says EINVAL if new_root's parent mount is shared (src/rootparent.rs).
    let all_unshared = first & MS_REC != 0 && first & (MS_PRIVATE | MS_SLAVE) != 0;
    if !all_unshared {
        rootparent::parent_unshared(dir, if first & MS_SLAVE != 0 { MS_SLAVE } else { MS_PRIVATE })?;
    }

    // pivot_root needs new_root to be a mount point (EINVAL/EBUSY otherwise):
    // the overlay is one; a plain directory is bind-mounted onto itself.
    match r.lower {
        Some(lower) => {
            if r.userns {
                userns::attach_layers(lower)?;
            }
            let mut buf = [0u8; OPTIONS_MAX];
            let upper_work = r.upper.zip(r.work).map(|(u, w)| (u.to_bytes(), w.to_bytes()));
            let what: [&[u8]; 3] = [b"mount(overlay, ", d, b")"];
            let options = overlay_options(lower.to_bytes(), upper_work, r.userns, &mut buf)
                .ok_or(Error::new(Errno::E2BIG, &what).hint("overlay options longer than a page"))?;
            msg::debug(&[b"mount overlay on ", d, b": ", options.to_bytes()]);
            sys::mount(Some(c"overlay"), dir, Some(c"overlay"), 0, Some(options)).map_err(|e| {
                let err = Error::new(e, &what);
                match e {
                    Errno::ENOENT => err.hint("a --lower, --upper or --work dir is missing"),
                    Errno::EINVAL => err.hint(
                        "overlayfs refused the dirs, see dmesg: upper and work must be on one filesystem, work empty",
                    ),
                    _ => err,
                }
            })?;
        }
        None => {
            msg::debug(&[b"bind mount ", d, b" onto itself"]);
            sys::mount(Some(dir), dir, None, MS_BIND | MS_REC, None)
                .map_err(|e| Error::new(e, &[b"mount(", d, b", ", d, b", MS_BIND|MS_REC)"]))?;
        }
    }

    sys::chdir(dir).map_err(|e| Error::new(e, &[b"chdir(", d, b")"]))?;

    // Before the pivot, as runc does: from here on every path is relative to the new root.
    if r.dev {
        dev::populate(dir, r.userns)?;
    }
    if let Some(s) = r.spec {
        mounts::before_pivot(&s, r.userns)?;
    }

    // A /proc of this pid namespace (init is its PID 1), in the new root before the
    // pivot, as runc mounts it. Not after: in a user namespace the kernel mounts a
    // proc only where one is fully visible already (the host's, which the pivot
    // takes away); and between pivot_root(".", ".") and the detach, "/proc" would
    // name the host's.
    // (A spec that mounts /proc itself, with its own options, gets only that one.)
    if !r.spec.is_some_and(|s| s.mounts_proc) {
        msg::debug(&[b"mount proc on ", d, b"/proc"]);
        match sys::mkdir(c"proc", 0o555) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::new(e, &[b"mkdir(", d, b"/proc)"])),
        }
        sys::mount(Some(c"proc"), c"proc", Some(c"proc"), MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            .map_err(|e| Error::new(e, &[b"mount(proc, ", d, b"/proc)"]))?;
    }
    // The createContainer hooks: in the container's namespaces, its mounts
    // made, "/" still the runtime's (runc's point: before the pivot, before the
    // root goes read-only).
    // Before them, the runtime's prestart and createRuntime hooks (PIVOT_SYNC).
    if let Some(s) = r.spec {
        if s.pivot_sync {
            crate::pivotsync::wait(r.ready_fd)?;
        }
        crate::hooks::run_all(&s, crate::spec::CREATE_HOOK, r.inherited)?;
    }
    if r.spec.is_some_and(|s| s.root_readonly) {
        mounts::root_readonly()?;
    }
    if r.spec.is_some_and(|s| s.no_pivot) {
        // runc --no-pivot (a rootfs on ramfs, where pivot_root says EINVAL): move
        // the new root over "/" and chroot into it. Weaker: the old root stays
        // under it in the namespace, reachable by whoever may chroot again.
        msg::debug(&[b"no pivot: mount(., /, MS_MOVE) + chroot(.)"]);
        sys::mount(Some(c"."), c"/", None, MS_MOVE, None)
            .map_err(|e| Error::new(e, &[b"mount(", d, b", /, MS_MOVE)"]))?;
        sys::spec::chroot(c".").map_err(|e| Error::new(e, &[b"chroot(", d, b")"]))?;
        sys::chdir(c"/").map_err(|e| Error::new(e, &[b"chdir(/)"]))?;
        return after_pivot(r, wanted);
    }

    // pivot_root(".", ".") stacks the old root on top of DIR at "/"; the umount
    // of "." then starts from DIR, moves up that stack and detaches the old root
    // (pivot_root(2)). From then on "/" is DIR for every process of this mount
    // namespace whose root was the old root (here: only init).
    msg::debug(&[b"pivot_root(", d, b", .)"]);
    sys::pivot_root(c".", c".").map_err(|e| {
        let err = Error::new(e, &[b"pivot_root(", d, b", .)"]);
        match e {
            Errno::EINVAL => err.hint("\"/\" or new_root is shared, or \"/\" is an initramfs"),
            Errno::EBUSY => err.hint("new_root is not a mount point"),
            _ => err,
        }
    })?;
    // A plain umount is EBUSY (init's own old root was there until just now, and
    // the host's mounts hang below): detach it lazily. "/" is private (above), so
    // nothing of this reaches the host's namespace. Never a recursive delete of
    // anything: the tutorial's `rm -rf put_old` would delete the host's files had
    // the unmount silently not happened.
    // The detach's umounts propagate to the peers of each mount's parent: the
    // host's, unless "/" was made recursively private or slave (src/rootparent.rs).
    if !all_unshared {
        rootparent::old_root_slave()?;
    }
    msg::debug(&[b"detach the old root (umount2(., MNT_DETACH))"]);
    sys::umount2(c".", MNT_DETACH).map_err(|e| Error::new(e, &[b"umount2(old root, MNT_DETACH)"]))?;
    sys::chdir(c"/").map_err(|e| Error::new(e, &[b"chdir(/)"]))?;
    after_pivot(r, wanted)
}

fn after_pivot(r: Rootfs<'_>, propagation: usize) -> Result<(), Error<'_>> {
    if propagation & (MS_SHARED | MS_UNBINDABLE) != 0 {
        sys::mount(None, c"/", None, propagation, None)
            .map_err(|e| Error::new(e, &[b"mount(/, the spec's root propagation)"]))?;
    }
    if r.mask_proc {
        maskproc::apply()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_text() {
        let mut buf = [0u8; OPTIONS_MAX];
        let o = overlay_options(b"/l/tools:/l/myroot", Some((b"/c/up", b"/c/work")), false, &mut buf).unwrap();
        assert_eq!(o.to_bytes(), b"lowerdir=/l/tools:/l/myroot,upperdir=/c/up,workdir=/c/work");
        let o = overlay_options(b"/a:/b", None, false, &mut buf).unwrap();
        assert_eq!(o.to_bytes(), b"lowerdir=/a:/b");
        let o = overlay_options(b"/a", Some((b"/u", b"/w")), true, &mut buf).unwrap();
        assert_eq!(o.to_bytes(), b"lowerdir=/a,upperdir=/u,workdir=/w,userxattr");
        let long = [b'x'; OPTIONS_MAX];
        assert!(overlay_options(&long, None, false, &mut buf).is_none());
        let just_fits = [b'x'; OPTIONS_MAX - 10]; // 9 for "lowerdir=", 1 for the NUL
        assert_eq!(overlay_options(&just_fits, None, false, &mut buf).unwrap().to_bytes_with_nul().len(), OPTIONS_MAX);
        let one_more = [b'x'; OPTIONS_MAX - 9];
        assert!(overlay_options(&one_more, None, false, &mut buf).is_none());
    }

    #[test]
    fn missing_rootfs_is_named_before_any_mount() {
        let r = Rootfs {
            dir: c"/nonexistent-pid1-unit",
            lower: None,
            upper: None,
            work: None,
            dev: true,
            mask_proc: true,
            userns: false,
            spec: None,
            inherited: crate::signals::Inherited { mask: 0, ignored: 0 },
            ready_fd: None,
        };
        let e = enter(r).unwrap_err();
        assert_eq!(e.errno, Errno::ENOENT);
        assert_eq!(e.what.concat(), b"open(/nonexistent-pid1-unit)");
    }
}
