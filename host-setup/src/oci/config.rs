//! config.json, read with the oci-spec crate's runtime types. A bad file is
//! refused naming the JSON path of the fault (serde_path_to_error):
//! `config.json: process.args: invalid type: string "sh", expected a sequence`.
//! What the runtime spec allows but this host or runtime cannot do is refused
//! here or in to_spec.rs, at `create`, before anything changes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec as OciSpec;

use crate::error::Result;

/// The runtime-spec version this runtime implements (for `--version` and `state`).
pub const OCI_VERSION: &str = "1.1.0";

/// Read and parse BUNDLE/config.json.
pub fn load(bundle: &Path) -> Result<OciSpec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path)
        .map_err(|e| crate::failed!("config.json: read {}: {}", path.display(), crate::error::io_text(&e)))?;
    parse(&text)
}

/// Parse config.json's text; errors name the JSON path.
pub fn parse(text: &[u8]) -> Result<OciSpec> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let spec: OciSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match path.as_str() {
            "." | "" => crate::failed!("config.json: {inner}"),
            p => crate::failed!("config.json: {p}: {inner}"),
        }
    })?;
    check_version(spec.version())?;
    refuse_unread(text)?;
    Ok(spec)
}

/// Fields of runtime-spec 1.1 that the oci-spec types we read with do not have:
/// serde would drop them without a word, so they are refused by name here.
/// A mount's own uidMappings/gidMappings ask for an idmapped bind mount.
fn refuse_unread(text: &[u8]) -> Result<()> {
    let raw: serde_json::Value = serde_json::from_slice(text).map_err(|e| crate::failed!("config.json: {e}"))?;
    let mounts = raw.get("mounts").and_then(|m| m.as_array()).map(Vec::as_slice).unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        for key in ["uidMappings", "gidMappings"] {
            if m.get(key).is_some() {
                return Err(crate::failed!(
                    "config.json: mounts[{i}].{key}: idmapped mounts are not supported by this runtime (the container's own linux.uidMappings are)"
                ));
            }
        }
    }
    Ok(())
}

/// Major version 1 only: a 2.x config may mean things we would get wrong.
pub fn check_version(v: &str) -> Result<()> {
    let major = v.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(crate::failed!(
            "config.json: ociVersion: {v:?} is not supported: this runtime implements {OCI_VERSION} (1.x)"
        ));
    }
    Ok(())
}

/// The root directory: `root.path`, relative to the bundle; it must exist.
pub fn root_dir(spec: &OciSpec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| crate::failed!("config.json: root: missing"))?;
    let dir = bundle.join(root.path());
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(crate::failed!("config.json: root.path: {} is not a directory", dir.display())),
        Err(e) => Err(crate::failed!("config.json: root.path: {}: {}", dir.display(), crate::error::io_text(&e))),
    }
}

/// runc's rule for container IDs: `^[\w+\-.]+$`, and not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !ok {
        return Err(crate::usage!("invalid container id {id:?}: use letters, digits, '_', '+', '-' or '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_config_names_the_json_path() {
        let e = parse(br#"{"ociVersion":"1.0.2","process":{"args":"sh","cwd":"/","user":{"uid":0,"gid":0}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config.json: process.args: invalid type: string"), "{e}");
        let e = parse(br#"{"ociVersion":"2.0.0"}"#).unwrap_err().to_string();
        assert!(e.contains("ociVersion: \"2.0.0\" is not supported"), "{e}");
        let e = parse(br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"nope"}]}}"#).unwrap_err();
        assert!(e.to_string().starts_with("config.json: linux.namespaces[0].type: unknown variant `nope`"), "{e}");
        assert!(parse(br#"{"ociVersion":"1.0.2-dev"}"#).is_ok());
    }

    #[test]
    fn a_mounts_own_id_mappings_are_refused_not_dropped() {
        let text = br#"{"ociVersion":"1.1.0","mounts":[{"destination":"/a","type":"tmpfs"},
            {"destination":"/b","type":"bind","source":"/x","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#;
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("mounts[1].uidMappings") && e.contains("idmapped"), "{e}");
        assert!(parse(br#"{"ociVersion":"1.1.0","mounts":[{"destination":"/a","type":"tmpfs"}]}"#).is_ok());
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
