//! `--mask-proc`: runc's default masked and read-only /proc paths (the lists
//! Docker passes in its OCI spec), applied right after the new /proc is mounted.
//!
//! - read-only: each path bind-mounted onto itself, then the bind remounted
//!   MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC (a bind mount takes no flags of its
//!   own at creation: the read-only flag only sticks through the remount);
//! - masked: /dev/null bind-mounted over a file, so it reads empty and takes
//!   (and drops) writes; an empty read-only tmpfs over a directory (the kernel
//!   says ENOTDIR when a file is bound onto a directory: that tells which).
//!
//! Paths the kernel does not have are skipped. The /dev/null is the container's
//! own, from `--dev` (which --mask-proc therefore needs): binding the host's one
//! would also work before pivot_root, but would put a host path into the
//! container's mountinfo and depend on the host's /dev.
//!
//! Without `--restrict` these are cosmetic: CAP_SYS_ADMIN can unmount them.

use core::ffi::CStr;

use crate::msg::{self, Error};
use crate::sys::{
    self, Errno, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, O_CLOEXEC, O_PATH,
};

/// Read-only: writes here would reach the host (the sysctls that are not
/// namespaced, e.g. kernel.core_pattern runs a program as host root; sysrq can
/// reboot the machine; irq affinities, filesystems' and buses' settings).
pub const READ_ONLY: [&CStr; 6] =
    [c"/proc/asound", c"/proc/bus", c"/proc/fs", c"/proc/irq", c"/proc/sys", c"/proc/sysrq-trigger"];

/// Masked: kernel memory (kcore), the keyrings of every user on the host
/// (keys), timer and scheduler internals that leak host activity and addresses.
pub const MASKED: [&CStr; 8] = [
    c"/proc/acpi",
    c"/proc/kcore",
    c"/proc/keys",
    c"/proc/latency_stats",
    c"/proc/timer_list",
    c"/proc/timer_stats",
    c"/proc/sched_debug",
    c"/proc/scsi",
];

/// The flags of the read-only remount.
pub const READ_ONLY_FLAGS: usize = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
/// The flags of the empty tmpfs over a masked directory.
pub const MASKED_DIR_FLAGS: usize = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

/// Applies both lists to the mounted /proc (after pivot_root).
pub fn apply() -> Result<(), Error<'static>> {
    // Checked first: otherwise a missing /dev/null would look like missing
    // /proc files (ENOENT) and everything would be skipped silently.
    let fd = sys::open(c"/dev/null", O_PATH | O_CLOEXEC)
        .map_err(|e| Error::new(e, &[b"open(/dev/null)"]).hint("--mask-proc binds /dev/null: give --dev"))?;
    let _ = sys::close(fd);
    for path in READ_ONLY {
        read_only(path)?;
    }
    for path in MASKED {
        mask(path)?;
    }
    Ok(())
}

fn read_only(path: &'static CStr) -> Result<(), Error<'static>> {
    let p = path.to_bytes();
    match sys::mount(Some(path), path, None, MS_BIND | MS_REC, None) {
        Ok(()) => {}
        Err(Errno::ENOENT) => {
            msg::debug(&[b"skip ", p, b" (absent)"]);
            return Ok(());
        }
        Err(e) => return Err(Error::new(e, &[b"mount(", p, b", ", p, b", MS_BIND|MS_REC)"])),
    }
    msg::debug(&[b"read-only ", p]);
    sys::mount(Some(path), path, None, READ_ONLY_FLAGS, None)
        .map_err(|e| Error::new(e, &[b"mount(", p, b", MS_BIND|MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC)"]))
}

fn mask(path: &'static CStr) -> Result<(), Error<'static>> {
    let p = path.to_bytes();
    match sys::mount(Some(c"/dev/null"), path, None, MS_BIND, None) {
        Ok(()) => {
            msg::debug(&[b"mask ", p, b" (/dev/null)"]);
            Ok(())
        }
        Err(Errno::ENOENT) => {
            msg::debug(&[b"skip ", p, b" (absent)"]);
            Ok(())
        }
        Err(Errno::ENOTDIR) => {
            msg::debug(&[b"mask ", p, b" (empty read-only tmpfs)"]);
            sys::mount(Some(c"tmpfs"), path, Some(c"tmpfs"), MASKED_DIR_FLAGS, None)
                .map_err(|e| Error::new(e, &[b"mount(tmpfs, ", p, b", MS_RDONLY)"]))
        }
        Err(e) => Err(Error::new(e, &[b"mount(/dev/null, ", p, b", MS_BIND)"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_default_lists() {
        let names = |l: &[&CStr]| l.iter().map(|p| p.to_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(&READ_ONLY),
            ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        );
        let masked = names(&MASKED);
        for p in ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi"] {
            assert!(masked.iter().any(|m| m == p), "{p}");
        }
        assert!(READ_ONLY.iter().chain(&MASKED).all(|p| p.to_bytes().starts_with(b"/proc/")));
    }

    #[test]
    fn remount_flags() {
        assert_eq!(READ_ONLY_FLAGS, 4096 | 32 | 1 | 2 | 4 | 8);
        assert_eq!(MASKED_DIR_FLAGS & MS_BIND, 0);
        assert_ne!(MASKED_DIR_FLAGS & MS_RDONLY, 0);
    }
}
