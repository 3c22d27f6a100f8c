//! The state dir is root's: what a container writes (its upper dir, a setuid
//! binary in it, its output) and what host-setup records (journals, whose command
//! lines may hold secrets, leases) are out of every other host user's reach.
//!
//! ```text
//! <state-dir>/                  0711 root:root   traversed, never listed (*)
//!   containers/                 0711 root:root   (*)
//!     NAME/                     0700 root:root, or 0710 root:GID with a user namespace (*)
//!       upper/ work/ merge/ lower/  0755         upper/ is the container's "/" (its mode shows inside)
//!       image/                  0755             empty: under init's dir in init's image (init_image.rs)
//!       console.log             0600
//!     NAME.journal NAME.lock    0600
//!   layers/                     0700             opened by host-setup itself (open_tree), as root
//!   networks/ NAME/ leases/     0700, files 0600
//! ```
//!
//! (*) With a user namespace, init mounts the overlay from inside it, as the
//! container's root: a host uid and gid the kernel grants nothing on root's
//! 0700 dirs (capabilities in a user namespace do not cover inodes whose owner is
//! unmapped there), so every directory on the way to upper/, work/ and lower/
//! needs a search bit for it. The shared ones get 0711 (search without listing:
//! another user can look up a name it knows and get EACCES below); the
//! container's own dir gets 0710 with the container's root group as group, as
//! Docker's userns-remap layout does. Nothing below NAME/ is reachable by anyone
//! else, so a setuid file a container leaves in upper/ cannot be run from the
//! host, and the overlay's mount point (merge/) is unreachable too.
//!
//! No `nosuid` on the container's overlay: setuid binaries inside (su, ping on
//! some images) must work there, and the overlay is mounted only in the
//! container's own mount namespace; from the host, /proc/PID/root needs ptrace
//! rights over the container's processes. The dir modes are what keep a host user out.
//!
//! Every dir and file is made with an explicit mode and fchmod()ed to it (the
//! caller's umask is not trusted; main sets 022 for the rest, as Docker gives a
//! container). A state dir found looser than this — made by an older
//! host-setup — is tightened on first use.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, Gid, Uid};

use super::Paths;
use crate::error::{Error, Result, SysContext};

/// The state dir and containers/: searched by a user namespace's root on its way
/// to its container's dir, listed by no one else.
pub const SHARED_DIR: u32 = 0o711;
/// Every other dir of ours.
pub const PRIVATE_DIR: u32 = 0o700;
/// A container's dir when its root is a mapped host uid: search for its group.
pub const USERNS_CONTAINER_DIR: u32 = 0o710;
/// Every file we write.
pub const FILE: u32 = 0o600;
/// host-setup's own umask, whatever the caller's (the containers inherit it).
pub const UMASK: u32 = 0o022;

/// Set host-setup's umask (at the start of main).
pub fn set_umask() {
    nix::sys::stat::umask(Mode::from_bits_truncate(UMASK));
}

/// Makes the state dir and containers/ (mode SHARED_DIR); if either was found
/// looser, everything of ours under it is tightened (a state dir of an older
/// host-setup, or one made by hand).
///
/// Once per state dir and process: every lock (the container's, then the global
/// one around each locked step) used to call it, 5 times an `up`, 8 system calls
/// each (two mkdir with EEXIST, open, fstat, close). Nothing of ours removes the
/// state dir or containers/ while a process runs.
pub fn prepare(paths: &Paths) -> Result<()> {
    static PREPARED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    if prepared.contains(&paths.state_dir) {
        return Ok(());
    }
    prepare_now(paths)?;
    prepared.push(paths.state_dir.clone());
    Ok(())
}

fn prepare_now(paths: &Paths) -> Result<()> {
    let loose = ensure_dir(&paths.state_dir, SHARED_DIR)?;
    let loose = ensure_dir(&paths.containers(), SHARED_DIR)? || loose;
    if loose {
        log::info!("{}: was readable by other users; tightening it", paths.state_dir.display());
        tighten_all(paths)?;
    }
    Ok(())
}

