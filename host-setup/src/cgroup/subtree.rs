//! cgroup v2: the controllers host-setup enables in a cgroup that is not its own
//! (the hierarchy's root) are a change to the host, and are undone. A controller
//! works in a cgroup only if every ancestor enables it in cgroup.subtree_control,
//! so `up` writes `+cpu` (etc.) into the root's; `down` of the last container that
//! needed it writes `-cpu` again. Only what host-setup enabled (what the root did not
//! have before) is ever disabled.
//!
//! Who needs them is host-wide, not per state dir: containers of several state dirs
//! and cgroup parents share the root. So the claims live in one file, CLAIMS, under
//! an flock of their own (every change to them and to the root's subtree_control
//! happens under it): for each dir, what we enabled there and the container
//! cgroups that use it. A container's journal holds its claim
//! (`Resource::SubtreeControl`), written before the claim is made, so every claim
//! is released by the container's `down` (or the undo of a failed `up`).
//!
//! The kernel refuses `-cpu` (EBUSY) while a child cgroup enables cpu for its own
//! children: someone else (systemd, another tool) uses it now. Then it stays, and
//! stays ours: the next release with no users tries again.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{v2, write};
use crate::error::{Error, Result, SysContext};
use crate::sys;

/// The claims, host-wide (on the host's /run tmpfs: they end with the boot, as the
/// cgroups do). Removed when no claim is left.
pub const CLAIMS: &str = "/run/host-setup.subtree_control.json";

/// What we enabled in one cgroup's subtree_control, and for whom.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub dir: PathBuf,
    /// Controllers that were not enabled when we enabled them, in that order.
    pub enabled: Vec<String>,
    /// The container cgroups that need them.
    pub users: Vec<PathBuf>,
}

/// Add `user` to `dir`'s claim; returns the controllers of `wanted` that `now`
/// (dir's cgroup.subtree_control) lacks: to be enabled, then `mark`ed ours.
pub fn claim(claims: &mut Vec<Claim>, dir: &Path, user: &Path, wanted: &[&str], now: &[String]) -> Vec<String> {
    let c = entry(claims, dir);
    if !c.users.iter().any(|u| u == user) {
        c.users.push(user.to_path_buf());
    }
    wanted.iter().filter(|w| !now.iter().any(|n| n == *w)).map(|w| w.to_string()).collect()
}

/// Controller `c` is on in `dir` because we enabled it: ours to turn off.
pub fn mark(claims: &mut Vec<Claim>, dir: &Path, c: &str) {
    let e = entry(claims, dir);
    if !e.enabled.iter().any(|x| x == c) {
        e.enabled.push(c.to_string());
    }
}

fn entry<'a>(claims: &'a mut Vec<Claim>, dir: &Path) -> &'a mut Claim {
    let i = match claims.iter().position(|c| c.dir == dir) {
        Some(i) => i,
        None => {
            claims.push(Claim { dir: dir.to_path_buf(), ..Claim::default() });
            claims.len() - 1
        }
    };
    &mut claims[i]
}

/// Remove `user` from `dir`'s claim. If no user is left: the controllers we
/// enabled there, newest first, to disable (the caller puts back any the kernel
/// keeps with `keep`).
pub fn release(claims: &mut Vec<Claim>, dir: &Path, user: &Path) -> Vec<String> {
    let Some(i) = claims.iter().position(|c| c.dir == dir) else { return vec![] };
    claims[i].users.retain(|u| u != user);
    if !claims[i].users.is_empty() {
        return vec![];
    }
    let c = claims.remove(i);
    c.enabled.into_iter().rev().collect()
}

/// Controllers the kernel would not disable stay ours, with no user.
pub fn keep(claims: &mut Vec<Claim>, dir: &Path, kept: Vec<String>) {
    if !kept.is_empty() {
        claims.push(Claim { dir: dir.to_path_buf(), enabled: kept.into_iter().rev().collect(), users: vec![] });
    }
}

/// `up`: claim `wanted` in `dir` for the container cgroup `user`, and enable
/// those not enabled yet.
pub fn enable(dir: &Path, user: &Path, wanted: &[&str]) -> Result<()> {
    with_claims(Path::new(CLAIMS), |claims| {
        let now = words(dir)?;
        for c in claim(claims, dir, user, wanted, &now) {
            v2::enable_one(dir, &c)?;
            mark(claims, dir, &c);
        }
        Ok(())
    })
}

/// `down`: release `user`'s claim on `dir`; the last user disables what we enabled.
pub fn disable(dir: &Path, user: &Path) -> Result<()> {
    with_claims(Path::new(CLAIMS), |claims| {
        let mut kept = vec![];
        let mut first_err = None;
        for c in release(claims, dir, user) {
            let file = dir.join("cgroup.subtree_control");
            match write(&file, &format!("-{c}")) {
                Ok(()) => {}
                // Not there any more (someone else disabled it): nothing to undo.
                Err(e) if e.errno() == Some(Errno::ENOENT) && dir.exists() => {}
                Err(e) if e.errno() == Some(Errno::EBUSY) => {
                    log::info!(
                        "{c} stays enabled in {}: a cgroup below it enables {c} for its children",
                        file.display()
                    );
                    kept.push(c);
                }
                Err(e) => {
                    kept.push(c);
                    first_err.get_or_insert(e);
                }
            }
        }
        keep(claims, dir, kept);
        first_err.map_or(Ok(()), Err)
    })
}

