//! Locks: one host-setup per container at a time, and a short lock over the whole
//! state dir for the decisions two containers share (who makes the veth pair, a
//! netns appearing whole, a layer dir given out before anyone may prune it).
//! Both are flock(2)s; sys::flock says why not nix's `Flock`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use super::Paths;
use crate::error::{Error, Result, SysContext};
use crate::sys;

/// An exclusive flock on `<name>.lock`, held for the whole of one command on that
/// container. `down` deletes the file while holding it; a waiter then holds a lock
/// on a deleted file, so after locking we check that the path still names the file
/// we locked, and start over if not.
pub struct Lock {
    file: Option<File>,
    path: PathBuf,
    journal: PathBuf,
}

impl Lock {
    /// Take the lock, waiting for another host-setup on the same container.
    /// `on_wait` is called once if we have to wait.
    pub fn acquire(paths: &Paths, name: &str, on_wait: impl FnOnce()) -> Result<Lock> {
        super::perms::prepare(paths)?;
        let path = paths.lock(name);
        let mut on_wait = Some(on_wait);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(super::perms::FILE)
                .open(&path)
                .sys(|| format!("open {}", path.display()))?;
            let taken = sys::flock(&file, false).map_err(|e| Error::sys(format!("flock {}", path.display()), e))?;
            if !taken {
                if let Some(f) = on_wait.take() {
                    f();
                }
                sys::flock(&file, true).map_err(|e| Error::sys(format!("flock {}", path.display()), e))?;
            }
            let held = file.metadata().sys(|| format!("stat {}", path.display()))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Lock { file: Some(file), path, journal: paths.journal(name) });
                }
                _ => continue, // deleted by a `down` while we waited: lock the new file
            }
        }
    }

    /// At the end of a command: if the container has no journal (it is gone, or
    /// never came to be), delete the lock file too, while still holding the lock.
    pub fn finish(self) {
        if !self.journal.exists() {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// In a forked child that must not keep the lock held: close our copy (the
    /// parent's stays locked: the lock belongs to the shared open file).
    pub fn release_in_child(&mut self) {
        self.file.take();
    }
}

/// The state dir's short lock: an flock on the containers directory itself, so no
/// lock file is left behind. Released when dropped.
pub struct GlobalLock(#[allow(dead_code)] File);

pub fn global_lock(paths: &Paths) -> Result<GlobalLock> {
    super::perms::prepare(paths)?;
    let dir = paths.containers();
    let file = File::open(&dir).sys(|| format!("open {}", dir.display()))?;
    sys::flock(&file, true).map_err(|e| Error::sys(format!("flock {}", dir.display()), e))?;
    Ok(GlobalLock(file))
}
