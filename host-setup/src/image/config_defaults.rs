//! `--image REF`: the stored image a container runs (its layer dirs, unpacked
//! now if they are not yet, and its config's defaults), and the user names of
//! `-u`/User looked up in /etc/passwd and /etc/group of the container's own
//! layers, as Docker and runc do (never the host's files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::manifest::ImageConfig;
use super::reference::Reference;
use super::repos;
use super::store::Store;
use crate::error::Result;
use crate::state::Paths;
use crate::usage;

/// An image found in the store, its layers unpacked.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The store's name for it.
    pub reference: String,
    pub manifest: Digest,
    /// Overlayfs's order: topmost first.
    pub dirs_top_first: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// The name `r` in the store's list: as typed, in canonical form
/// (`busybox` = `docker.io/library/busybox:latest`), or a manifest digest.
pub fn find(names: &BTreeMap<String, Digest>, r: &str) -> Option<(String, Digest)> {
    if let Ok(d) = Digest::parse(r) {
        return names.iter().find(|(_, m)| **m == d).map(|(n, m)| (n.clone(), m.clone()));
    }
    let canon = Reference::parse(r).ok().map(|x| x.to_string());
    names
        .iter()
        .find(|(n, _)| n.as_str() == r || Some(n.as_str()) == canon.as_deref())
        .map(|(n, m)| (n.clone(), m.clone()))
}

/// `--image REF`: the image, with every layer unpacked.
pub fn resolve(paths: &Paths, r: &str) -> Result<ResolvedImage> {
    let store = Store::open(paths)?;
    let names = repos::read(&store)?;
    let (reference, manifest) = find(&names, r).ok_or_else(|| {
        usage!("--image {r}: no such image in {} (see host-setup image ls; image pull or image import it)", {
            store.dir().display()
        })
    })?;
    let image = store.unpack(&manifest)?;
    let mut dirs_top_first = image.dirs.clone();
    dirs_top_first.reverse();
    Ok(ResolvedImage { reference, manifest, dirs_top_first, config: image.config })
}

/// A user as `-u` or the image's User names it, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those of /etc/group that list the user's name.
    pub groups: Vec<u32>,
    /// Its /etc/passwd home (None: no entry).
    pub home: Option<String>,
}

/// `USER[:GROUP]` (names or numbers) resolved against the layers' files,
/// topmost layer first (runc's GetExecUser).
pub fn user(layers: &[PathBuf], spec: &str) -> Result<Found> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(usage!("-u {spec}: give UID[:GID] or NAME[:GROUP]"));
    }
    let passwd = read_layered(layers, "etc/passwd")?.unwrap_or_default();
    let group = read_layered(layers, "etc/group")?.unwrap_or_default();
    user_in(spec, u, g, &passwd, &group)
}

fn user_in(spec: &str, u: &str, g: Option<&str>, passwd: &str, group: &str) -> Result<Found> {
    // name:x:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    let numeric = u.parse::<u32>().ok();
    let entry = entries.iter().find(|f| Some(f[0]) == Some(u) || (numeric.is_some() && f[2].parse().ok() == numeric));
    let uid = match (numeric, entry) {
        (Some(n), _) => n,
        (None, Some(f)) => f[2].parse().map_err(|_| usage!("-u {spec}: /etc/passwd has a bad uid for {u}"))?,
        (None, None) => {
            return Err(usage!("-u {spec}: unknown user {u:?}: not in the image's /etc/passwd (give a numeric UID)"))
        }
    };
    // name:x:gid:member,member
    let groups: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 3).collect();
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups.iter().find(|f| f[0] == g).and_then(|f| f[2].parse().ok()).ok_or_else(|| {
                usage!("-u {spec}: unknown group {g:?}: not in the image's /etc/group (give a numeric GID)")
            })?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let extra = match (g, entry) {
        (None, Some(f)) => groups
            .iter()
            .filter(|gr| gr.get(3).is_some_and(|m| m.split(',').any(|m| m == f[0])))
            .filter_map(|gr| gr[2].parse::<u32>().ok())
            .filter(|&n| n != gid)
            .collect(),
        _ => vec![],
    };
    Ok(Found { uid, gid, groups: extra, home: entry.and_then(|f| f.get(5)).map(|h| h.to_string()) })
}

/// The file `rel` as the overlay of `layers` (topmost first) shows it: the
/// first layer that has it; a whiteout (a 0/0 character device) hides it. No
/// symlink is followed (the layers are untrusted data): one is refused.
fn read_layered(layers: &[PathBuf], rel: &str) -> Result<Option<String>> {
    use std::os::unix::fs::FileTypeExt;
    for l in layers {
        let mut p = l.clone();
        for part in Path::new(rel).components() {
            p.push(part);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(usage!(
                        "-u: /{rel} goes through a symlink in layer {} (not followed); give a numeric UID[:GID]",
                        l.display()
                    ))
                }
                Ok(m) if m.file_type().is_char_device() => return Ok(None),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if p.ends_with(rel) && p.is_file() {
            let text = std::fs::read_to_string(&p).map_err(|e| crate::failed!("read {}: {e}", p.display()))?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nweb:x:3000:\n";

    fn u(spec: &str) -> Result<Found> {
        let (u, g) = spec.split_once(':').map_or((spec, None), |(a, b)| (a, Some(b)));
        user_in(spec, u, g, PASSWD, GROUP)
    }

    #[test]
    fn users_as_runc_resolves_them() {
        let app = Found { uid: 1000, gid: 1000, groups: vec![2000], home: Some("/home/app".into()) };
        assert_eq!(u("app").unwrap(), app);
        assert_eq!(u("1000").unwrap(), app, "a number with an entry gets its gid and groups");
        assert_eq!(u("app:web").unwrap(), Found { gid: 3000, groups: vec![], ..app.clone() });
        assert_eq!(u("1000:5").unwrap(), Found { gid: 5, groups: vec![], ..app });
        assert_eq!(u("4242").unwrap(), Found { uid: 4242, gid: 0, groups: vec![], home: None });
        assert_eq!(u("0").unwrap().home.as_deref(), Some("/root"));
        assert!(u("nobody").unwrap_err().to_string().contains("unknown user \"nobody\""));
        assert!(u("app:nogroup").unwrap_err().to_string().contains("unknown group"));
    }

    #[test]
    fn names_are_found_by_reference_or_digest() {
        let d = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let names: BTreeMap<String, Digest> = [("docker.io/library/busybox:latest".to_string(), d.clone())].into();
        assert_eq!(find(&names, "busybox").unwrap().0, "docker.io/library/busybox:latest");
        assert_eq!(find(&names, &d.to_string()).unwrap().1, d);
        assert!(find(&names, "alpine").is_none());
    }

    #[test]
    fn layered_files_honour_whiteouts_and_refuse_symlinks() {
        let base = std::env::temp_dir().join(format!("hs-cfgdef-{}", std::process::id()));
        let (top, bottom) = (base.join("top"), base.join("bottom"));
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::write(bottom.join("etc/passwd"), PASSWD).unwrap();
        let layers = vec![top.clone(), bottom.clone()];
        assert_eq!(read_layered(&layers, "etc/passwd").unwrap().as_deref(), Some(PASSWD));
        std::os::unix::fs::symlink("/etc/passwd", top.join("etc/passwd")).unwrap();
        assert!(read_layered(&layers, "etc/passwd").is_err(), "the host's file is never read");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
