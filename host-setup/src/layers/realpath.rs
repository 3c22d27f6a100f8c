//! Where a host path really leads (realpath(3)), for the resolver, with each
//! directory resolved once per plan.
//!
//! realpath(3) reads the link of every component of every path it is given:
//! `/lib/x86_64-linux-gnu/libc.so.6` costs five readlink calls, and the same
//! directories come back for every library and every search candidate. That was
//! most of a warm cache check's system calls. Here a directory is resolved once
//! and each file costs one lstat (plus a readlink only where it is a symlink), and
//! the answer for each path asked about, missing ones included, is kept for the
//! rest of the plan.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// Symlinks followed for one path before giving up, as the kernel's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

/// An errno kept for the rest of the plan (io::Error is not Clone).
type Kept<T> = std::result::Result<T, i32>;

fn keep<T: Clone>(r: &io::Result<T>) -> Kept<T> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

fn unkeep<T>(r: Kept<T>) -> io::Result<T> {
    r.map_err(io::Error::from_raw_os_error)
}

#[derive(Debug, Default)]
pub(super) struct RealPaths {
    /// Directory as asked -> its real path.
    dirs: HashMap<PathBuf, Kept<PathBuf>>,
    /// Path as asked -> its real path and the lstat of that (never a symlink).
    found: HashMap<PathBuf, Kept<(PathBuf, Metadata)>>,
}

/// What a resolution depended on: the directories looked in (as asked, and their
/// real path if they resolved) and the files found (real path and lstat).
pub(super) type Answers = (Vec<(PathBuf, Option<PathBuf>)>, Vec<(PathBuf, Metadata)>);

impl RealPaths {
    /// `path` with every symlink resolved, as realpath(3) gives it, and what is
    /// there (not a symlink). Errors are realpath's and lstat's: ENOENT for a
    /// missing file or a dangling link, ENOTDIR, EACCES, ELOOP.
    pub(super) fn locate(&mut self, path: &Path) -> io::Result<(PathBuf, Metadata)> {
        if let Some(known) = self.found.get(path) {
            return unkeep(known.clone());
        }
        let r = self.resolve(path, 0);
        self.found.insert(path.to_path_buf(), keep(&r));
        r
    }

    /// Every directory a name was looked up in (as asked, and its real path if it
    /// resolved) and every file found (its real path and lstat): what the answers
    /// depended on, for the memo.
    pub(super) fn answers(&self) -> Answers {
        let dirs = self.dirs.iter().map(|(asked, r)| (asked.clone(), r.as_ref().ok().cloned())).collect();
        let found = self.found.values().filter_map(|r| r.as_ref().ok().cloned()).collect();
        (dirs, found)
    }

    fn resolve(&mut self, path: &Path, links: u32) -> io::Result<(PathBuf, Metadata)> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            // "/" or a path ending in "..": no file name to look at on its own.
            let real = fs::canonicalize(path)?;
            let meta = fs::symlink_metadata(&real)?;
            return Ok((real, meta));
        };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let dir = match self.dirs.get(parent) {
            Some(known) => unkeep(known.clone())?,
            None => {
                let r = fs::canonicalize(parent);
                self.dirs.insert(parent.to_path_buf(), keep(&r));
                r?
            }
        };
        let here = dir.join(name);
        let meta = fs::symlink_metadata(&here)?;
        if !meta.file_type().is_symlink() {
            return Ok((here, meta));
        }
        if links >= MAX_LINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        // A relative target is relative to the link's own (real) directory; an
        // absolute one replaces it (join does both).
        let target = fs::read_link(&here)?;
        self.resolve(&dir.join(target), links + 1)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn as_realpath_with_each_directory_once() {
        let t = std::env::temp_dir().join(format!("layers-unit-{}-realpath", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        fs::create_dir_all(t.join("usr/lib/x")).unwrap();
        fs::write(t.join("usr/lib/x/libc.so.6.1"), "elf").unwrap();
        symlink("libc.so.6.1", t.join("usr/lib/x/libc.so.6")).unwrap(); // relative
        symlink("usr/lib", t.join("lib")).unwrap(); // a merged /usr
        symlink(t.join("usr/lib/x/libc.so.6"), t.join("abs")).unwrap(); // absolute, to a link
        symlink("../lib/x/libc.so.6", t.join("usr/up")).unwrap(); // "..", through a linked dir
        symlink("loop", t.join("loop")).unwrap();
        symlink("nowhere", t.join("dangling")).unwrap();
        fs::create_dir(t.join("d")).unwrap();

        let mut p = RealPaths::default();
        let real = t.join("usr/lib/x/libc.so.6.1");
        for asked in ["lib/x/libc.so.6", "usr/lib/x/libc.so.6", "abs", "usr/up", "lib/./x/../x/libc.so.6.1"] {
            let (got, meta) = p.locate(&t.join(asked)).unwrap();
            assert_eq!(got, real, "{asked}");
            assert_eq!(got, fs::canonicalize(t.join(asked)).unwrap(), "{asked}: as realpath(3)");
            assert!(meta.is_file() && meta.len() == 3, "{asked}");
        }
        let errno = |p: &mut RealPaths, asked: &str| p.locate(&t.join(asked)).unwrap_err().raw_os_error();
        assert_eq!(errno(&mut p, "loop"), Some(libc::ELOOP));
        assert_eq!(errno(&mut p, "dangling"), Some(libc::ENOENT));
        assert_eq!(errno(&mut p, "missing/libc.so.6"), Some(libc::ENOENT));
        assert_eq!(errno(&mut p, "d/later"), Some(libc::ENOENT));
        assert_eq!(errno(&mut p, "abs/libc.so.6"), Some(libc::ENOTDIR));
        assert!(p.locate(&t.join("d")).unwrap().1.is_dir());
        assert_eq!(p.locate(&t.join("usr/..")).unwrap().0, t);

        // Answers are kept for the plan: a directory is not resolved again (the
        // link `lib` moved away still leads where it led), a new name in it is
        // looked at, and a missing path stays missing.
        fs::remove_file(t.join("lib")).unwrap();
        symlink("elsewhere", t.join("lib")).unwrap();
        let via_known_dir = p.locate(&t.join("lib/x/libc.so.6.1")).map(|r| r.0);
        fs::write(t.join("missing"), "").unwrap();
        fs::write(t.join("d/later"), "").unwrap();
        let still_missing = [errno(&mut p, "missing/libc.so.6"), errno(&mut p, "d/later")];
        let fresh = RealPaths::default().locate(&t.join("lib/x/libc.so.6.1")).map(|r| r.0);
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(via_known_dir.unwrap(), real);
        assert_eq!(still_missing, [Some(libc::ENOENT); 2]);
        assert_eq!(fresh.unwrap_err().raw_os_error(), Some(libc::ENOENT), "a new plan looks again");
    }
}
