//! `image ls`, `image rm REF`, `image prune`: the image list and what no image
//! (and no container) uses any more.
//!
//! rm and prune open the store exclusively: they wait for a pull or an import
//! under way (each holds the store open, shared), so nothing a pull has stored
//! but not yet tagged is taken from under it. A layer dir a container's journal
//! names is in use: `rm` of its image is refused, `prune` keeps it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use super::digest::Digest;
use super::manifest;
use super::reference::Reference;
use super::repos;
use super::store::Store;
use crate::error::{Result, SysContext};
use crate::state::{global_lock, remove_tree, Journal, Paths};

/// `image ls`: one line per name.
pub fn ls(paths: &Paths) -> Result<String> {
    let store = Store::open(paths)?;
    let mut out = format!("{:<48} {:<19} {:>8}  {}\n", "REFERENCE", "DIGEST", "SIZE", "CREATED");
    for (r, d) in repos::read(&store)? {
        let (size, created) = match manifest::load(&store, &d) {
            Ok(i) => (crate::spec::format_bytes(i.size()), i.created.unwrap_or_else(|| "-".into())),
            Err(e) => ("?".into(), format!("(unreadable: {e})")),
        };
        out += &format!("{r:<48} sha256:{:<12} {size:>8}  {created}\n", &d.hex()[..12]);
    }
    Ok(out)
}

/// Which container uses each layer dir: from every journal in the state dir.
fn layers_in_use(paths: &Paths) -> Result<BTreeMap<PathBuf, String>> {
    let mut used = BTreeMap::new();
    for name in paths.container_names() {
        if let Some(j) = Journal::read(paths, &name)? {
            for d in j.layer_dirs() {
                used.insert(fs::canonicalize(&d).unwrap_or(d), name.clone());
            }
        }
    }
    Ok(used)
}

/// The container whose spec says it runs the image `manifest`, if any.
fn image_user(paths: &Paths, manifest: &Digest) -> Result<Option<String>> {
    for name in paths.container_names() {
        let uses = Journal::read(paths, &name)?
            .and_then(|j| j.spec())
            .and_then(|s| s.run.and_then(|r| r.image))
            .is_some_and(|i| i.manifest == manifest.to_string());
        if uses {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The store's names for `r`: as typed, in canonical form, or every name of a
/// manifest digest.
fn resolve(names: &BTreeMap<String, Digest>, r: &str) -> Vec<String> {
    if let Ok(d) = Digest::parse(r) {
        return names.iter().filter(|(_, m)| **m == d).map(|(n, _)| n.clone()).collect();
    }
    let canon = Reference::parse(r).ok().map(|x| x.to_string());
    names.keys().filter(|n| n.as_str() == r || Some(n.as_str()) == canon.as_deref()).cloned().collect()
}

/// `image rm REF...`: the names go, then what only they used (prune).
pub fn rm(paths: &Paths, refs: &[String]) -> Result<Prune> {
    let store = Store::open_exclusive(paths)?;
    let _lock = global_lock(paths)?;
    let names = repos::read(&store)?;
    let used = layers_in_use(paths)?;
    let mut gone = BTreeSet::new();
    for r in refs {
        let found = resolve(&names, r);
        if found.is_empty() {
            return Err(crate::failed!("image rm {r}: no such image (see host-setup image ls)"));
        }
        for n in found {
            // A container's spec names the image it runs (spec/runopts.rs).
            if let Some(c) = image_user(paths, &names[&n])? {
                return Err(crate::failed!("image rm {n}: container {c} uses it; run host-setup down {c} first"));
            }
            let image = manifest::load(&store, &names[&n])?;
            for l in &image.layers {
                let dir = store.layer_path(&l.diff_id);
                if let Some(c) = used.get(&fs::canonicalize(&dir).unwrap_or(dir.clone())) {
                    return Err(crate::failed!(
                        "image rm {n}: container {c} uses its layer {}; run host-setup down {c} first",
                        dir.display()
                    ));
                }
            }
            gone.insert(n);
        }
    }
    drop(_lock);
    repos::update(&store, |m| m.retain(|n, _| !gone.contains(n)))?;
    prune_locked(&store)
}

/// What prune removed.
#[derive(Debug, Default)]
pub struct Prune {
    pub blobs: usize,
    pub layers: usize,
    pub bytes: u64,
}

pub fn prune(paths: &Paths) -> Result<Prune> {
    prune_locked(&Store::open_exclusive(paths)?)
}

/// Removes every blob and layer dir no named image uses and no container's
/// journal names, every partial file and temporary dir, and the digest locks.
fn prune_locked(store: &Store) -> Result<Prune> {
    let _lock = global_lock(store.paths())?;
    let mut blobs = BTreeSet::new();
    let mut layers = BTreeSet::new();
    for (n, d) in repos::read(store)? {
        blobs.insert(d.hex().to_string());
        match manifest::load(store, &d) {
            Ok(i) => {
                blobs.insert(i.config_digest.hex().to_string());
                for l in i.layers {
                    blobs.insert(l.blob.hex().to_string());
                    layers.insert(l.diff_id.hex().to_string());
                }
            }
            // Keep what may be its: nothing of an image we cannot read is removed.
            Err(e) => return Err(e.hint(format!("image {n}: cannot tell what it uses; nothing was pruned"))),
        }
    }
    let used: BTreeSet<PathBuf> = layers_in_use(store.paths())?.into_keys().collect();
    let mut p = Prune::default();
    let bdir = store.dir().join("blobs/sha256");
    for e in fs::read_dir(&bdir).sys(|| format!("read {}", bdir.display()))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !blobs.contains(&name) {
            p.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(e.path()).sys(|| format!("remove {}", e.path().display()))?;
            p.blobs += 1;
        }
    }
    let ldir = store.dir().join("layers/sha256");
    for e in fs::read_dir(&ldir).sys(|| format!("read {}", ldir.display()))?.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !layers.contains(&name) && !used.contains(&fs::canonicalize(&path).unwrap_or(path.clone())) {
            remove_tree(&path)?;
            p.layers += 1;
        }
    }
    let kdir = store.dir().join("locks");
    for e in fs::read_dir(&kdir).sys(|| format!("read {}", kdir.display()))?.flatten() {
        fs::remove_file(e.path()).sys(|| format!("remove {}", e.path().display()))?;
    }
    Ok(p)
}
