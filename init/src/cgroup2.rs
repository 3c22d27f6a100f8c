//! A MOUNT of fstype "cgroup2", or of fstype "cgroup" on a pure cgroup v2 host
//! (init's /proc/self/cgroup has only the "0::PATH" line, no v1 hierarchy):
//! the unified tree, as runc mounts it. With a cgroup namespace it shows the
//! container's own cgroup as its root; without one, the host's tree.
//!
//! The kernel's rule: only CAP_SYS_ADMIN over the user namespace that owns the
//! caller's *cgroup* namespace may mount cgroup2. A container with a user
//! namespace of its own but the host's cgroup namespace (config.json without
//! {"type": "cgroup"}) gets EPERM, so init binds the host's dir of its own
//! cgroup there instead (runc's fallback; our v1 one too, cgroup1.rs). Its
//! files stay the host root's: inside they belong to the overflow id (nobody).

use core::ffi::CStr;

use crate::specrun::{cstr, PATH_MAX};
use crate::sys::{self, Errno, Result, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT};

/// Where the host mounts the unified tree.
const BASE: &[u8] = b"/sys/fs/cgroup";

/// Whether `/proc/self/cgroup`'s text names no v1 hierarchy (a pure v2 host).
pub fn unified_only(proc_self_cgroup: &[u8]) -> bool {
    !proc_self_cgroup.split(|&b| b == b'\n').any(|l| crate::cgroup1::hierarchy(l).is_some())
}

/// The unified hierarchy's path of the "0::PATH" line ("/" if there is none).
pub fn own_path(proc_self_cgroup: &[u8]) -> &[u8] {
    proc_self_cgroup.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"0::")).unwrap_or(b"/")
}

/// `data`: the mount's options (nsdelegate...), dropped by the bind.
pub fn mount(at: &CStr, flags: usize, data: Option<&CStr>) -> Result<()> {
    match sys::mount(Some(c"cgroup2"), at, Some(c"cgroup2"), flags, data) {
        // EPERM: a user namespace that does not own our cgroup namespace (header);
        // EBUSY: runc falls back on it too.
        Err(Errno::EPERM | Errno::EBUSY) => bind_own(at, flags),
        r => r,
    }
}

fn bind_own(at: &CStr, flags: usize) -> Result<()> {
    let fd = sys::open(c"/proc/self/cgroup", sys::O_CLOEXEC)?;
    let mut buf = [0u8; 4096];
    let n = sys::read_full(fd, &mut buf);
    let _ = sys::close(fd);
    let path = own_path(&buf[..n?]);
    let path = if path == b"/" { &b""[..] } else { path };
    let mut src = [0u8; PATH_MAX];
    let s = src.get_mut(..BASE.len() + path.len()).ok_or(Errno::ENAMETOOLONG)?;
    s[..BASE.len()].copy_from_slice(BASE);
    s[BASE.len()..].copy_from_slice(path);
    crate::msg::debug(&[b"cgroup2 mount EPERM (a user namespace without its cgroup namespace): bind ", s]);
    let mut sb = [0u8; PATH_MAX];
    sys::mount(Some(cstr(s, &mut sb)), at, None, MS_BIND | MS_REC, None)?;
    let keep = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if keep == 0 {
        return Ok(());
    }
    crate::mounts::remount(at, MS_BIND | MS_REMOUNT | keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_only_and_its_path() {
        assert!(unified_only(b"0::/hs/red\n"));
        assert!(!unified_only(b"12:pids:/hs/red\n1:name=systemd:/x\n0::/x\n"));
        assert_eq!(own_path(b"0::/hs/red\n"), b"/hs/red");
        assert_eq!(own_path(b"3:cpu:/a\n0::/\n"), b"/");
        assert_eq!(own_path(b""), b"/");
    }
}
