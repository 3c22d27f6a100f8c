//! The image store, in the state dir:
//!
//! ```text
//! <state-dir>/images/                       0700 root
//!   lock                                    flock: shared by every open Store, exclusive for rm/prune
//!   repositories.json                       reference -> manifest digest (repos.rs)
//!   blobs/sha256/HEX                        manifests, configs, layer tars: content-addressed, verified
//!   blobs/sha256/.partial-HEX               a blob being written (a leftover is discarded by the next put)
//!   layers/sha256/DIFFID/                   a layer unpacked (unpack.rs), by the digest of its plain tar
//!   layers/sha256/.tmp-DIFFID/              a layer being unpacked (a leftover is removed by the next unpack)
//!   locks/blob-HEX, locks/layer-HEX         flock per digest: two pulls of one blob write it once
//! ```
//!
//! A blob or a layer dir under its final name is complete: each is written
//! under a temporary name and renamed only once verified. Every layer dir is
//! unpacked once and shared by every image and every container that uses it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::digest::{is_over_limit, Digest, Hashing};
use super::manifest::{self, Image};
use super::unpack;
use crate::error::{Error, Result, SysContext};
use crate::state::{perms, remove_tree, Paths};

/// What the store refuses to take, in bytes: an image is data from the internet.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A manifest, an index or an image config (containerd's limit is 4 MiB too).
    pub manifest: u64,
    /// Any other blob: a layer as downloaded (compressed).
    pub blob: u64,
    /// A layer's tar once decompressed, and the files it holds: a decompression
    /// bomb stops here.
    pub unpacked: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { manifest: 4 << 20, blob: 16 << 30, unpacked: 64 << 30 }
    }
}

pub struct Store {
    dir: PathBuf,
    paths: Paths,
    pub limits: Limits,
    // Held for the Store's life: prune (exclusive) never runs under an open store.
    _lock: Flock<File>,
}

impl Store {
    /// Opens (and makes) the store; held shared until dropped, so `image prune`
    /// waits for a pull that has put blobs but not yet tagged them.
    pub fn open(paths: &Paths) -> Result<Store> {
        Store::open_with(paths, FlockArg::LockShared)
    }

    /// For `image rm` and `prune`: no other Store is open meanwhile.
    pub fn open_exclusive(paths: &Paths) -> Result<Store> {
        Store::open_with(paths, FlockArg::LockExclusive)
    }

    fn open_with(paths: &Paths, how: FlockArg) -> Result<Store> {
        perms::prepare(paths)?;
        let dir = paths.state_dir.join("images");
        for d in [&dir, &dir.join("blobs/sha256"), &dir.join("layers/sha256"), &dir.join("locks")] {
            perms::ensure_dir(d, perms::PRIVATE_DIR)?;
        }
        let path = dir.join("lock");
        let f = open_rw(&path)?;
        let lock = Flock::lock(f, how).map_err(|(_, e)| Error::sys(format!("flock {}", path.display()), e))?;
        Ok(Store { dir, paths: paths.clone(), limits: Limits::default(), _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    /// The unpacked layer whose plain tar has digest `diff_id`.
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers/sha256").join(diff_id.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// An exclusive flock on locks/KIND-HEX, waiting for another holder. The
    /// files stay (prune removes them, when no Store is open).
    fn digest_lock(&self, kind: &str, d: &Digest) -> Result<Flock<File>> {
        let path = self.dir.join("locks").join(format!("{kind}-{}", d.hex()));
        let f = open_rw(&path)?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::sys(format!("flock {}", path.display()), e))
    }

    /// Stores the blob `r` gives, checking its digest (and `size` where the
    /// manifest states one) before it gets its name. Two puts of one digest at
    /// once: the second waits, then finds it there (its reader is left unread).
    pub fn put_blob(&self, d: &Digest, size: Option<u64>, r: &mut dyn Read) -> Result<PathBuf> {
        let path = self.blob_path(d);
        if path.is_file() {
            return Ok(path);
        }
        let _lock = self.digest_lock("blob", d)?;
        if path.is_file() {
            return Ok(path);
        }
        let limit = size.unwrap_or(self.limits.blob).min(self.limits.blob);
        let partial = self.dir.join("blobs/sha256").join(format!(".partial-{}", d.hex()));
        let what = format!("blob {d}");
        let (got, n) = self.write_partial(&partial, r, limit, &what)?;
        let refuse = |msg: String| {
            let _ = fs::remove_file(&partial);
            Err(crate::failed!("{what}: {msg}; refused"))
        };
        if size.is_some_and(|s| s != n) {
            return refuse(format!("{n} bytes where the manifest states {}", size.unwrap_or(0)));
        }
        if &got != d {
            return refuse(format!("digest mismatch: the content is {got}"));
        }
        fs::rename(&partial, &path).sys(|| format!("rename {} to {}", partial.display(), path.display()))?;
        Ok(path)
    }

    /// Stores a blob whose digest is learnt by reading it (a `docker save`
    /// archive's layer.tar and config): written under a name of its own, then
    /// renamed to its digest.
    pub fn put_unknown(&self, r: &mut dyn Read, limit: u64) -> Result<(Digest, u64)> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = self.dir.join("blobs/sha256").join(format!(".partial-import-{}-{n}", std::process::id()));
        let (d, size) = self.write_partial(&partial, r, limit, "imported blob")?;
        let path = self.blob_path(&d);
        fs::rename(&partial, &path).sys(|| format!("rename {} to {}", partial.display(), path.display()))?;
        Ok((d, size))
    }

    /// Writes `r` to `partial` (truncating a leftover of an interrupted run),
    /// synced to disk, and returns what it hashed to. Removed on any failure.
    fn write_partial(&self, partial: &Path, r: &mut dyn Read, limit: u64, what: &str) -> Result<(Digest, u64)> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(perms::FILE)
            .open(partial)
            .sys(|| format!("open {}", partial.display()))?;
        let mut h = Hashing::new(r, limit);
        let res = io::copy(&mut h, &mut f).and_then(|_| f.flush()).and_then(|_| f.sync_data());
        if let Err(e) = res {
            let _ = fs::remove_file(partial);
            if is_over_limit(&e) {
                return Err(crate::failed!("{what}: larger than the limit of {limit} bytes; refused"));
            }
            return Err(e).sys(|| format!("write {}", partial.display()));
        }
        Ok(h.finish())
    }

