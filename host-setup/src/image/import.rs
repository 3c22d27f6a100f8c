//! `image import FILE|DIR`: an image from an archive instead of a registry.
//!
//! - an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/HEX`), as a
//!   directory or a tar (skopeo, umoci, buildah, `docker save` since Docker 25);
//!   an index of several platforms gives the host's (platform.rs);
//! - a `docker save` archive (`manifest.json` listing `Config`, `RepoTags` and
//!   `Layers`): a manifest is written for it, as Docker itself does on load.
//!
//! Gzip or zstd layers and a gzip or zstd archive are told apart by their first
//! bytes. A tar archive is read once, front to back: each member goes into the
//! store as it comes (verified against its name when it is `blobs/sha256/HEX`),
//! and the JSON files are kept to read afterwards. Names inside the archive are
//! data: an absolute one or one with `..` is refused. Every layer is unpacked
//! before the image is tagged, so a refused layer leaves no image behind.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde::Deserialize;

use super::digest::Digest;
use super::manifest::{is_index, parse_manifest};
use super::platform::{self, Platform};
use super::store::Store;
use super::unpack::{clean, decompress, sniff, Compression};
use crate::error::{Result, SysContext};

/// One member of a tar archive, once read.
enum Member {
    Blob(Digest, u64),
    Json(Vec<u8>),
    Link(String),
}

enum Source {
    Dir(PathBuf),
    Tar(HashMap<String, Member>),
}

