//! A MOUNT of fstype "cgroup" on a host with cgroup v1 hierarchies (on a pure
//! v2 host cgroup2.rs mounts the unified tree instead): a tmpfs on the target,
//! then one cgroup filesystem per hierarchy init belongs to (/proc/self/cgroup), named as on the host
//! (cpu,cpuacct; systemd for name=systemd) with links for co-mounted
//! controllers (cpu -> cpu,cpuacct), as runc lays it out. With --cgroupns each
//! shows the container's own cgroup as its root; without it, the host's tree.

use core::ffi::CStr;

use crate::inroot::{self, fd_path};
use crate::specrun::{cstr, PATH_MAX};
use crate::sys::spec::{mkdirat, symlinkat};
use crate::sys::{
    self, Errno, Result, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, O_CLOEXEC,
};

/// (directory name, mount data, own cgroup path) of a /proc/self/cgroup line,
/// for v1 hierarchies only.
pub fn hierarchy(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut f = line.splitn(3, |&b| b == b':');
    let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
    if id == b"0" || controllers.is_empty() {
        return None;
    }
    Some((controllers.strip_prefix(b"name=").unwrap_or(controllers), controllers, path))
}

/// In a user namespace that does not own the cgroup namespace (the config asked
/// for none), mounting a v1 hierarchy is EPERM: bind the host's dir of init's
/// own cgroup there instead, as runc always does on v1 (/sys/fs/cgroup/NAME is
/// where the host mounts it; its files stay the host root's, read-only to the
/// container).
fn bind_own(name: &[u8], path: &[u8], at: &CStr, flags: usize) -> Result<()> {
    const BASE: &[u8] = b"/sys/fs/cgroup/";
    let mut src = [0u8; PATH_MAX];
    let len = BASE.len() + name.len() + path.len();
    let s = src.get_mut(..len).ok_or(Errno::ENAMETOOLONG)?;
    s[..BASE.len()].copy_from_slice(BASE);
    s[BASE.len()..BASE.len() + name.len()].copy_from_slice(name);
    s[BASE.len() + name.len()..].copy_from_slice(path);
    let mut sb = [0u8; PATH_MAX];
    crate::msg::debug(&[b"cgroup mount EPERM (a user namespace): bind ", &src[..len]]);
    sys::mount(Some(cstr(&src[..len], &mut sb)), at, None, MS_BIND | MS_REC, None)?;
    let keep = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if keep == 0 {
        return Ok(());
    }
    crate::mounts::remount(at, MS_BIND | MS_REMOUNT | keep)
}

pub fn mount(root: i32, target: &[u8], at: &CStr, flags: usize) -> Result<()> {
    let fd = sys::open(c"/proc/self/cgroup", O_CLOEXEC)?;
    let mut buf = [0u8; 4096];
    let n = sys::read_full(fd, &mut buf);
    let _ = sys::close(fd);
    let n = n?;
    // A pure v2 host has no hierarchy for the tmpfs below: it stayed empty (issue 22).
    if crate::cgroup2::unified_only(&buf[..n]) {
        return crate::cgroup2::mount(at, flags, None);
    }
    let keep = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    sys::mount(Some(c"cgroup"), at, Some(c"tmpfs"), keep, Some(c"mode=755"))?;
    // Reopened: the fd behind `at` is the directory under the new tmpfs.
    let dir = inroot::open(root, target, sys::O_PATH | sys::O_DIRECTORY)?;
    let r = buf[..n].split(|&b| b == b'\n').filter_map(hierarchy).try_for_each(|(name, controllers, path)| {
        let mut nb = [0u8; PATH_MAX];
        match mkdirat(dir, cstr(name, &mut nb), 0o555) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        let mut data = [0u8; PATH_MAX];
        let d: &[u8] = if controllers.starts_with(b"name=") {
            data[..5].copy_from_slice(b"none,");
            data[5..5 + controllers.len()].copy_from_slice(controllers);
            &data[..5 + controllers.len()]
        } else {
            controllers
        };
        let (mut db, mut pb, mut full) = ([0u8; PATH_MAX], [0u8; 32], [0u8; PATH_MAX]);
        let base = fd_path(dir, &mut pb).to_bytes();
        full[..base.len()].copy_from_slice(base);
        full[base.len()] = b'/';
        full[base.len() + 1..base.len() + 1 + name.len()].copy_from_slice(name);
        let mut fb = [0u8; PATH_MAX];
        let p = cstr(&full[..base.len() + 1 + name.len()], &mut fb);
        match sys::mount(Some(c"cgroup"), p, Some(c"cgroup"), flags, Some(cstr(d, &mut db))) {
            Err(Errno::EPERM) => bind_own(name, path, p, flags)?,
            r => r?,
        }
        if name.contains(&b',') && !controllers.starts_with(b"name=") {
            for c in name.split(|&b| b == b',') {
                let mut cb = [0u8; PATH_MAX];
                match symlinkat(cstr(name, &mut nb), dir, cstr(c, &mut cb)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    });
    let r = r.and_then(|()| {
        if flags & MS_RDONLY == 0 {
            return Ok(());
        }
        let mut pb = [0u8; 32];
        crate::mounts::remount(fd_path(dir, &mut pb), MS_BIND | MS_REMOUNT | MS_RDONLY | keep)
    });
    let _ = sys::close(dir);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines_only() {
        assert_eq!(hierarchy(b"4:cpu,cpuacct:/x"), Some((&b"cpu,cpuacct"[..], &b"cpu,cpuacct"[..], &b"/x"[..])));
        assert_eq!(hierarchy(b"1:name=systemd:/"), Some((&b"systemd"[..], &b"name=systemd"[..], &b"/"[..])));
        assert_eq!(hierarchy(b"0::/user.slice"), None);
        assert_eq!(hierarchy(b""), None);
        assert_eq!(hierarchy(b"5::/"), None);
    }
}
