//! A user namespace joined by path (an OCI bundle's `linux.namespaces[].path`
//! of type user). The host's thread cannot enter it and come back (it would lose
//! its privileges over the host), so the cloned child joins it, then makes the
//! container's new namespaces (sys::join_userns_in_child): made at clone they
//! would be the host's, and root of the joined namespace could not mount in
//! them. A new pid namespace then needs one more clone: init is the grandchild,
//! cloned with CLONE_PARENT so it is host-setup's child all the same; the child
//! in between reports its pid on a pipe and exits.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::unistd::Pid;

use crate::error::{Result, SysContext};
use crate::sys;

/// The namespaces the child makes itself after the join (the rest are none of
/// the user namespace's business: joined ones are entered before the clone).
const AFTER_JOIN: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;

pub struct JoinUser {
    /// Named in errors.
    pub path: String,
    ns: File,
    unshare: libc::c_int,
    new_pid: bool,
    pid_r: OwnedFd,
    pid_w: OwnedFd,
}

impl JoinUser {
    /// Opens the namespace at `path` and takes the new namespaces out of the
    /// clone `flags` (the child makes them after the join).
    pub fn prepare(path: &Path, flags: &mut libc::c_int) -> Result<JoinUser> {
        let ns = File::open(path).sys(|| format!("open {} (the user namespace to join)", path.display()))?;
        let (pid_r, pid_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?;
        let j = JoinUser {
            path: path.display().to_string(),
            ns,
            unshare: *flags & AFTER_JOIN,
            new_pid: *flags & libc::CLONE_NEWPID != 0,
            pid_r,
            pid_w,
        };
        *flags &= !(AFTER_JOIN | libc::CLONE_NEWPID);
        Ok(j)
    }

    /// In the child: join, make the namespaces; the child in between reports
    /// the grandchild's pid and exits. Err: the caller reports it on the ready pipe.
    pub fn in_child(&self) -> std::result::Result<(), Errno> {
        let _ = nix::unistd::close(self.pid_r.as_raw_fd());
        match sys::join_userns_in_child(self.ns.as_raw_fd(), self.unshare, self.new_pid)? {
            None => {
                let _ = nix::unistd::close(self.pid_w.as_raw_fd());
                Ok(())
            }
            Some(pid) => {
                let _ = sys::write_all_fd(self.pid_w.as_raw_fd(), &pid.to_ne_bytes());
                sys::exit_child(0)
            }
        }
    }

    /// In the parent: init's pid (`child` itself, or the grandchild it made).
    /// If the child failed, its error (on the ready pipe, `ready`) is returned.
    pub fn init_pid(self, child: Pid, ready: File) -> Result<(Pid, File)> {
        if !self.new_pid {
            return Ok((child, ready));
        }
        drop(self.pid_w);
        let code = sys::wait_exit(child)?;
        let mut buf = [0u8; 4];
        let mut r = File::from(self.pid_r);
        if code == 0 && r.read_exact(&mut buf).is_ok() {
            return Ok((Pid::from_raw(i32::from_ne_bytes(buf)), ready));
        }
        // Nothing else holds the ready pipe's write end now: its error, or EOF.
        Err(crate::spawn::wait_ready(ready, crate::spawn::READY_TIMEOUT)
            .err()
            .unwrap_or_else(|| crate::failed!("join the user namespace: the child exited with {code}")))
    }
}

type Errno = nix::errno::Errno;

/// The host uid and gid of the root of the user namespace at `path`, when the
/// path names a process's (/proc/PID/ns/user: its uid_map and gid_map are beside
/// it); None otherwise, or if 0 is not mapped there.
pub fn joined_root(path: &Path) -> Option<(u32, u32)> {
    let dir = path.parent()?.parent()?;
    if path.file_name()? != "user" || path.parent()?.file_name()? != "ns" {
        return None;
    }
    let root = |f: &str| -> Option<u32> {
        let text = std::fs::read_to_string(dir.join(f)).ok()?;
        text.lines().find_map(|l| {
            let v: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            match v[..] {
                [inside, outside, count] if inside == 0 && count > 0 => Some(outside as u32),
                _ => None,
            }
        })
    };
    Some((root("uid_map")?, root("gid_map")?))
}