    /// A whole blob in memory (a manifest, an index, a config), at most `limit` bytes.
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let f = File::open(&path).sys(|| format!("open {}", path.display()))?;
        let len = f.metadata().sys(|| format!("stat {}", path.display()))?.len();
        if len > limit {
            return Err(crate::failed!(
                "blob {d}: {len} bytes, over the limit of {limit} for a manifest or config; refused"
            ));
        }
        let mut v = Vec::with_capacity(len as usize);
        f.take(limit).read_to_end(&mut v).sys(|| format!("read {}", path.display()))?;
        Ok(v)
    }

    /// A blob's first bytes (what compression a layer has).
    pub fn read_head(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let mut v = vec![];
        File::open(&path).and_then(|f| f.take(8).read_to_end(&mut v)).sys(|| format!("read {}", path.display()))?;
        Ok(v)
    }

    /// Names the image `reference` (replacing what it named before).
    pub fn tag(&self, reference: &str, manifest: &Digest) -> Result<()> {
        super::repos::validate(reference)?;
        if !self.has_blob(manifest) {
            return Err(crate::failed!("tag {reference}: manifest {manifest} is not in the store"));
        }
        super::repos::update(self, |m| {
            m.insert(reference.to_string(), manifest.clone());
        })
    }

    /// The image `manifest` names, with every layer unpacked (those not yet
    /// unpacked now): the layer dirs bottom-up, and the image config.
    pub fn unpack(&self, manifest: &Digest) -> Result<Image> {
        let mut image = manifest::load(self, manifest)?;
        for l in &image.layers {
            self.unpack_layer(&l.blob, &l.diff_id)?;
        }
        image.dirs = image.layers.iter().map(|l| self.layer_path(&l.diff_id)).collect();
        Ok(image)
    }

    /// Unpacks one layer blob into layers/sha256/DIFFID/ unless it is there:
    /// into .tmp-DIFFID first (a leftover of an interrupted run is removed),
    /// renamed once complete and its tar's digest is `diff_id`.
    fn unpack_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<()> {
        let dest = self.layer_path(diff_id);
        if dest.is_dir() {
            return Ok(());
        }
        let _lock = self.digest_lock("layer", diff_id)?;
        if dest.is_dir() {
            return Ok(());
        }
        let tmp = self.dir.join("layers/sha256").join(format!(".tmp-{}", diff_id.hex()));
        remove_tree(&tmp)?;
        let res = unpack::unpack(&self.blob_path(blob), &tmp, diff_id, self.limits.unpacked);
        if let Err(e) = res {
            remove_tree(&tmp)?;
            return Err(e);
        }
        fs::rename(&tmp, &dest).sys(|| format!("rename {} to {}", tmp.display(), dest.display()))
    }
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(perms::FILE)
        .open(path)
        .sys(|| format!("open {}", path.display()))
}
