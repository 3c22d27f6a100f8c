//! The layer cache: a layer's directory is `<layers_dir>/<name>-<fingerprint>`,
//! where the fingerprint covers the manifest and the identity of every input
//! file; old versions are pruned.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use log::{debug, info};

use super::build::Builder;
use super::closure::{LayerFile, Resolved};
use super::manifest::{check_layer_name, Manifest};
use crate::error::{Result, SysContext};

/// Changes whenever the way a layer is built changes, so old caches are not reused.
const FORMAT: &str = "host-setup layer format 1";

/// The identity of one input for the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputKey {
    pub dest: PathBuf,
    pub found: PathBuf,
    pub real: PathBuf,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
}

/// FNV-1a, 64 bits, over length-prefixed fields: the layer cache's key. Not a
/// defence against anyone (whoever can change the inputs is root anyway); it only
/// has to change when an input does.
pub(super) struct Fnv(pub(super) u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(super) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes())
    }
    pub(super) fn path(&mut self, p: &Path) {
        self.bytes(p.as_os_str().as_encoded_bytes())
    }
    pub(super) fn num(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes())
    }
}

/// The fingerprint of a layer: the manifest (canonical text) and every input file.
fn fingerprint(manifest_text: &str, inputs: &[InputKey]) -> u64 {
    let mut h = Fnv::new();
    h.str(FORMAT);
    h.str(manifest_text);
    for k in inputs {
        h.path(&k.dest);
        h.path(&k.found);
        h.path(&k.real);
        for n in [k.size, k.mtime as u64, k.mtime_nsec as u64, k.dev, k.ino, u64::from(k.mode)] {
            h.num(n);
        }
    }
    h.0
}

/// The fingerprint of the layer `m` made of `files`.
pub(super) fn fingerprint_of(m: &Manifest, files: &[LayerFile]) -> u64 {
    let keys: Vec<InputKey> = files
        .iter()
        .map(|f| InputKey {
            dest: f.dest.clone(),
            found: f.found.clone(),
            real: f.src.real.clone(),
            size: f.src.meta.size(),
            mtime: f.src.meta.mtime(),
            mtime_nsec: f.src.meta.mtime_nsec(),
            dev: f.src.meta.dev(),
            ino: f.src.meta.ino(),
            mode: f.src.meta.mode(),
        })
        .collect();
    fingerprint(&m.canonical_text(), &keys)
}

impl Builder {
    pub(super) fn layer_path(&self, m: &Manifest, fingerprint: u64) -> PathBuf {
        self.layers_dir.join(format!("{}-{:016x}", m.name, fingerprint))
    }

    /// A cheap check of a cached layer: every file there with the right size.
    pub(super) fn looks_complete(&self, r: &Resolved, dir: &Path) -> bool {
        let files_ok = r.files.iter().all(|f| {
            fs::symlink_metadata(in_layer(dir, &f.dest)).is_ok_and(|m| m.is_file() && m.len() == f.src.meta.len())
        });
        files_ok && r.dirs.iter().all(|d| in_layer(dir, d).is_dir())
    }

    /// Removes every version of every layer in `layers_dir` (and leftovers of
    /// interrupted builds) except the directories in `keep`: pass the layers that
    /// running containers use and the ones just returned by [`Builder::ensure`].
    /// A directory with something mounted in it is never removed.
    /// Whether the cache holds anything `prune(keep)` could remove: a layer dir not
    /// in `keep`, or a build's leftover. Only names are read (one directory, a few
    /// entries); an unreadable cache counts as yes, so that prune reports it.
    pub fn holds_other_than(&self, keep: &[PathBuf]) -> bool {
        let Ok(rd) = fs::read_dir(&self.layers_dir) else { return self.layers_dir.exists() };
        let keep: Vec<PathBuf> = keep.iter().map(|k| fs::canonicalize(k).unwrap_or_else(|_| k.clone())).collect();
        let base = fs::canonicalize(&self.layers_dir).unwrap_or_else(|_| self.layers_dir.clone());
        rd.flatten().any(|e| {
            let name = e.file_name();
            let Some(name) = name.to_str() else { return false };
            (is_layer_dir_name(name) || name.starts_with(".tmp-")) && !keep.contains(&base.join(name))
        })
    }

    pub fn prune(&self, keep: &[PathBuf]) -> Result<()> {
        if !self.layers_dir.is_dir() {
            return Ok(());
        }
        let keep: Vec<PathBuf> = keep.iter().map(|k| fs::canonicalize(k).unwrap_or_else(|_| k.clone())).collect();
        let _lock = self.lock()?;
        let base = fs::canonicalize(&self.layers_dir).sys(|| format!("resolve {}", self.layers_dir.display()))?;
        for entry in fs::read_dir(&base).sys(|| format!("read {}", base.display()))? {
            let entry = entry.sys(|| format!("read {}", base.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(is_layer_dir_name(name) || name.starts_with(".tmp-")) {
                continue;
            }
            let path = base.join(name);
            if keep.contains(&path) {
                debug!("prune: keeping {}", path.display());
                continue;
            }
            info!("prune: removing {}", path.display());
            crate::state::remove_tree(&path)?;
        }
        Ok(())
    }
}

/// `<name>-<16 hex>`.
pub(super) fn is_layer_dir_name(name: &str) -> bool {
    match name.rsplit_once('-') {
        Some((layer, hex)) => {
            check_layer_name(layer).is_ok() && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// `/a/b` inside the layer at `root`: `root/a/b`.
pub(super) fn in_layer(root: &Path, dest: &Path) -> PathBuf {
    root.join(dest.strip_prefix("/").unwrap_or(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dest: &str, size: u64, mtime: i64, ino: u64) -> InputKey {
        InputKey {
            dest: dest.into(),
            found: format!("/usr{dest}").into(),
            real: format!("/usr{dest}").into(),
            size,
            mtime,
            mtime_nsec: 0,
            dev: 2049,
            ino,
            mode: 0o100755,
        }
    }

    #[test]
    fn fingerprint_changes_with_every_input() {
        let keys = vec![key("/bin/ls", 100, 1000, 7), key("/lib/libc.so.6", 2000, 1000, 8)];
        let base = fingerprint("layer x\n/bin/ls ls coreutils\n", &keys);
        assert_eq!(base, fingerprint("layer x\n/bin/ls ls coreutils\n", &keys.clone()), "deterministic");
        let mut variants = vec![fingerprint("layer x\n/bin/ls ls coreutils2\n", &keys)];
        let changes: [fn(&mut InputKey); 8] = [
            |k| k.size += 1,
            |k| k.mtime += 1,
            |k| k.mtime_nsec += 1,
            |k| k.ino += 1,
            |k| k.dev += 1,
            |k| k.mode = 0o100700,
            |k| k.found = "/bin/other".into(),
            |k| k.dest = "/bin/other".into(),
        ];
        for change in changes {
            let mut k = keys.clone();
            change(&mut k[1]);
            variants.push(fingerprint("layer x\n/bin/ls ls coreutils\n", &k));
        }
        variants.push(fingerprint("layer x\n/bin/ls ls coreutils\n", &keys[..1]));
        for v in &variants {
            assert_ne!(*v, base);
        }
        let mut sorted = variants.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), variants.len(), "all different");
    }

    #[test]
    fn layer_dir_names() {
        assert!(is_layer_dir_name("tools-0123456789abcdef"));
        assert!(!is_layer_dir_name("tools-0123"));
        assert!(!is_layer_dir_name(".lock"));
        assert_eq!(in_layer(Path::new("/L"), Path::new("/bin/ls")), Path::new("/L/bin/ls"));
    }
}
