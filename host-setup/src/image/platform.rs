//! Which manifest of an image index (a Docker manifest list) this host runs: the
//! rules of containerd's default matcher (`platforms.Only`), so a pull picks what
//! `ctr`/`nerdctl`/Podman would pick.
//!
//! Names are normalized first (`x86_64` is `amd64`, `aarch64` is `arm64`, arm64's
//! `v8` and amd64's `v1` are the empty variant, plain `arm` is `arm/v7`); then the
//! host's platform is tried first, then what its CPU also runs, in order:
//! amd64 runs 386; arm64 runs arm/v8, v7, v6, v5; arm/v7 runs v6, v5.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    /// Normalized: empty where containerd's is.
    pub variant: String,
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: &str) -> Platform {
        let (arch, variant) = normalize_arch(arch, variant);
        Platform { os: os.to_ascii_lowercase(), arch, variant }
    }

    /// The platform this host-setup was built for (linux only).
    pub fn host() -> Platform {
        let arch = if cfg!(target_arch = "x86_64") {
            "amd64"
        } else if cfg!(target_arch = "aarch64") {
            "arm64"
        } else if cfg!(target_arch = "arm") {
            "arm"
        } else {
            std::env::consts::ARCH
        };
        Platform::new("linux", arch, "")
    }

    /// `--platform os/arch[/variant]`, as Docker and Podman take it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let usage = |why: &str| Error::Usage(format!("invalid platform {s:?}: {why} (e.g. linux/amd64, linux/arm/v7)"));
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(usage("expected os/arch[/variant]"));
        }
        if parts[0] != "linux" {
            return Err(usage("only linux images run here"));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied().unwrap_or("")))
    }

    fn of(d: &Descriptor) -> Option<Platform> {
        let p = d.platform().as_ref()?;
        Some(Platform::new(&p.os().to_string(), &p.architecture().to_string(), p.variant().as_deref().unwrap_or("")))
    }

    /// This platform, then those its CPU also runs, best first (containerd's
    /// `platformVector`).
    fn vector(&self) -> Vec<Platform> {
        let mut v = vec![self.clone()];
        let with = |arch: &str, variant: String| Platform { os: self.os.clone(), arch: arch.into(), variant };
        match self.arch.as_str() {
            "amd64" => {
                // amd64 v3 runs v2 and v1 (the empty variant).
                if let Some(n) = self.variant.strip_prefix('v').and_then(|n| n.parse::<u32>().ok()) {
                    for k in (1..n).rev() {
                        v.push(with("amd64", if k == 1 { String::new() } else { format!("v{k}") }));
                    }
                }
                v.push(with("386", String::new()));
            }
            "arm" => {
                if let Some(n) = self.variant.strip_prefix('v').and_then(|n| n.parse::<u32>().ok()) {
                    for k in (5..n).rev() {
                        v.push(with("arm", format!("v{k}")));
                    }
                }
            }
            "arm64" => {
                let variant = if self.variant.is_empty() { "v8".to_string() } else { self.variant.clone() };
                v.extend(with("arm", variant).vector());
            }
            _ => {}
        }
        v
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), if variant == "v1" { String::new() } else { variant }),
        "aarch64" | "arm64" => {
            ("arm64".into(), if matches!(variant.as_str(), "8" | "v8" | "v8.0") { String::new() } else { variant })
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

/// The manifest in `index` that `want` runs best; an error naming the platforms
/// the index offers when there is none.
pub fn pick(index: &ImageIndex, want: &Platform) -> Result<Descriptor> {
    let offered: Vec<(Platform, &Descriptor)> =
        index.manifests().iter().filter_map(|d| Platform::of(d).map(|p| (p, d))).collect();
    for candidate in want.vector() {
        if let Some((_, d)) = offered.iter().find(|(p, _)| *p == candidate) {
            return Ok((*d).clone());
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (p, _) in &offered {
        if !names.contains(&p.to_string()) {
            names.push(p.to_string());
        }
    }
    Err(Error::Failed(format!(
        "no image for {want} in the index: it offers {}",
        if names.is_empty() { "no platform at all".to_string() } else { names.join(", ") }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[(&str, &str, &str)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, var))| {
                let mut p = serde_json::json!({"os": os, "architecture": arch});
                if !var.is_empty() {
                    p["variant"] = serde_json::json!(var);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{:064x}", i),
                    "size": 100 + i,
                    "platform": p,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests})).unwrap()
    }

    fn picked(platforms: &[(&str, &str, &str)], want: Platform) -> Result<usize> {
        pick(&index(platforms), &want).map(|d| d.size() as usize - 100)
    }

    const MULTI: &[(&str, &str, &str)] = &[
        ("linux", "arm", "v6"),
        ("linux", "arm64", "v8"),
        ("windows", "amd64", ""),
        ("linux", "amd64", ""),
        ("linux", "arm", "v7"),
        ("unknown", "unknown", ""),
    ];

    #[test]
    fn exact_platform_first() {
        assert_eq!(picked(MULTI, Platform::new("linux", "amd64", "")).unwrap(), 3);
        assert_eq!(picked(MULTI, Platform::new("linux", "aarch64", "")).unwrap(), 1, "arm64 v8 normalizes to empty");
        assert_eq!(picked(MULTI, Platform::new("linux", "arm", "")).unwrap(), 4, "plain arm is arm/v7");
        assert_eq!(picked(MULTI, Platform::parse("linux/arm/v6").unwrap()).unwrap(), 0);
    }

    #[test]
    fn host_is_linux_and_the_build_arch() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
            assert_eq!(picked(MULTI, h).unwrap(), 3);
        }
    }

    #[test]
    fn compatible_fallbacks_in_order() {
        // arm64 runs 32-bit arm, newest first.
        let only_arm = &[("linux", "arm", "v5"), ("linux", "arm", "v7"), ("linux", "arm", "v6")];
        assert_eq!(picked(only_arm, Platform::new("linux", "arm64", "")).unwrap(), 1);
        assert_eq!(picked(&[("linux", "arm", "v5")], Platform::new("linux", "arm", "v7")).unwrap(), 0);
        // amd64 runs 386; amd64/v3 runs v2 and v1.
        assert_eq!(picked(&[("linux", "386", "")], Platform::new("linux", "x86_64", "")).unwrap(), 0);
        let levels = &[("linux", "amd64", "v1"), ("linux", "amd64", "v2")];
        assert_eq!(picked(levels, Platform::new("linux", "amd64", "v3")).unwrap(), 1);
        // ...but never upward: arm/v6 does not run v7, amd64 does not run amd64/v2.
        assert!(picked(&[("linux", "arm", "v7")], Platform::new("linux", "arm", "v6")).is_err());
        assert!(picked(&[("linux", "amd64", "v2")], Platform::new("linux", "amd64", "")).is_err());
        // Nor across OSes.
        assert!(picked(&[("windows", "amd64", "")], Platform::new("linux", "amd64", "")).is_err());
    }

    #[test]
    fn error_lists_what_is_offered() {
        let e = picked(&[("linux", "arm64", ""), ("linux", "s390x", "")], Platform::new("linux", "amd64", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no image for linux/amd64"), "{e}");
        assert!(e.contains("linux/arm64, linux/s390x"), "{e}");
        let e = picked(&[], Platform::new("linux", "amd64", "")).unwrap_err().to_string();
        assert!(e.contains("no platform at all"), "{e}");
    }

    #[test]
    fn parse_platform_option() {
        assert_eq!(Platform::parse("linux/amd64").unwrap(), Platform::new("linux", "amd64", ""));
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "/amd64", "windows/amd64", "linux/arm/v7/x"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