/// `a/./b` -> `a/b`; absolute and `..` refused.
fn norm(name: &str) -> Result<String> {
    let comps = clean(Path::new(name)).map_err(|m| crate::failed!("archive member {name:?}: {m}; refused"))?;
    Ok(comps.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/"))
}

/// A symlink's target inside the archive, `..` resolved by name, never above its root.
fn resolve(base: &Path, target: &Path) -> Result<String> {
    let bad = || crate::failed!("archive link to {}: outside the archive; refused", target.display());
    let mut out: Vec<String> = base.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    for c in target.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                out.pop().ok_or_else(bad)?;
            }
            std::path::Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    Ok(out.join("/"))
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

impl Source {
    fn open(store: &Store, path: &Path) -> Result<Source> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let f = File::open(path).sys(|| format!("open {}", path.display()))?;
        let mut ar = tar::Archive::new(decompress(f).sys(|| format!("read {}", path.display()))?);
        let bad =
            |e: std::io::Error| crate::failed!("{}: not a tar archive: {}", path.display(), crate::error::io_text(&e));
        let mut members = HashMap::new();
        for e in ar.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            let name = norm(&String::from_utf8_lossy(&e.path_bytes()))?;
            let member = match e.header().entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let t = e.link_name().map_err(bad)?.unwrap_or_default();
                    let base = if e.header().entry_type() == tar::EntryType::Link {
                        Path::new("")
                    } else {
                        Path::new(&name).parent().unwrap_or(Path::new(""))
                    };
                    Member::Link(resolve(base, &t)?)
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.size();
                    if let Some(d) = name.strip_prefix("blobs/sha256/").and_then(|h| Digest::from_hex(h).ok()) {
                        store.put_blob(&d, Some(size), &mut e)?;
                        Member::Blob(d, size)
                    } else if name.ends_with(".json") || name == "oci-layout" || name == "repositories" {
                        let mut v = vec![];
                        (&mut e).take(store.limits.manifest + 1).read_to_end(&mut v).map_err(bad)?;
                        if v.len() as u64 > store.limits.manifest {
                            return Err(crate::failed!(
                                "archive member {name}: over the limit of {} bytes",
                                store.limits.manifest
                            ));
                        }
                        Member::Json(v)
                    } else {
                        let (d, size) = store
                            .put_unknown(&mut e, store.limits.blob)
                            .map_err(|e| e.hint(format!("archive member {name}")))?;
                        Member::Blob(d, size)
                    }
                }
                _ => continue,
            };
            members.insert(name, member);
        }
        Ok(Source::Tar(members))
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(name).exists(),
            Source::Tar(m) => m.contains_key(name),
        }
    }

    fn member(&self, name: &str) -> Result<&Member> {
        let Source::Tar(m) = self else { unreachable!() };
        let mut name = name.to_string();
        for _ in 0..8 {
            match m.get(&name) {
                Some(Member::Link(t)) => name = t.clone(),
                Some(other) => return Ok(other),
                None => break,
            }
        }
        Err(crate::failed!("the archive has no {name}"))
    }

    /// A small JSON file of the archive.
    fn json(&self, store: &Store, name: &str) -> Result<Vec<u8>> {
        let name = norm(name)?;
        match self {
            Source::Dir(d) => {
                let p = d.join(&name);
                let f = File::open(&p).sys(|| format!("open {}", p.display()))?;
                let mut v = vec![];
                f.take(store.limits.manifest + 1).read_to_end(&mut v).sys(|| format!("read {}", p.display()))?;
                if v.len() as u64 > store.limits.manifest {
                    return Err(crate::failed!("{}: over the limit of {} bytes", p.display(), store.limits.manifest));
                }
                Ok(v)
            }
            Source::Tar(_) => match self.member(&name)? {
                Member::Json(v) => Ok(v.clone()),
                Member::Blob(d, _) => store.read_blob(d, store.limits.manifest),
                Member::Link(_) => unreachable!(),
            },
        }
    }

    /// The member `name` in the store: checked against `want` (digest, size) when given.
    fn blob(&self, store: &Store, name: &str, want: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let name = norm(name)?;
        let got = match self {
            Source::Dir(dir) => {
                if let Some((d, size)) = want.filter(|(d, _)| store.has_blob(d)) {
                    return Ok((d.clone(), size));
                }
                let p = dir.join(&name);
                let mut f = File::open(&p).sys(|| format!("open {}", p.display()))?;
                match want {
                    Some((d, size)) => {
                        store.put_blob(d, Some(size), &mut f)?;
                        (d.clone(), size)
                    }
                    None => store.put_unknown(&mut f, store.limits.blob)?,
                }
            }
            Source::Tar(_) => match self.member(&name)? {
                Member::Blob(d, size) => (d.clone(), *size),
                Member::Json(v) => {
                    let d = Digest::of(v);
                    store.put_blob(&d, Some(v.len() as u64), &mut &v[..])?;
                    (d, v.len() as u64)
                }
                Member::Link(_) => unreachable!(),
            },
        };
        if let Some((d, size)) = want {
            if (&got.0, got.1) != (d, size) {
                return Err(crate::failed!(
                    "archive member {name}: {} ({} bytes) where {d} ({size} bytes) was stated; refused",
                    got.0,
                    got.1
                ));
            }
        }
        Ok(got)
    }
}

/// Imports the image(s) in `path`; returns the names given and their manifests.
/// `name`: the name to give (required when the archive names none).
pub fn import(store: &Store, path: &Path, name: Option<&str>) -> Result<Vec<(String, Digest)>> {
    let src = Source::open(store, path)?;
    let found = if src.has("index.json") && src.has("oci-layout") {
        oci_layout(store, &src)?
    } else if src.has("manifest.json") {
        docker_save(store, &src)?
    } else {
        return Err(crate::failed!(
            "{}: neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)",
            path.display()
        ));
    };
    let mut out = vec![];
    if let Some(n) = name {
        let [(manifest, _)] = &found[..] else {
            return Err(crate::usage!("{}: holds {} images; --name names one", path.display(), found.len()));
        };
        out.push((n.to_string(), manifest.clone()));
    } else {
        for (manifest, names) in &found {
            if names.is_empty() {
                return Err(crate::usage!("{}: the archive names no image; give one with --name REF", path.display()));
            }
            out.extend(names.iter().map(|n| (n.clone(), manifest.clone())));
        }
    }
    for (n, manifest) in &out {
        store.unpack(manifest)?;
        store.tag(n, manifest)?;
    }
    Ok(out)
}

