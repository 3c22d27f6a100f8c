//! Steps 1 and 2 of the setup: join cgroups (and, with --cgroupns, make them the
//! root of a new cgroup namespace), then the network namespace.
//! Both happen before the rootfs steps: the host paths (/sys/fs/cgroup/...,
//! /run/netns/...) are only reachable before pivot_root.

use core::ffi::CStr;

use crate::msg::{self, Error};
use crate::sys::{self, Errno, CLONE_NEWCGROUP, CLONE_NEWNET, O_CLOEXEC, O_RDONLY, O_WRONLY};

/// cgroup v1's list of threads, and the list of processes (v1 and v2).
const TASKS: &[u8] = b"/tasks";
const PROCS: &[u8] = b"/cgroup.procs";

/// Writes `dir` + `file` + NUL into `buf`; None if it does not fit.
pub fn procs_path<'b>(dir: &[u8], file: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    let len = dir.len() + file.len();
    if len >= buf.len() {
        return None;
    }
    buf[..dir.len()].copy_from_slice(dir);
    buf[dir.len()..len].copy_from_slice(file);
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).ok() // None if dir holds a NUL (it cannot: argv)
}

/// Moves init into the cgroup `dir` by writing "0" to its `tasks` (cgroup v1) or,
/// where there is none (v2), to its `cgroup.procs`.
///
/// Why "0": cgroup files take pids as seen from the writer's pid namespace, and
/// init may already be PID 1 of a new one where its host pid means nothing;
/// "0" means "the writing thread" (`tasks`) or "process" (`cgroup.procs`).
/// Every process init starts later is born inside, so no user code ever runs
/// outside the limits.
///
/// Why `tasks` on v1: init has one thread (it never starts another), so moving
/// that thread moves all of init, as `cgroup.procs` would. But a write of "0" to
/// `tasks` moves only the writer, which the kernel does without the global
/// `cgroup_threadgroup_rwsem` (Linux 6.0+): a `cgroup.procs` write takes it for
/// writing, and the first such write after a quiet spell waits an RCU grace
/// period (10-15 ms measured on this project's v1 host), most of a container's
/// start. On older kernels both take the lock, and cost the same.
pub fn cgroup(dir: &CStr) -> Result<(), Error<'_>> {
    let d = dir.to_bytes();
    msg::debug(&[b"join cgroup ", d]);
    let mut buf = [0u8; 4096];
    // Open and write one file; on failure, which file and whether it was the write.
    let mut join = |file: &'static [u8]| -> Result<(), (Errno, &'static [u8], bool)> {
        let path = procs_path(d, file, &mut buf).ok_or((Errno::ENAMETOOLONG, file, false))?;
        let fd = sys::open(path, O_WRONLY | O_CLOEXEC).map_err(|e| (e, file, false))?;
        let written = sys::write(fd, b"0");
        let _ = sys::close(fd);
        written.map(drop).map_err(|e| (e, file, true))
    };
    let joined = match join(TASKS) {
        Err((Errno::ENOENT, _, false)) => join(PROCS), // v2, or no such cgroup (then named by cgroup.procs)
        other => other,
    };
    joined.map_err(|(e, file, wrote)| {
        if !wrote {
            return Error::new(e, &[b"open(", d, file, b")"]);
        }
        let err = Error::new(e, &[b"write(", d, file, b", \"0\")"]);
        match e {
            // cgroup v2's "no internal processes" rule.
            Errno::EBUSY => err.hint("cgroup v2: not a leaf, it has controllers in cgroup.subtree_control"),
            _ => err,
        }
    })
}

/// `--cgroupns`: unshare(CLONE_NEWCGROUP), after the cgroups are joined. A cgroup
/// namespace's root is, in every hierarchy, the cgroup its creator is in at that
/// moment: from now on /proc/self/cgroup in the container reads "/" (v1: each
/// "N:controller:/", v2: "0::/") instead of the host's paths, and a cgroup
/// filesystem mounted inside would show only the container's own subtree.
/// Processes that enter later (host-setup exec) must setns into it to see the same.
pub fn cgroupns() -> Result<(), Error<'static>> {
    msg::debug(&[b"unshare(CLONE_NEWCGROUP)"]);
    sys::unshare(CLONE_NEWCGROUP).map_err(|e| {
        let err = Error::new(e, &[b"unshare(CLONE_NEWCGROUP)"]);
        match e {
            Errno::EINVAL => err.hint("the kernel has no cgroup namespaces (Linux 4.6, CONFIG_CGROUPS)"),
            _ => err,
        }
    })
}

/// setns(2) into the network namespace bound at `file` (e.g. /run/netns/RED,
/// a bind mount of some process's /proc/PID/ns/net made by `ip netns add`).
pub fn netns(file: &CStr) -> Result<(), Error<'_>> {
    let f = file.to_bytes();
    msg::debug(&[b"join network namespace ", f]);
    let fd = sys::open(file, O_RDONLY | O_CLOEXEC).map_err(|e| Error::new(e, &[b"open(", f, b")"]))?;
    let joined = sys::setns(fd, CLONE_NEWNET);
    let _ = sys::close(fd);
    joined.map_err(|e| {
        let err = Error::new(e, &[b"setns(", f, b", CLONE_NEWNET)"]);
        match e {
            Errno::EINVAL => err.hint("not a network namespace"),
            _ => err,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procs_path_appends_and_terminates() {
        let mut buf = [0xffu8; 64];
        assert_eq!(
            procs_path(b"/sys/fs/cgroup/pids/red", PROCS, &mut buf).unwrap().to_bytes(),
            b"/sys/fs/cgroup/pids/red/cgroup.procs"
        );
        assert_eq!(
            procs_path(b"/sys/fs/cgroup/pids/red", TASKS, &mut buf).unwrap().to_bytes(),
            b"/sys/fs/cgroup/pids/red/tasks"
        );
        let mut small = [0u8; 20];
        assert_eq!(procs_path(b"/sys/fs/cgroup/pids", PROCS, &mut small), None);
        let mut exact = [0u8; 16]; // "/a" + "/cgroup.procs" = 15 bytes + NUL
        assert!(procs_path(b"/a", PROCS, &mut exact).is_some());
    }

    /// Plain files stand in for a cgroup's: `tasks` when there is one (v1), else
    /// `cgroup.procs` (v2); the other one is never written.
    #[test]
    fn tasks_first_then_cgroup_procs() {
        let dir = std::env::temp_dir().join(format!("init-join-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        cgroup(&c).unwrap();
        assert_eq!(read("cgroup.procs"), "0", "no tasks file (v2): cgroup.procs");
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        std::fs::write(dir.join("tasks"), "").unwrap();
        cgroup(&c).unwrap();
        assert_eq!((read("tasks").as_str(), read("cgroup.procs").as_str()), ("0", ""), "v1: tasks, alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let e = cgroup(c"/nonexistent-pid1-unit").unwrap_err();
        assert_eq!(e.errno, Errno::ENOENT);
        assert_eq!(e.what.concat(), b"open(/nonexistent-pid1-unit/cgroup.procs)");
        let e = netns(c"/nonexistent-pid1-unit").unwrap_err();
        assert_eq!(e.what.concat(), b"open(/nonexistent-pid1-unit)");
        // A file that is no namespace: setns says EINVAL (needs no privilege to find out).
        let e = netns(c"/proc/self/status").unwrap_err();
        assert_eq!(e.errno, Errno::EINVAL);
        assert_eq!(e.hint, "not a network namespace");
    }
}
