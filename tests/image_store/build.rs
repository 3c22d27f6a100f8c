//! Building image archives for tests/image_store.rs: layer tars written entry by
//! entry with the `tar` crate (raw header bytes where a hostile name must get
//! through the crate's own checks), OCI image layouts and `docker save` archives.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub type Tar = tar::Builder<HashW<Box<dyn Write>>>;

/// A writer that hashes and counts what passes through.
pub struct HashW<W: Write> {
    w: W,
    h: Sha256,
    n: u64,
}

impl<W: Write> Write for HashW<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.w.write(b)?;
        self.h.update(&b[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn hashw<W: Write>(w: W) -> HashW<W> {
    HashW { w, h: Sha256::new(), n: 0 }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

#[derive(Clone, Copy)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

/// A blob of a layout, as a descriptor names it.
#[derive(Clone, Debug)]
pub struct Desc {
    pub media: String,
    pub digest: String,
    pub size: u64,
    /// Layers: the plain tar's digest.
    pub diff_id: String,
}

impl Desc {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media, "digest": self.digest, "size": self.size})
    }
}

/// An entry's header: mode, owner, mtime.
pub fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(1_700_000_000);
    h.set_size(0);
    h
}

pub fn dir(t: &mut Tar, path: &str, mode: u32, uid: u64, gid: u64) {
    let mut h = header(tar::EntryType::Directory, mode, uid, gid);
    h.set_path(path).unwrap();
    h.set_cksum();
    t.append(&h, io::empty()).unwrap();
}

pub fn file(t: &mut Tar, path: &str, data: &[u8], mode: u32) {
    file_owned(t, path, data, mode, 0, 0, &[]);
}

pub fn file_owned(t: &mut Tar, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64, xattrs: &[(&str, &[u8])]) {
    if !xattrs.is_empty() {
        let keys: Vec<(String, &[u8])> = xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v)).collect();
        t.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v))).unwrap();
    }
    let mut h = header(tar::EntryType::Regular, mode, uid, gid);
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_cksum();
    t.append(&h, data).unwrap();
}

/// A file of `size` bytes read from `r` (the big one).
pub fn file_from(t: &mut Tar, path: &str, size: u64, r: impl Read) {
    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0);
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_cksum();
    t.append(&h, r).unwrap();
}

/// A link entry (symlink or hard link) with raw name and target bytes: the crate's
/// own checks (no `..`, no absolute names) are for honest archives.
pub fn link(t: &mut Tar, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = header(kind, 0o777, 0, 0);
    raw_name(&mut h, path);
    let l = &mut h.as_old_mut().linkname;
    l.fill(0);
    l[..target.len()].copy_from_slice(target.as_bytes());
    h.set_cksum();
    t.append(&h, io::empty()).unwrap();
}

pub fn raw_name(h: &mut tar::Header, path: &str) {
    let n = &mut h.as_old_mut().name;
    n.fill(0);
    n[..path.len()].copy_from_slice(path.as_bytes());
}

/// A regular file under a raw (unchecked) name.
pub fn raw_file(t: &mut Tar, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0);
    raw_name(&mut h, path);
    h.set_size(data.len() as u64);
    h.set_cksum();
    t.append(&h, data).unwrap();
}

pub fn fifo(t: &mut Tar, path: &str) {
    let mut h = header(tar::EntryType::Fifo, 0o640, 0, 0);
    h.set_path(path).unwrap();
    h.set_cksum();
    t.append(&h, io::empty()).unwrap();
}

/// An OCI image layout being written in `dir`.
pub struct Layout {
    pub dir: PathBuf,
    n: usize,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir: dir.to_path_buf(), n: 0 }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    pub fn put(&self, media: &str, bytes: &[u8]) -> Desc {
        let digest = sha256(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        Desc { media: media.into(), digest, size: bytes.len() as u64, diff_id: String::new() }
    }

    /// A layer, compressed as `comp`, with the entries `f` writes.
    pub fn layer(&mut self, comp: Comp, f: impl FnOnce(&mut Tar)) -> Desc {
        self.n += 1;
        let tmp = self.dir.join(format!("layer-{}.tmp", self.n));
        let out = hashw(File::create(&tmp).unwrap());
        let (w, media): (Box<dyn Write>, &str) = match comp {
            Comp::Plain => (Box::new(out), "application/vnd.oci.image.layer.v1.tar"),
            Comp::Gzip => (
                Box::new(flate2::write::GzEncoder::new(out, flate2::Compression::fast())),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            Comp::Zstd => (
                Box::new(zstd::stream::write::Encoder::new(out, 3).unwrap().auto_finish()),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
        };
        let mut t = tar::Builder::new(hashw(w));
        f(&mut t);
        let inner = t.into_inner().unwrap();
        let diff_id = format!("sha256:{}", hex(&inner.h.finalize()));
        drop(inner.w); // finishes the compressor
        let bytes = fs::read(&tmp).unwrap();
        fs::remove_file(&tmp).unwrap();
        let mut d = self.put(media, &bytes);
        d.diff_id = diff_id;
        d
    }

    /// A config and manifest for `layers` (bottom-up); `arch` as the config says.
    pub fn image(&self, layers: &[Desc], arch: &str, diff_ids: Option<Vec<String>>) -> Desc {
        let config = serde_json::json!({
            "architecture": arch, "os": "linux", "created": "2026-12-01T10:00:00Z",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/busybox", "sh"], "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids.unwrap_or_else(|| layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())},
        });
        let c = self.put("application/vnd.oci.image.config.v1+json", &serde_json::to_vec(&config).unwrap());
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": c.json(), "layers": layers.iter().map(Desc::json).collect::<Vec<_>>(),
        });
        self.put("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&m).unwrap())
    }

    /// index.json: each manifest with its ref name and platform (arch) if given.
    pub fn index(&self, entries: &[(&Desc, Option<&str>, Option<&str>)]) {
        let ms: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, name, arch)| {
                let mut v = d.json();
                if let Some(n) = name {
                    v["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": n});
                }
                if let Some(a) = arch {
                    v["platform"] = serde_json::json!({"architecture": a, "os": "linux"});
                }
                v
            })
            .collect();
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": ms});
        fs::write(self.dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    }
}

/// A tar of the directory `dir` (an OCI layout tar, or a docker save archive).
pub fn tar_dir(dir: &Path, to: &Path) {
    let mut t = tar::Builder::new(File::create(to).unwrap());
    t.follow_symlinks(false);
    t.append_dir_all(".", dir).unwrap();
    t.finish().unwrap();
}

/// Zeros with a marked 4 KiB block every 10 MiB: compresses a thousandfold,
/// unpacks mostly as holes.
pub struct SparseIsh {
    pub pos: u64,
    pub size: u64,
}

impl Read for SparseIsh {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.size - self.pos) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let p = self.pos + i as u64;
            *b = if p % (10 << 20) < 4096 { (p / (10 << 20)) as u8 + b'A' } else { 0 };
        }
        self.pos += n as u64;
        Ok(n)
    }
}
