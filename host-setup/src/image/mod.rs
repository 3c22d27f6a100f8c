//! Images: a content-addressed store of blobs in the state dir, layers unpacked
//! once (by diff ID) into overlay lower dirs, and the image list.
//!
//! - `reference` Docker's reference rules (registry helper)
//! - `platform` which manifest of an index this host runs (registry helper)
//! - `digest`   `sha256:HEX`, and a reader that hashes and limits what it reads
//! - `store`    blobs, layer dirs, locks; `unpack(manifest)` gives an image's layer dirs
//! - `repos`    repositories.json: reference -> manifest digest
//! - `manifest` a stored manifest and config read back (layers, diff IDs, defaults)
//! - `unpack`   a layer tar (plain, gzip, zstd) checked entry by entry
//! - `layerfs`  writing those entries without following a symlink or leaving the dir
//! - `import`   `docker save` archives and OCI layouts (dir or tar)
//! - `cmd`      `image import|ls|rm|prune`
//! - `reference` image references as Docker parses them
//! - `platform` the host's manifest in an index (containerd's matcher)
//! - `registry` the distribution API v2 client; `auth` its credentials and challenges
//! - `pull`     `image pull`: manifest -> platform -> blobs -> store -> unpack

pub mod auth;
pub mod cmd;
pub mod config_defaults;
pub mod digest;
pub mod import;
pub mod layerfs;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod repos;
pub mod store;
#[cfg(test)]
mod store_tests;
pub mod unpack;

pub use digest::Digest;
pub use manifest::{Image, ImageConfig};
pub use store::{Limits, Store};