/// The canonical form of a name, when it parses as a reference.
fn canonical(s: &str) -> Option<String> {
    super::reference::Reference::parse(s).ok().map(|r| r.to_string())
}

/// Stores the manifest `desc` names (the host's platform's if it is an index)
/// with its config and layers; its digest.
fn store_manifest(store: &Store, src: &Source, desc: &Descriptor) -> Result<Digest> {
    let d = Digest::from_oci(desc.digest())?;
    src.blob(store, &blob_name(&d), Some((&d, desc.size())))?;
    let bytes = store.read_blob(&d, store.limits.manifest)?;
    if is_index(&bytes) {
        let idx = ImageIndex::from_reader(&bytes[..]).map_err(|e| crate::failed!("index {d}: {e}"))?;
        return store_manifest(store, src, &platform::pick(&idx, &Platform::host())?);
    }
    let m = parse_manifest(&bytes).map_err(|e| crate::failed!("manifest {d}: {e}"))?;
    for l in std::iter::once(m.config()).chain(m.layers()) {
        let ld = Digest::from_oci(l.digest())?;
        src.blob(store, &blob_name(&ld), Some((&ld, l.size())))?;
    }
    Ok(d)
}

fn oci_layout(store: &Store, src: &Source) -> Result<Vec<(Digest, Vec<String>)>> {
    let bytes = src.json(store, "index.json")?;
    let index = ImageIndex::from_reader(&bytes[..]).map_err(|e| crate::failed!("index.json: {e}"))?;
    let all_platforms = !index.manifests().is_empty() && index.manifests().iter().all(|m| m.platform().is_some());
    let descs =
        if all_platforms { vec![platform::pick(&index, &Platform::host())?] } else { index.manifests().clone() };
    let mut out = vec![];
    for desc in &descs {
        let d = store_manifest(store, src, desc)?;
        let ann = |k: &str| desc.annotations().as_ref().and_then(|a| a.get(k)).and_then(|v| canonical(v));
        // Docker 25 puts the whole name in containerd's annotation and only the tag
        // in the OCI one; skopeo and umoci put what they were given in the OCI one.
        let name = ann("io.containerd.image.name").or_else(|| {
            let r = desc.annotations().as_ref()?.get(oci_spec::image::ANNOTATION_REF_NAME)?;
            r.contains(['/', ':']).then(|| canonical(r)).flatten()
        });
        out.push((d, name.into_iter().collect()));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_save(store: &Store, src: &Source) -> Result<Vec<(Digest, Vec<String>)>> {
    let bytes = src.json(store, "manifest.json")?;
    let entries: Vec<SaveEntry> = serde_json::from_slice(&bytes).map_err(|e| crate::failed!("manifest.json: {e}"))?;
    let mut out = vec![];
    for e in entries {
        let (cd, csize) = src.blob(store, &e.config, None)?;
        let mut layers = vec![];
        for l in &e.layers {
            let (ld, size) = src.blob(store, l, None)?;
            let head = store.read_head(&ld)?;
            let media = match sniff(&head) {
                Compression::Gzip => MediaType::ImageLayerGzip,
                Compression::Zstd => MediaType::ImageLayerZstd,
                Compression::Plain => MediaType::ImageLayer,
            };
            layers.push(Descriptor::new(media, size, ld.to_oci()));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": Descriptor::new(MediaType::ImageConfig, csize, cd.to_oci()),
            "layers": layers,
        });
        let text = serde_json::to_vec(&manifest).map_err(|e| crate::failed!("manifest: {e}"))?;
        let d = Digest::of(&text);
        store.put_blob(&d, Some(text.len() as u64), &mut &text[..])?;
        let names = e.repo_tags.unwrap_or_default().iter().filter_map(|t| canonical(t)).collect();
        out.push((d, names));
    }
    Ok(out)
}
