//! Registry authentication: the credentials file Docker and Podman write
//! (`docker login`, `podman login`), and the challenge a registry answers a
//! request with (`WWW-Authenticate: Basic ...` or `Bearer realm=...`), as the
//! distribution spec's token flow describes it
//! (docs/spec/auth/token.md): on a 401 with a Bearer challenge, GET
//! `realm?service=...&scope=...` (with the basic credentials, if any), and send
//! the token it returns as `Authorization: Bearer ...`.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::error::{Error, Result};

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    pub user: String,
    pub password: String,
    /// The file they came from, for error messages.
    pub from: PathBuf,
}

impl std::fmt::Debug for Basic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Basic({} from {})", self.user, self.from.display())
    }
}

impl Basic {
    pub fn header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The credentials files, in Podman's order: `$REGISTRY_AUTH_FILE`, then
/// `$XDG_RUNTIME_DIR/containers/auth.json`, then Docker's `~/.docker/config.json`
/// (`$DOCKER_CONFIG/config.json` when set).
pub fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG") {
        files.push(d.join("config.json"));
    } else if let Some(h) = env("HOME") {
        files.push(h.join(".docker/config.json"));
    }
    files
}

/// The credentials for `domain` (as written in the reference: `docker.io`,
/// `host:5000`) and repository `path`, from the first file that has them.
/// A missing file is skipped; an unreadable or malformed one is an error
/// (silently pulling anonymously would hide it).
pub fn lookup(files: &[PathBuf], domain: &str, path: &str) -> Result<Option<Basic>> {
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Failed(format!("read credentials file {}: {e}", f.display()))),
        };
        if let Some(b) = lookup_in(&text, f, domain, path)? {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn lookup_in(text: &str, file: &Path, domain: &str, path: &str) -> Result<Option<Basic>> {
    let bad = |why: String| Error::Failed(format!("credentials file {}: {why}", file.display()));
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    // Podman allows keys for a namespace (`host/org/repo`, `host/org`): the most
    // specific key wins, then the registry itself. Docker writes Docker Hub as
    // `https://index.docker.io/v1/`.
    let mut wanted: Vec<String> = Vec::new();
    let mut scope = format!("{domain}/{path}");
    loop {
        wanted.push(scope.clone());
        match scope.rfind('/') {
            Some(i) => scope.truncate(i),
            None => break,
        }
    }
    if domain == super::reference::DOCKER_HUB {
        wanted.extend(["index.docker.io", "registry-1.docker.io"].map(String::from));
    }
    for want in &wanted {
        for (key, entry) in auths {
            if normalize_key(key) != *want {
                continue;
            }
            let (user, password) = if let Some(a) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty())
            {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|e| bad(format!("auths.{key:?}.auth is not base64: {e}")))?;
                let raw = String::from_utf8(raw).map_err(|_| bad(format!("auths.{key:?}.auth is not UTF-8")))?;
                let (u, p) =
                    raw.split_once(':').ok_or_else(|| bad(format!("auths.{key:?}.auth is not user:password")))?;
                (u.to_string(), p.to_string())
            } else {
                let field = |n: &str| entry.get(n).and_then(|v| v.as_str()).unwrap_or("").to_string();
                (field("username"), field("password"))
            };
            if user.is_empty() && password.is_empty() {
                continue;
            }
            return Ok(Some(Basic { user, password, from: file.to_path_buf() }));
        }
    }
    Ok(None)
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `host:5000/org` stays.
fn normalize_key(key: &str) -> String {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k.strip_suffix("/v1").or_else(|| k.strip_suffix("/v2")).unwrap_or(k);
    if k == "docker.io" {
        return "index.docker.io".into();
    }
    k.to_string()
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`
/// (RFC 7235 auth-params: quoted strings with `\` escapes, or tokens).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if name.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.push((name.trim().to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        // Unquoted tokens, odd spacing, escapes, a comma inside quotes, no scope.
        let c = parse_challenge(r#"bearer  realm=http://127.0.0.1:9/t , service="a\"b,c""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/t".into(),
                service: Some("a\"b,c".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    fn find(json: &str, domain: &str, path: &str) -> Option<(String, String)> {
        lookup_in(json, Path::new("/x/auth.json"), domain, path).unwrap().map(|b| (b.user, b.password))
    }

    #[test]
    fn credentials_file() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "reg.example:5000": {{"auth": "{}"}},
                "reg.example:5000/team": {{"auth": "{}"}},
                "other.example": {{"username": "u3", "password": "p3"}},
                "empty.example": {{}}
            }}}}"#,
            b64("hub:pw"),
            b64("u1:p:w"),
            b64("team:pw2")
        );
        assert_eq!(find(&json, "docker.io", "library/busybox"), Some(("hub".into(), "pw".into())));
        assert_eq!(find(&json, "reg.example:5000", "app"), Some(("u1".into(), "p:w".into())));
        assert_eq!(find(&json, "reg.example:5000", "team/app"), Some(("team".into(), "pw2".into())));
        assert_eq!(find(&json, "other.example", "a"), Some(("u3".into(), "p3".into())));
        assert_eq!(find(&json, "empty.example", "a"), None);
        assert_eq!(find(&json, "reg.example", "app"), None, "the port is part of the key");
        assert_eq!(find("{}", "reg.example", "app"), None);
        let e = lookup_in(r#"{"auths":{"h":{"auth":"!!"}}}"#, Path::new("/x/a.json"), "h", "p").unwrap_err();
        assert!(e.to_string().contains("/x/a.json") && e.to_string().contains("base64"), "{e}");
        assert!(lookup_in("{", Path::new("/x/a.json"), "h", "p").is_err());
    }

    #[test]
    fn basic_header() {
        let b = Basic { user: "Aladdin".into(), password: "open sesame".into(), from: PathBuf::new() };
        assert_eq!(b.header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(!format!("{b:?}").contains("sesame"), "Debug must not print the password");
    }
}
