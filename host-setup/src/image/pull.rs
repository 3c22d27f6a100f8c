//! `host-setup image pull REF`: what `docker pull` does, in order:
//!
//! 1. the reference (reference.rs) names a registry, a repository, a tag or digest;
//! 2. `GET /v2/REPO/manifests/REF` (registry.rs): an index (manifest list) or a
//!    manifest, its digest checked against a pinned `@sha256:` and the
//!    registry's `Docker-Content-Digest`;
//! 3. an index: the host's manifest (platform.rs), fetched by digest, its
//!    digest and size checked against the index's descriptor;
//! 4. the config and each layer not already in the store, streamed into
//!    `Store::put_blob`, which checks size and digest before the blob gets its
//!    name (an interrupted download leaves only a `.partial-` file, truncated by
//!    the next pull);
//! 5. the reference tagged, the layers unpacked (each once, by diff ID).

use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex};

use super::digest::Digest;
use super::manifest::{self, Image};
use super::platform::{self, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::registry::Registry;
use super::store::Store;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `host[:port]` of registries spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Default: the host's.
    pub platform: Option<Platform>,
}

/// What a pull did, for its summary line and the tests.
pub struct Pulled {
    pub reference: Reference,
    pub image: Image,
    /// Blobs downloaded (config and layers); 0 when all were in the store.
    pub downloaded: usize,
    pub requests: u32,
}

pub fn pull(store: &Store, reference: &str, opts: &PullOptions) -> Result<Pulled> {
    let r = Reference::parse(reference)?;
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let pinned = match &r.digest {
        Some(d) => Some(Digest::from_oci(d)?),
        None => None,
    };
    let reg = Registry::new(&r, &opts.insecure)?;
    let ctx = |e: Error| match e {
        Error::Failed(m) => Error::Failed(format!("pull {r}: {m}")),
        e => e,
    };

    let (digest, bytes) = match &pinned {
        // Pinned and already here: the content cannot have changed.
        Some(d) if store.has_blob(d) && !manifest::is_index(&store.read_blob(d, store.limits.manifest)?) => {
            (d.clone(), store.read_blob(d, store.limits.manifest)?)
        }
        _ => fetch_manifest(store, &reg, &r, pinned.as_ref(), &want).map_err(ctx)?,
    };
    let m = manifest::parse_manifest(&bytes).map_err(|e| Error::Failed(format!("pull {r}: manifest {digest} {e}")))?;
    store.put_blob(&digest, Some(bytes.len() as u64), &mut &bytes[..])?;

    let config = m.config();
    if config.size() > store.limits.manifest {
        return Err(Error::Failed(format!(
            "pull {r}: image config of {} bytes, over the limit of {}; refused",
            config.size(),
            store.limits.manifest
        )));
    }
    let mut downloaded = 0;
    for (i, d) in std::iter::once(config).chain(m.layers()).enumerate() {
        let what = if i == 0 { "config".to_string() } else { format!("layer {i}/{}", m.layers().len()) };
        if fetch_blob(store, &reg, d, &what).map_err(ctx)? {
            downloaded += 1;
        }
    }
    warn_platform(store, &r, &digest, &want);
    store.tag(&r.to_string(), &digest)?;
    let image = store.unpack(&digest)?;
    Ok(Pulled { reference: r, image, downloaded, requests: reg.requests.get() })
}

/// The manifest for this platform: (its digest, its bytes).
fn fetch_manifest(
    store: &Store,
    reg: &Registry,
    r: &Reference,
    pinned: Option<&Digest>,
    want: &Platform,
) -> Result<(Digest, Vec<u8>)> {
    let limit = store.limits.manifest;
    let top = reg.manifest(&r.manifest_ref(), limit)?;
    if let Some(p) = pinned {
        if top.digest != p.to_string() {
            return Err(Error::Failed(format!("the registry sent a manifest whose digest is {}; refused", top.digest)));
        }
    }
    if !manifest::is_index(&top.bytes) {
        return Ok((Digest::parse(&top.digest)?, top.bytes));
    }
    let index = ImageIndex::from_reader(&top.bytes[..])
        .map_err(|e| Error::Failed(format!("image index {}: {e}", top.digest)))?;
    let d = platform::pick(&index, want)?;
    let want_digest = Digest::from_oci(d.digest())?;
    if d.size() > limit {
        return Err(Error::Failed(format!(
            "manifest {want_digest}: {} bytes, over the limit of {limit}; refused",
            d.size()
        )));
    }
    let m = reg.manifest(&want_digest.to_string(), limit)?;
    if m.digest != want_digest.to_string() || m.bytes.len() as u64 != d.size() {
        return Err(Error::Failed(format!(
            "manifest {want_digest} ({} bytes in the index): the registry sent {} bytes with digest {}; refused",
            d.size(),
            m.bytes.len(),
            m.digest
        )));
    }
    if manifest::is_index(&m.bytes) {
        return Err(Error::Failed(format!("manifest {want_digest} for {want} is itself an index; refused")));
    }
    Ok((want_digest, m.bytes))
}

/// Downloads the blob `d` describes into the store unless it is there; true
/// when it was downloaded. Two pulls at once: the store's per-digest lock makes
/// the second wait and then find it, and since the request is made only on the
/// first read, the second never asks the registry for it.
fn fetch_blob(store: &Store, reg: &Registry, d: &Descriptor, what: &str) -> Result<bool> {
    let digest = Digest::from_oci(d.digest())?;
    if store.has_blob(&digest) {
        return Ok(false);
    }
    let mut lazy = LazyBlob { reg, digest: digest.to_string(), size: d.size(), what, body: None, failed: None };
    match store.put_blob(&digest, Some(d.size()), &mut lazy) {
        Ok(_) => Ok(lazy.body.is_some()),
        // The registry's own error (a 404, a 401) rather than the store's "read failed".
        Err(e) => Err(lazy.failed.take().unwrap_or(e)),
    }
}

struct LazyBlob<'a> {
    reg: &'a Registry,
    digest: String,
    size: u64,
    what: &'a str,
    body: Option<Progress<Box<dyn Read + Send + Sync>>>,
    failed: Option<Error>,
}

impl Read for LazyBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.body.is_none() {
            match self.reg.blob(&self.digest) {
                Ok(b) => {
                    let short: String = self.digest.chars().take(19).collect();
                    self.body = Some(Progress::new(b, format!("{short} {}", self.what), self.size));
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.failed = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let body = self.body.as_mut().expect("opened above");
        body.read(buf).map_err(|e| {
            self.failed = Some(Error::Failed(format!("{} {}: download: {e}", self.what, self.digest)));
            e
        })
    }
}

/// A single-platform image (no index) for another platform: say so, as Docker
/// does, but keep it (it may be run under binfmt emulation).
fn warn_platform(store: &Store, r: &Reference, digest: &Digest, want: &Platform) {
    let Ok(img) = manifest::load(store, digest) else { return };
    let Ok(bytes) = store.read_blob(&img.config_digest, store.limits.manifest) else { return };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let got = Platform::new(&s("os"), &s("architecture"), &s("variant"));
    if !got.os.is_empty() && (got.os != want.os || got.arch != want.arch) {
        eprintln!("host-setup: warning: image {r} is for {got}, not {want}");
    }
}
