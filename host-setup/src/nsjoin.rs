//! Namespaces joined by path (an OCI bundle's `linux.namespaces[].path`: how
//! Kubernetes' pods share ipc, uts and pid): the thread that clones init enters
//! each one first, so the child is born in them, and goes back afterwards.

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

use crate::error::{Result, SysContext};

/// The namespace types that can be joined before the clone, in the order they are
/// entered (the network namespace is the netns step's: init enters it by path).
pub const JOINABLE: [(&str, libc::c_int); 5] = [
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// This thread in the given namespaces until dropped (then back in its own).
pub struct Joined {
    back: Vec<(File, CloneFlags)>,
    cwd: Option<File>,
}

impl Joined {
    /// `joins`: (path, CLONE_NEW*) pairs. A pid namespace applies to children only
    /// (setns(CLONE_NEWPID) sets pid_for_children): the clone that follows lands in it.
    pub fn enter(joins: &[(PathBuf, libc::c_int)]) -> Result<Joined> {
        let mut j = Joined { back: vec![], cwd: None };
        for (name, flag) in JOINABLE {
            let Some((path, _)) = joins.iter().find(|(_, f)| *f == flag) else { continue };
            let flags = CloneFlags::from_bits_truncate(flag);
            if flag == libc::CLONE_NEWNS {
                // The kernel refuses setns(CLONE_NEWNS) to a thread sharing its fs_struct
                // (root, cwd) with others (EINVAL): this thread gets its own first. Entering
                // a mount namespace moves root and cwd to its root: keep the cwd to come back.
                nix::sched::unshare(CloneFlags::CLONE_FS).sys(|| "unshare(CLONE_FS)".into())?;
                j.cwd = Some(File::open(".").sys(|| "open the current directory".into())?);
            }
            let own = format!("/proc/thread-self/ns/{name}");
            let back = File::open(&own).sys(|| format!("open {own}"))?;
            let ns = File::open(path).sys(|| format!("open {}", path.display()))?;
            setns(&ns, flags).sys(|| format!("setns({}, CLONE_NEW{})", path.display(), name.to_uppercase()))?;
            j.back.push((back, flags));
        }
        Ok(j)
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        for (back, flags) in self.back.iter().rev() {
            if let Err(e) = setns(back, *flags) {
                log::error!("setns back into host-setup's own namespace ({flags:?}): {e}");
            }
        }
        if let Some(cwd) = &self.cwd {
            if let Err(e) = nix::unistd::fchdir(cwd) {
                log::error!("fchdir back to host-setup's directory: {e}");
            }
        }
    }
}