/// Makes `path` (and missing parents, 0755 as mkdir -p) with exactly `mode`; a
/// dir of ours already there is tightened to `mode`. True if it was looser.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<bool> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            // Followed if a symlink: the state dir may be one the administrator
            // made (to another disk); below it, only root can make entries.
            let fd = open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .sys(|| format!("open {}", path.display()))?;
            return tighten_fd(&fd, path, mode);
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .sys(|| format!("mkdir -p {}", parent.display()))?;
            return ensure_dir(path, mode);
        }
        Err(e) => return Err(e).sys(|| format!("mkdir {}", path.display())),
    }
    // Exactly `mode`, whatever the umask was.
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .sys(|| format!("open {}", path.display()))?;
    fchmod(&fd, Mode::from_bits_truncate(mode)).sys(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok(false)
}

/// Takes away the permission bits of `path` (ours: owned by root) beyond `max`,
/// through an fd opened without following a symlink. True if there were any.
/// `dir`: it must be a directory (a file otherwise).
pub fn tighten(path: &Path, max: u32, dir: bool) -> Result<bool> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match open(path, flags | if dir { OFlag::O_DIRECTORY } else { OFlag::empty() }, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(Error::sys(format!("open {}", path.display()), e)),
    };
    tighten_fd(&fd, path, max)
}

fn tighten_fd(fd: &impl AsFd, path: &Path, max: u32) -> Result<bool> {
    let st = fstat(fd).sys(|| format!("stat {}", path.display()))?;
    let mode = st.st_mode & 0o7777;
    let regular_or_dir =
        matches!(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()), SFlag::S_IFREG | SFlag::S_IFDIR);
    if st.st_uid != 0 || !regular_or_dir || mode & !max == 0 {
        return Ok(false);
    }
    let to = mode & max;
    log::debug!("chmod {to:o} {} (was {mode:o})", path.display());
    fchmod(fd, Mode::from_bits_truncate(to)).sys(|| format!("chmod {to:o} {}", path.display()))?;
    Ok(true)
}

/// A container's dir: 0710 with a mapped root group, 0700 otherwise.
pub fn container_dir_mode(gid: u32) -> u32 {
    if gid == 0 {
        PRIVATE_DIR
    } else {
        USERNS_CONTAINER_DIR
    }
}

/// Everything of ours in a state dir an older host-setup left open: the files
/// and dirs host-setup writes, not what is in a container's root (upper/ keeps
/// its modes: it is the container's "/", and its dir now guards it).
fn tighten_all(paths: &Paths) -> Result<()> {
    for e in read_dir(&paths.containers())? {
        let (p, m) = (e.path(), e.metadata().sys(|| format!("stat {}", e.path().display()))?);
        if m.is_dir() {
            tighten(&p, container_dir_mode(m.gid()), true)?;
            for f in read_dir(&p)? {
                if f.file_type().is_ok_and(|t| t.is_file()) {
                    tighten(&f.path(), FILE, false)?;
                }
            }
        } else if m.is_file() {
            tighten(&p, FILE, false)?;
        }
    }
    // The layers dir alone: its files may be the host's own (hard links, layers/place.rs).
    tighten(&paths.layers(), PRIVATE_DIR, true)?;
    tighten_tree(&paths.networks(), 3)
}

