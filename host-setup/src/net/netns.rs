//! Named network namespaces, kept the way iproute2 keeps them: an empty file
//! /run/netns/NAME with the namespace (an nsfs inode) bind-mounted onto it. The mount
//! keeps the namespace alive with no process in it, and `ip netns exec NAME` opens it.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use log::{debug, warn};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;

use super::{netns_path, NETNS_DIR};
use crate::error::{Error, Result, SysContext};
use crate::{failed, precondition};

/// Opens /run/netns/NAME; `None` if there is no such namespace.
pub(crate) fn open(name: &str) -> Result<Option<File>> {
    let path = netns_path(name);
    match File::open(&path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).sys(|| format!("open netns {name} ({})", path.display())),
    }
}

/// Opens /run/netns/NAME; a missing namespace is a precondition error.
pub(crate) fn open_existing(name: &str) -> Result<File> {
    open(name)?.ok_or_else(|| precondition!("netns {name} does not exist ({})", netns_path(name).display()))
}

/// Runs `f` in a short-lived thread that first joined the namespace `ns`, and waits for
/// it. setns(CLONE_NEWNET) changes only the calling task, so the caller stays where it
/// is, and the scope guarantees no thread outlives the call (the process forks later).
pub(crate) fn run_in<T: Send>(name: &str, ns: &File, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns, CloneFlags::CLONE_NEWNET)
                .sys(|| format!("enter netns {name} ({})", netns_path(name).display()))
                .map_err(|e| match e.errno() {
                    Some(Errno::EINVAL) => e.hint("the file is not a mounted network namespace"),
                    _ => e,
                })?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(failed!("netns {name}: the helper thread panicked")))
    })
}

/// `ip netns add NAME`, step for step (iproute2 ip/ipnetns.c, netns_add).
pub(crate) fn create(name: &str) -> Result<()> {
    let dir = Path::new(NETNS_DIR);
    let path = netns_path(name);
    match nix::unistd::mkdir(dir, Mode::from_bits_truncate(0o755)) {
        Ok(()) => debug!("mkdir {NETNS_DIR}"),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys(format!("mkdir {NETNS_DIR}"), e)),
    }
    make_dir_shared(dir)?;

    // O_EXCL: an existing name is refused, never reused.
    match nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => drop(fd),
        Err(Errno::EEXIST) => return Err(precondition!("netns {name} already exists ({})", path.display())),
        Err(e) => return Err(Error::sys(format!("create {}", path.display()), e)),
    }
    debug!("created {}", path.display());

    let made = std::thread::scope(|s| {
        s.spawn(|| {
            // The new namespace is this helper thread's alone; the bind mount is what keeps
            // it alive once the thread has ended.
            unshare(CloneFlags::CLONE_NEWNET).sys(|| format!("create netns {name} (unshare CLONE_NEWNET)"))?;
            mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .sys(|| format!("bind-mount /proc/thread-self/ns/net onto {}", path.display()))
        })
        .join()
        .unwrap_or_else(|_| Err(failed!("create netns {name}: the helper thread panicked")))
    });
    if let Err(e) = made {
        if let Err(u) = nix::unistd::unlink(&path) {
            warn!("cleanup after a failed netns {name}: unlink {}: {u}", path.display());
        }
        return Err(e);
    }
    debug!("netns {name}: new network namespace bind-mounted on {}", path.display());
    Ok(())
}

/// Makes /run/netns a shared mount (MS_SHARED|MS_REC), first bind-mounting it onto itself
/// if it is no mount point yet (EINVAL), as iproute2 does, under iproute2's lock.
///
/// Why shared: mount namespaces made later (`ip netns exec`, a container's
/// unshare(CLONE_NEWNS)) get copies of the netns bind mounts. Under a shared directory an
/// unmount in one of them (`ip netns delete`) propagates to the others, so no forgotten
/// copy keeps the namespace, and its interfaces, alive.
fn make_dir_shared(dir: &Path) -> Result<()> {
    // iproute2 takes flock(LOCK_EX) on the directory so two concurrent `ip netns add`
    // do not both bind-mount it onto itself; a failure to lock is only a warning there too.
    let _lock = match File::open(dir) {
        Ok(f) => match Flock::lock(f, FlockArg::LockExclusive) {
            Ok(lock) => Some(lock),
            Err((_, e)) => {
                warn!("flock {}: {e}", dir.display());
                None
            }
        },
        Err(e) => return Err(e).sys(|| format!("open {}", dir.display())),
    };
    let mut made_mount_point = false;
    loop {
        match mount(Some(""), dir, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {
                debug!("mount --make-rshared {}", dir.display());
                return Ok(());
            }
            // EINVAL: not a mount point. Turn it into one, once.
            Err(Errno::EINVAL) if !made_mount_point => {
                debug!("{} is no mount point: bind-mounting it onto itself", dir.display());
                mount(Some(dir), dir, Some("none"), MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .sys(|| format!("bind-mount {} onto itself", dir.display()))?;
                // A bind mount of a shared mount joins its peer group: under systemd's
                // shared /run every netns mount would also land, hidden, on /run's own
                // tree (twice in mountinfo; iproute2 does that). Private first, so that
                // MS_SHARED gives the directory a peer group of its own.
                mount(None::<&str>, dir, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
                    .sys(|| format!("make {} private before sharing it", dir.display()))?;
                made_mount_point = true;
            }
            Err(e) => return Err(Error::sys(format!("make {} a shared mount", dir.display()), e)),
        }
    }
}

/// `ip netns delete NAME`: detach the bind mount, then remove the file. The namespace
/// itself dies (asynchronously, in the kernel) once nothing else holds it.
pub(crate) fn delete(name: &str) -> Result<bool> {
    let path = netns_path(name);
    if let Err(e) = std::fs::symlink_metadata(&path) {
        if e.kind() == ErrorKind::NotFound {
            debug!("netns {name}: {} is absent", path.display());
            return Ok(false);
        }
        return Err(e).sys(|| format!("stat {}", path.display()));
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) => debug!("umount2 {} (MNT_DETACH)", path.display()),
        // Not a mount point (a file left by an interrupted create): just remove it.
        Err(Errno::EINVAL) => debug!("{} was not mounted", path.display()),
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(Error::sys(format!("unmount {}", path.display()), e)),
    }
    match nix::unistd::unlink(&path) {
        Ok(()) => {
            debug!("removed {}", path.display());
            Ok(true)
        }
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(Error::sys(format!("remove {}", path.display()), e)),
    }
}
