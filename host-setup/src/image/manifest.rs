//! A stored image: its manifest (OCI, or Docker schema 2: the same JSON shape)
//! and its config, read back from the blobs, size-limited, and checked against
//! each other (one diff ID per layer). What `unpack` returns and `image ls` shows.

use std::path::PathBuf;

use oci_spec::image::{ImageConfiguration, ImageManifest, MediaType};

use super::digest::Digest;
use super::store::Store;
use crate::error::Result;

/// One layer: the blob as stored (maybe compressed) and its plain tar's digest.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Digest,
    pub diff_id: Digest,
    /// The blob's size as the manifest states it.
    pub size: u64,
}

/// What an image gives a container: the config's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// e.g. "80/tcp"
    pub exposed_ports: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Digest,
    pub config_digest: Digest,
    /// Bottom-up, as the manifest lists them.
    pub layers: Vec<Layer>,
    /// The unpacked layer dirs, bottom-up (filled by `Store::unpack`; overlayfs's
    /// lowerdir= wants them topmost first: reverse them).
    pub dirs: Vec<PathBuf>,
    pub config: ImageConfig,
    /// RFC 3339, as the config says.
    pub created: Option<String>,
}

impl Image {
    /// The layers' total as stored (compressed), as `image ls` shows it.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// Reads the image whose manifest is `digest` from the store (no unpacking).
pub fn load(store: &Store, digest: &Digest) -> Result<Image> {
    let bytes = store.read_blob(digest, store.limits.manifest)?;
    let m = parse_manifest(&bytes).map_err(|e| crate::failed!("manifest {digest}: {e}"))?;
    let config_digest = Digest::from_oci(m.config().digest())?;
    let cbytes = store.read_blob(&config_digest, store.limits.manifest)?;
    let c = ImageConfiguration::from_reader(&cbytes[..])
        .map_err(|e| crate::failed!("image config {config_digest}: {e}"))?;
    let diff_ids = c.rootfs().diff_ids();
    if diff_ids.len() != m.layers().len() {
        return Err(crate::failed!(
            "image {digest}: the manifest has {} layers, its config {} diff IDs",
            m.layers().len(),
            diff_ids.len()
        ));
    }
    let mut layers = vec![];
    for (d, id) in m.layers().iter().zip(diff_ids) {
        layers.push(Layer { blob: Digest::from_oci(d.digest())?, diff_id: Digest::parse(id)?, size: d.size() });
    }
    let cfg = c.config().clone().unwrap_or_default();
    let config = ImageConfig {
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        working_dir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
        exposed_ports: cfg.exposed_ports().clone().unwrap_or_default(),
    };
    Ok(Image { manifest: digest.clone(), config_digest, layers, dirs: vec![], config, created: c.created().clone() })
}

/// A single-platform manifest; an index (or Docker manifest list) is refused
/// here: the caller picks the platform's manifest first (platform.rs).
pub fn parse_manifest(bytes: &[u8]) -> std::result::Result<ImageManifest, String> {
    let m = ImageManifest::from_reader(bytes).map_err(|e| e.to_string())?;
    match m.media_type() {
        Some(MediaType::ImageIndex) => return Err("is an image index, not a manifest".into()),
        Some(MediaType::Other(t)) if t.contains("manifest.list") => return Err("is a manifest list".into()),
        _ => {}
    }
    if m.schema_version() != 2 {
        return Err(format!("schema version {} (only 2 is supported)", m.schema_version()));
    }
    Ok(m)
}

/// Whether a JSON document is an index (OCI image index or Docker manifest list).
pub fn is_index(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => p.manifests.is_some() || p.media_type.is_some_and(|t| t.contains("index") || t.contains("list")),
        Err(_) => false,
    }
}
