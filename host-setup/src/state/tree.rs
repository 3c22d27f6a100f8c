//! Removing a directory tree the careful way — the one remover of host-setup, for
//! container dirs and layer dirs alike: symlinks are removed, never followed, and
//! a tree with anything mounted at or under it is refused, never emptied (the
//! tutorial's `rm -rf put_old` would delete the host's files if the unmount had
//! failed). Mounts are found in mountinfo, which also catches a bind mount of the
//! same filesystem; the walk checks st_dev as well, for a mount that appears
//! while it runs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, SysContext};

/// Removes `path` and everything under it. Ok(false) if it was not there.
pub fn remove_tree(path: &Path) -> Result<bool> {
    let mounts = crate::mountinfo::mount_points(&crate::mountinfo::read()?);
    remove_tree_unless_mounted(path, &mounts)
}

/// `remove_tree`, given this namespace's mount points.
fn remove_tree_unless_mounted(path: &Path, mounts: &[PathBuf]) -> Result<bool> {
    let top = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).sys(|| format!("stat {}", path.display())),
    };
    // The parent resolved, not the entry itself: a symlink is removed, not its target.
    if let (true, Some(parent), Some(name)) = (top.is_dir(), path.parent(), path.file_name()) {
        let real = fs::canonicalize(parent).sys(|| format!("resolve {}", parent.display()))?.join(name);
        if let Some(m) = mounts.iter().find(|m| m.starts_with(&real)) {
            return Err(crate::precondition!(
                "remove {}: {} is mounted; unmount it first",
                path.display(),
                m.display()
            ));
        }
    }
    if top.is_dir() {
        walk(path, top.dev())?;
        fs::remove_dir(path).sys(|| format!("rmdir {}", path.display()))?;
    } else {
        fs::remove_file(path).sys(|| format!("rm {}", path.display()))?;
    }
    Ok(true)
}

fn walk(p: &Path, dev: u64) -> Result<()> {
    for entry in fs::read_dir(p).sys(|| format!("read {}", p.display()))? {
        let child = entry.sys(|| format!("read {}", p.display()))?.path();
        let m = fs::symlink_metadata(&child).sys(|| format!("stat {}", child.display()))?;
        if !m.is_dir() {
            fs::remove_file(&child).sys(|| format!("rm {}", child.display()))?;
            continue;
        }
        if m.dev() != dev {
            return Err(crate::failed!("not removing {}: another filesystem is mounted there", child.display()));
        }
        walk(&child, dev)?;
        fs::remove_dir(&child).sys(|| format!("rmdir {}", child.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_without_following_links_and_is_idempotent() {
        let d = std::env::temp_dir().join(format!("hs-rt-{}", std::process::id()));
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", d.join("a/link")).unwrap();
        assert!(remove_tree(&d).unwrap());
        assert!(!d.exists());
        assert!(Path::new("/etc/passwd").exists(), "symlinks are not followed");
        assert!(!remove_tree(&d).unwrap());
    }

    #[test]
    fn a_tree_with_a_mount_in_it_is_refused_whole() {
        let t = std::env::temp_dir().join(format!("hs-rt-mount-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        fs::create_dir_all(t.join("layer/bin")).unwrap();
        fs::create_dir_all(t.join("outside")).unwrap();
        fs::write(t.join("outside/keep"), "x").unwrap();
        std::os::unix::fs::symlink(t.join("outside"), t.join("layer/bin/link")).unwrap();
        std::os::unix::fs::symlink(t.join("outside"), t.join("toplink")).unwrap();
        let e = remove_tree_unless_mounted(&t.join("layer"), &[t.join("layer/bin")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "remove {}: {} is mounted; unmount it first",
                t.join("layer").display(),
                t.join("layer/bin").display()
            )
        );
        assert!(t.join("layer/bin/link").symlink_metadata().is_ok(), "nothing removed");
        // Otherwise removed, through no symlink: neither one inside nor the entry itself.
        assert!(remove_tree_unless_mounted(&t.join("layer"), &[t.join("outside"), t.join("layerx")]).unwrap());
        assert!(remove_tree_unless_mounted(&t.join("toplink"), &[]).unwrap());
        let left: Vec<_> = fs::read_dir(&t).unwrap().map(|e| e.unwrap().file_name()).collect();
        let kept = fs::read(t.join("outside/keep"));
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(left, ["outside"]);
        assert_eq!(kept.unwrap(), b"x");
    }
}