fn words(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("cgroup.subtree_control");
    let text = fs::read_to_string(&path).sys(|| format!("read {}", path.display()))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Run `f` on the claims in `path` under its flock, then write them back (or
/// remove the file when none is left). A waiter may lock a file that the holder
/// then removed: after locking, the path must still name the file locked.
fn with_claims(path: &Path, f: impl FnOnce(&mut Vec<Claim>) -> Result<()>) -> Result<()> {
    let what = |op: &str| format!("{op} {}", path.display());
    let mut file = loop {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).sys(|| what("open"))?;
        sys::flock(&file, true).map_err(|e| Error::sys(what("flock"), e))?;
        let held = file.metadata().sys(|| what("stat"))?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => break file,
            _ => continue, // removed or replaced while we waited
        }
    };
    let mut text = String::new();
    file.read_to_string(&mut text).sys(|| what("read"))?;
    let mut claims: Vec<Claim> = if text.trim().is_empty() {
        vec![]
    } else {
        serde_json::from_str(&text).map_err(|e| crate::failed!("{}: unreadable: {e}", path.display()))?
    };
    let result = f(&mut claims);
    if claims.is_empty() {
        // Still locked: a waiter sees the path gone and opens a new file.
        fs::remove_file(path).sys(|| what("rm"))?;
    } else {
        let text = serde_json::to_string_pretty(&claims).expect("claims always serialise") + "\n";
        file.set_len(0).sys(|| what("truncate"))?;
        file.rewind().sys(|| what("seek"))?;
        file.write_all(text.as_bytes()).sys(|| what("write"))?;
    }
    drop::<File>(file);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_what_was_missing_is_ours_and_the_last_user_gives_it_back() {
        let root = Path::new("/sys/fs/cgroup");
        let (a, b) = (Path::new("/sys/fs/cgroup/p/a"), Path::new("/sys/fs/cgroup/q/b"));
        let mut claims = vec![];
        // systemd enabled memory and pids already: only cpu is ours.
        let todo = claim(&mut claims, root, a, &["cpu", "memory", "pids"], &strings(&["memory", "pids"]));
        assert_eq!(todo, ["cpu"]);
        mark(&mut claims, root, "cpu");
        // A second container (another state dir) finds cpu on: nothing to do, but it
        // is a user of our cpu too.
        let todo = claim(&mut claims, root, b, &["cpu", "memory", "pids"], &strings(&["cpu", "memory", "pids"]));
        assert!(todo.is_empty());
        assert_eq!(claims[0].enabled, ["cpu"]);
        assert_eq!(release(&mut claims, root, a), Vec::<String>::new(), "b still needs cpu");
        assert_eq!(release(&mut claims, root, b), ["cpu"]);
        assert!(claims.is_empty());
        // Releasing what was never claimed (an up that failed before its claim) is nothing.
        assert!(release(&mut claims, root, a).is_empty());
    }

    #[test]
    fn a_controller_that_could_not_be_enabled_is_not_ours() {
        let root = Path::new("/r");
        let mut claims = vec![];
        // +cpu failed (the caller did not mark it): its user is still released.
        assert_eq!(claim(&mut claims, root, Path::new("/r/p/a"), &["cpu"], &[]), ["cpu"]);
        assert!(release(&mut claims, root, Path::new("/r/p/a")).is_empty());
        assert!(claims.is_empty());
    }

    #[test]
    fn nothing_missing_means_nothing_to_undo() {
        let root = Path::new("/sys/fs/cgroup");
        let mut claims = vec![];
        let all = strings(&["cpu", "io", "memory", "pids"]);
        assert!(claim(&mut claims, root, Path::new("/x/a"), &["cpu", "memory", "pids"], &all).is_empty());
        assert!(release(&mut claims, root, Path::new("/x/a")).is_empty());
        assert!(claims.is_empty());
    }

    #[test]
    fn disabled_newest_first_and_what_the_kernel_keeps_stays_ours() {
        let root = Path::new("/r");
        let mut claims = vec![];
        for c in claim(&mut claims, root, Path::new("/r/p/a"), &["cpu", "memory"], &[]) {
            mark(&mut claims, root, &c);
        }
        let off = release(&mut claims, root, Path::new("/r/p/a"));
        assert_eq!(off, ["memory", "cpu"]);
        keep(&mut claims, root, strings(&["memory"]));
        assert_eq!(claims, [Claim { dir: root.into(), enabled: strings(&["memory"]), users: vec![] }]);
        // The next container's up and down retry it.
        claim(&mut claims, root, Path::new("/r/p/b"), &["memory"], &strings(&["memory"]));
        assert_eq!(release(&mut claims, root, Path::new("/r/p/b")), ["memory"]);
    }

    #[test]
    fn claims_file_is_removed_when_empty() {
        let path = std::env::temp_dir().join(format!("subtree-claims-unit-{}.json", std::process::id()));
        let (root, a) = (Path::new("/r"), Path::new("/r/p/a"));
        with_claims(&path, |c| {
            assert_eq!(claim(c, root, a, &["cpu"], &[]), ["cpu"]);
            mark(c, root, "cpu");
            Ok(())
        })
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"cpu\"") && text.contains("/r/p/a"), "{text}");
        with_claims(&path, |c| {
            assert_eq!(release(c, root, a), ["cpu"]);
            Ok(())
        })
        .unwrap();
        assert!(!path.exists());
    }
}
