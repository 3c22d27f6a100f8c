//! Which id ranges are taken, without reading every container's journal: one file
//! per container under the state dir's `ids/`, named `UID-GID-COUNT` after its
//! range and holding its name, made with O_EXCL under the global lock (as a
//! network's leases are). Listing the names is a few getdents calls for a thousand
//! containers; reading every journal made each `up` cost more the more containers
//! were up (14 ms at 400 here). The journal still records the range (Ids), and
//! `down` removes the file with it.
//!
//! A state dir from before this file has no `ids/`: its containers' ranges are read
//! from their journals, and the first claim writes their files.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use super::IdMap;
use crate::error::{Result, SysContext};
use crate::state::{perms, Journal, Paths};

fn dir(paths: &Paths) -> PathBuf {
    paths.state_dir.join("ids")
}

fn file_name(ids: &IdMap) -> String {
    format!("{}-{}-{}", ids.uid, ids.gid, ids.count)
}

fn parse(name: &str) -> Option<IdMap> {
    let mut f = name.split('-').map(|n| n.parse::<u32>().ok());
    match (f.next()??, f.next()??, f.next()??, f.next()) {
        (uid, gid, count, None) => Some(IdMap { uid, gid, count }),
        _ => None,
    }
}

/// The ranges other containers hold (`except`'s own only in a state dir from before
/// ids/, where it comes from its journal).
pub fn used(paths: &Paths, except: &str) -> Result<Vec<IdMap>> {
    let d = dir(paths);
    match std::fs::read_dir(&d) {
        Ok(rd) => Ok(rd.flatten().filter_map(|e| parse(e.file_name().to_str()?)).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(from_journals(paths, except)),
        Err(e) => Err(e).sys(|| format!("read {}", d.display())),
    }
}

fn from_journals(paths: &Paths, except: &str) -> Vec<IdMap> {
    paths
        .container_names()
        .iter()
        .filter(|n| *n != except)
        .filter_map(|n| Journal::read(paths, n).ok().flatten()?.ids())
        .collect()
}

/// Takes `ids` for `container` (the caller holds the global lock).
pub fn claim(paths: &Paths, ids: &IdMap, container: &str) -> Result<()> {
    let d = dir(paths);
    if !d.exists() {
        let tmp = paths.state_dir.join(".ids.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::DirBuilder::new().mode(perms::PRIVATE_DIR).create(&tmp).sys(|| format!("mkdir {}", tmp.display()))?;
        // Not `container`'s own: its journal already records the range it is taking.
        for name in paths.container_names().into_iter().filter(|n| n != container) {
            if let Some(theirs) = Journal::read(paths, &name).ok().flatten().and_then(|j| j.ids()) {
                make(&tmp.join(file_name(&theirs)), &name)?;
            }
        }
        // Whole or not at all: a half-written ids/ would hide the others' ranges.
        std::fs::rename(&tmp, &d).sys(|| format!("rename {} to {}", tmp.display(), d.display()))?;
    }
    make(&d.join(file_name(ids)), container)
}

fn make(path: &std::path::Path, container: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(perms::FILE)
        .open(path)
        .sys(|| format!("create {}", path.display()))?;
    f.write_all(format!("{container}\n").as_bytes()).sys(|| format!("write {}", path.display()))
}

/// Gives `ids` back (down); already gone is fine, and so is a claim that names
/// another container than `owner` (an `up` that failed to claim undoes its record).
pub fn release(paths: &Paths, ids: &IdMap, owner: Option<&str>) -> Result<()> {
    let p = dir(paths).join(file_name(ids));
    if let (Some(o), Ok(t)) = (owner, std::fs::read_to_string(&p)) {
        if t.trim() != o {
            return Ok(());
        }
    }
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).sys(|| format!("rm {}", p.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let ids = IdMap { uid: 1_000_065_536, gid: 1_000_065_536, count: 65536 };
        assert_eq!(parse(&file_name(&ids)), Some(ids));
        for bad in ["", "1-2", "1-2-3-4", "a-2-3", ".tmp", "1-2-"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn claims_are_listed_taken_once_and_released() {
        let t = std::env::temp_dir().join(format!("hs-claims-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("containers")).unwrap();
        let paths = Paths::new(&t);
        assert!(used(&paths, "a").unwrap().is_empty(), "no ids/ and no journals");
        let a = IdMap { uid: 10, gid: 20, count: 65536 };
        claim(&paths, &a, "a").unwrap();
        assert_eq!(used(&paths, "b").unwrap(), vec![a]);
        assert!(claim(&paths, &a, "b").is_err(), "a range is taken once");
        release(&paths, &a, Some("b")).unwrap();
        assert_eq!(used(&paths, "b").unwrap(), vec![a], "b's failed claim leaves a's");
        release(&paths, &a, Some("a")).unwrap();
        release(&paths, &a, None).unwrap();
        assert!(used(&paths, "b").unwrap().is_empty());
        std::fs::remove_dir_all(&t).unwrap();
    }
}
