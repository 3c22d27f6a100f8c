//! An OCI image layout of one layer, built here for `host-setup image import`:
//! the tree given tarred as it is (numeric owners, sorted names), an image config,
//! a manifest and index.json; digests with sha2. export.rs and runopts.rs use it.
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{text, TempDir};

/// Writes `t/layout` (and `t/layer.tar` beside it): one uncompressed layer of the
/// tree `root`, and an image config whose `config` object is `config`; returns the
/// layout's path.
pub fn one_layer_layout(t: &TempDir, root: &Path, config: serde_json::Value) -> String {
    let layout = t.path("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let blob = |bytes: &[u8]| {
        use sha2::Digest;
        let d = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
        fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        (d, bytes.len())
    };
    let tar = t.path("layer.tar");
    let o = Command::new("tar")
        .args(["--numeric-owner", "--sort=name", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "tar: {}", text(&o));
    let (layer, lsize) = blob(&fs::read(&tar).unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer]}
    });
    let (cfg, csize) = blob(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": csize},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": lsize}]
    });
    let (m, msize) = blob(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": msize}]
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    layout.display().to_string()
}
