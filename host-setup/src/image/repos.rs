//! images/repositories.json: which reference names which manifest, e.g.
//! `{"repositories":{"docker.io/library/busybox:latest":"sha256:..."}}`.
//! Read-modify-write under the state dir's short lock, written to a temporary
//! file, synced and renamed over the old one: a reader sees the old or the new.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::store::Store;
use crate::error::{Result, SysContext};
use crate::state::{global_lock, perms};

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    repositories: BTreeMap<String, String>,
}

/// A reference as the store keeps it: printable, no white space, not empty.
pub fn validate(reference: &str) -> Result<()> {
    if reference.is_empty() || reference.len() > 512 || reference.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(crate::usage!("image name {reference:?}: empty, too long, or holding white space"));
    }
    Ok(())
}

/// Every reference and the manifest it names, sorted by reference.
pub fn read(store: &Store) -> Result<BTreeMap<String, Digest>> {
    let path = store.dir().join("repositories.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).sys(|| format!("read {}", path.display())),
    };
    let f: File = serde_json::from_str(&text).map_err(|e| crate::failed!("{}: {e}", path.display()))?;
    f.repositories
        .into_iter()
        .map(|(r, d)| Ok((r, Digest::parse(&d).map_err(|e| crate::failed!("{}: {e}", path.display()))?)))
        .collect()
}

/// Changes the list with `f`, atomically, under the state dir's lock.
pub fn update(store: &Store, f: impl FnOnce(&mut BTreeMap<String, Digest>)) -> Result<()> {
    let _lock = global_lock(store.paths())?;
    let mut map = read(store)?;
    f(&mut map);
    let out = File { repositories: map.iter().map(|(r, d)| (r.clone(), d.to_string())).collect() };
    let text = serde_json::to_string_pretty(&out).map_err(|e| crate::failed!("repositories.json: {e}"))? + "\n";
    let path = store.dir().join("repositories.json");
    let tmp = store.dir().join(".repositories.json.tmp");
    let mut w = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(perms::FILE)
        .open(&tmp)
        .sys(|| format!("open {}", tmp.display()))?;
    w.write_all(text.as_bytes()).and_then(|_| w.sync_data()).sys(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, &path).sys(|| format!("rename {} to {}", tmp.display(), path.display()))
}
