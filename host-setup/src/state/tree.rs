//! Removing a directory tree the careful way: without following symlinks and
//! without crossing into another filesystem. A mount inside (an overlay still
//! mounted, a bind of the host's /) is reported and never emptied: the tutorial's
//! `rm -rf put_old` would delete the host's files if the unmount had failed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Result, SysContext};

/// Removes `path` and everything under it. Ok(false) if it was not there.
pub fn remove_tree(path: &Path) -> Result<bool> {
    let top = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).sys(|| format!("stat {}", path.display())),
    };
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
}