/// `dir` and what is in it, `depth` levels down: dirs PRIVATE_DIR, files FILE.
fn tighten_tree(dir: &Path, depth: usize) -> Result<()> {
    tighten(dir, PRIVATE_DIR, true)?;
    for e in read_dir(dir)? {
        match e.file_type() {
            Ok(t) if t.is_dir() && depth > 1 => tighten_tree(&e.path(), depth - 1)?,
            Ok(t) if t.is_file() => drop(tighten(&e.path(), FILE, false)?),
            _ => {}
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>().sys(|| format!("read {}", dir.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).sys(|| format!("read {}", dir.display())),
    }
}

/// A container's dir `root` (mode by `container_dir_mode`, group the container's
/// root group) and its `subdirs` (paths under `root`, 0755: upper/ is the
/// container's "/"), made through root's fd; `owned` then given to the
/// container's root (`owner`: host uid, gid) with fchownat(AT_SYMLINK_NOFOLLOW),
/// never through a symlink. `root` must not exist.
pub fn make_container_dir(
    root: &Path,
    subdirs: &[PathBuf],
    owned: &[PathBuf],
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let gid = owner.map_or(0, |(_, g)| g);
    let mode = container_dir_mode(gid);
    fs::DirBuilder::new().mode(mode).create(root).sys(|| format!("mkdir {}", root.display()))?;
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = open(root, dir, Mode::empty()).sys(|| format!("open {}", root.display()))?;
    if gid != 0 {
        fchown(&fd, None, Some(Gid::from_raw(gid))).sys(|| format!("chgrp {gid} {}", root.display()))?;
    }
    fchmod(&fd, Mode::from_bits_truncate(mode)).sys(|| format!("chmod {mode:o} {}", root.display()))?;
    let rel = |p: &PathBuf| -> Result<PathBuf> {
        match p.strip_prefix(root) {
            Ok(r) if !r.as_os_str().is_empty() => Ok(r.to_path_buf()),
            _ => Err(crate::failed!("mkdir {}: not in {}", p.display(), root.display())),
        }
    };
    for d in subdirs {
        let r = rel(d)?;
        mkdirat(&fd, &r, Mode::from_bits_truncate(0o755)).sys(|| format!("mkdir {}", d.display()))?;
        let sub = openat(&fd, &r, dir, Mode::empty()).sys(|| format!("open {}", d.display()))?;
        fchmod(&sub, Mode::from_bits_truncate(0o755)).sys(|| format!("chmod 755 {}", d.display()))?;
    }
    if let Some((uid, gid)) = owner {
        for d in owned {
            let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
            fchownat(&fd, &rel(d)?, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .sys(|| format!("chown {uid}:{gid} {}", d.display()))?;
        }
    }
    Ok(())
}

/// Writes `data` to `path`, created FILE (0600) or truncated.
pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE)
        .open(path)
        .sys(|| format!("open {}", path.display()))?;
    f.write_all(data).sys(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn dirs_get_exactly_their_mode_and_loose_ones_only_lose_bits() {
        let t = std::env::temp_dir().join(format!("hs-perms-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        // Whatever the umask: 0711 stays 0711 under a umask of 077.
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let made = ensure_dir(&t.join("a/state"), SHARED_DIR);
        nix::sys::stat::umask(old);
        assert!(!made.unwrap(), "a new dir is not a loose one");
        assert_eq!(mode(&t.join("a/state")), 0o711);
        // Looser: tightened, and said so; never given a bit it did not have.
        fs::set_permissions(t.join("a/state"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure_dir(&t.join("a/state"), SHARED_DIR).unwrap());
        assert_eq!(mode(&t.join("a/state")), 0o711);
        fs::set_permissions(t.join("a/state"), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!ensure_dir(&t.join("a/state"), SHARED_DIR).unwrap());
        assert_eq!(mode(&t.join("a/state")), 0o700);
        // A state dir that is a symlink is followed (the administrator's); a
        // file reached through a symlink is not chmodded.
        std::os::unix::fs::symlink(t.join("a/state"), t.join("link")).unwrap();
        fs::set_permissions(t.join("a/state"), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_dir(&t.join("link"), SHARED_DIR).unwrap());
        assert_eq!(mode(&t.join("a/state")), 0o711);
        fs::write(t.join("f"), "x").unwrap();
        fs::set_permissions(t.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(t.join("f"), t.join("flink")).unwrap();
        let through_link = tighten(&t.join("flink"), FILE, false);
        let f_mode = mode(&t.join("f"));
        assert!(tighten(&t.join("f"), FILE, false).unwrap());
        let f_after = mode(&t.join("f"));
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(through_link.unwrap_err().errno(), Some(Errno::ELOOP));
        assert_eq!((f_mode, f_after), (0o644, 0o600));
    }
}
