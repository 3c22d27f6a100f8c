//! Image references as Docker parses them (distribution's `reference` package,
//! `ParseNormalizedNamed`): `busybox` is `docker.io/library/busybox:latest`,
//! `registry.example:5000/app:1.2` names its own registry, `name@sha256:...`
//! pins a manifest by digest (a tag beside the digest is kept for display only).
//!
//! The first path component is a registry only if it has a `.` or a `:`, is
//! `localhost`, or has an upper-case letter (Docker's rule): `foo/bar` is
//! `docker.io/foo/bar`, `foo.io/bar` is on registry `foo.io`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;

use crate::error::{Error, Result};

/// Docker Hub's name in references, and the host its API actually answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// distribution's limit on the whole name (domain + path).
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `registry.example:5000`, `localhost:5000`, `[::1]:5000`.
    pub domain: String,
    /// The repository path on that registry: `library/busybox`, `app`.
    pub path: String,
    /// `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        parse(s).map_err(|why| Error::Usage(format!("invalid image reference {s:?}: {why}")))
    }

    /// The host[:port] to send API requests to (Docker Hub's API is not on docker.io).
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.domain
        }
    }

    /// What `GET /v2/<path>/manifests/<this>` asks for: the digest when pinned.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

/// The canonical form: `docker.io/library/busybox:latest`, `host/app@sha256:...`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn parse(s: &str) -> std::result::Result<Reference, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(parse_digest(d)?)),
        None => (s, None),
    };
    // The tag is after the last ':' that follows the last '/' (a ':' before a
    // '/' is a registry's port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        check_tag(t)?;
    }
    if name.len() > NAME_MAX {
        return Err(format!("name longer than {NAME_MAX} characters"));
    }
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a 64-character hex string is an image ID, not a repository name".into());
    }
    let (domain, path) = split_domain(name)?;
    check_path(&path)?;
    if domain.len() + 1 + path.len() > NAME_MAX {
        return Err(format!("name longer than {NAME_MAX} characters"));
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference { domain, path, tag, digest })
}

fn split_domain(name: &str) -> std::result::Result<(String, String), String> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            check_domain(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" { DOCKER_HUB.to_string() } else { domain };
    // Docker Hub's official images live under library/.
    let path = if domain == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
    Ok((domain, path))
}

fn parse_digest(d: &str) -> std::result::Result<Digest, String> {
    let (algo, hex) = d.split_once(':').ok_or(format!("digest {d:?} has no algorithm (sha256:...)"))?;
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm {algo:?} is not sha256, sha384 or sha512")),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("digest {d:?}: {algo} needs {len} lower-case hex digits"));
    }
    Digest::from_str(d).map_err(|e| format!("digest {d:?}: {e}"))
}

fn check_tag(t: &str) -> std::result::Result<(), String> {
    // [\w][\w.-]{0,127}
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = t.chars();
    match chars.next() {
        None => Err("empty tag after ':'".into()),
        Some(c) if !word(c) => Err(format!("tag {t:?} must start with a letter, digit or '_'")),
        _ if t.len() > 128 => Err(format!("tag {t:?} is longer than 128 characters")),
        _ if !chars.all(|c| word(c) || c == '.' || c == '-') => {
            Err(format!("tag {t:?} may hold only letters, digits, '_', '.' and '-'"))
        }
        _ => Ok(()),
    }
}

fn check_domain(d: &str) -> std::result::Result<(), String> {
    let (host, port) = if let Some(v6) = d.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(format!("registry {d:?}: unclosed '['"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("registry {d:?}: {addr:?} is not an IPv6 address"));
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').unwrap_or(after))),
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !h.split('.').all(label_ok) {
            return Err(format!("registry {d:?}: {h:?} is not a host name"));
        }
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!("registry {d:?}: port {p:?} is not a number from 0 to 65535"));
        }
    }
    Ok(())
}

/// Each '/'-separated component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    for comp in path.split('/') {
        if !component_ok(comp) {
            return Err(format!(
                "repository component {comp:?} must be lower-case letters and digits, \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn component_ok(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ok(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn bad(s: &str) -> String {
        Reference::parse(s).expect_err(s).to_string()
    }

    #[test]
    fn docker_hub_short_names() {
        let r = ok("busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_ref(), "latest");
        assert_eq!(ok("library/busybox:1.36").to_string(), "docker.io/library/busybox:1.36");
        assert_eq!(ok("foo/bar").to_string(), "docker.io/foo/bar:latest");
        assert_eq!(ok("index.docker.io/busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(ok("docker.io/foo/bar/baz").path, "foo/bar/baz");
    }

    #[test]
    fn own_registries() {
        let r = ok("registry.example:5000/app:1.2");
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("registry.example:5000", "app", Some("1.2"))
        );
        assert_eq!(r.registry_host(), "registry.example:5000");
        let r = ok("localhost:5000/x");
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.tag.as_deref()), ("localhost:5000", "x", Some("latest")));
        assert_eq!(ok("localhost/x").domain, "localhost");
        assert_eq!(ok("127.0.0.1:5000/a/b").path, "a/b");
        assert_eq!(ok("[::1]:5000/a").domain, "[::1]:5000");
        // An upper-case first component is a host name (Docker's rule).
        assert_eq!(ok("Foo/bar").domain, "Foo");
    }

    #[test]
    fn digests() {
        let r = ok(&format!("busybox@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        let r = ok(&format!("localhost:5000/x:1.0@{D}"));
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.manifest_ref(), D, "the digest wins over the tag");
    }

    #[test]
    fn refused_with_the_reason() {
        assert!(bad("").contains("empty"));
        assert!(bad("Busybox").contains("lowercase"));
        assert!(bad("busybox:").contains("empty tag"));
        assert!(bad("busybox:-x").contains("must start"));
        assert!(bad("busybox:a$b").contains("may hold only"));
        assert!(bad(&format!("busybox:{}", "a".repeat(129))).contains("128"));
        assert!(bad("busybox@sha256:abc").contains("64 lower-case hex"));
        assert!(bad("busybox@md5:abc").contains("algorithm"));
        assert!(bad("busybox@0123").contains("no algorithm"));
        assert!(bad("a//b").contains("component \"\""));
        assert!(bad("a/-b").contains("component"));
        assert!(bad("a/b..c").contains("component"));
        assert!(bad("a/b___c").contains("component"));
        assert!(bad("host:99999/a").contains("port"));
        assert!(bad("host:x5/a").contains("port"));
        assert!(bad("-host.io/a").contains("host name"));
        assert!(bad(&"0123456789abcdef".repeat(4)).contains("image ID"));
        assert!(bad(&format!("x/{}", "a".repeat(260))).contains("255"));
        assert!(bad("a b").contains("component"));
    }

    #[test]
    fn separators_allowed_in_components() {
        for p in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1.b2_c3__d4-e5"] {
            ok(&format!("x.io/{p}"));
        }
    }
}
