//! The distribution HTTP API v2 (the OCI distribution spec), the read side:
//! `GET /v2/NAME/manifests/REF` and `GET /v2/NAME/blobs/DIGEST`, with the
//! authentication dance (auth.rs) and redirects to blob storage.
//!
//! Synchronous, over ureq (rustls, the system's CAs). Redirects are followed here,
//! not by ureq, so that the `Authorization` header goes only to the registry's
//! own origin: blob storage (S3, a CDN) gets a pre-signed URL and must not see
//! the registry's token or password (Docker and containerd do the same).

use std::cell::RefCell;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::auth::{self, Basic, Challenge};
use super::reference::Reference;
use crate::error::{Error, Result};

/// What a pull asks a registry for: every manifest shape it understands.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
const MAX_REDIRECTS: usize = 10;
/// The most of an error body read back to show its message.
const ERROR_BODY_MAX: u64 = 64 << 10;

pub struct Registry {
    agent: ureq::Agent,
    /// `https://host:port` (`http://` for an insecure registry).
    origin: String,
    insecure: bool,
    /// `host[:port]` as requests reach it (`registry-1.docker.io` for docker.io).
    host: String,
    repo: String,
    creds: Option<Basic>,
    /// Where credentials were looked for, to name them when a registry says 401.
    auth_files: Vec<PathBuf>,
    /// The `Authorization` value in use once a challenge was answered.
    authorization: RefCell<Option<String>>,
    /// Requests sent (redirect hops and token fetches included), for the debug log.
    pub requests: std::cell::Cell<u32>,
}

/// A manifest or index as the registry sent it (its Content-Type is not kept:
/// the JSON's own mediaType is the better witness).
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// `sha256:HEX` of `bytes`, computed here.
    pub digest: String,
}

impl Registry {
    /// A client for `r`'s repository. `insecure`: `host[:port]` names that are
    /// spoken to over plain HTTP (`--insecure-registry`); every other registry
    /// over HTTPS, verified against the system's CAs (`SSL_CERT_FILE` replaces
    /// them, as for OpenSSL).
    pub fn new(r: &Reference, insecure: &[String]) -> Result<Registry> {
        let host = r.registry_host().to_string();
        let is_insecure = insecure.iter().any(|i| *i == host || *i == r.domain);
        let auth_files = auth::auth_files();
        let creds = auth::lookup(&auth_files, &r.domain, &r.path)?;
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(30))
            // Between two reads, not for the whole body: a big layer may take long.
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("host-setup/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Registry {
            agent,
            origin: format!("{}://{host}", if is_insecure { "http" } else { "https" }),
            insecure: is_insecure,
            host,
            repo: r.path.clone(),
            creds,
            auth_files,
            authorization: RefCell::new(None),
            requests: std::cell::Cell::new(0),
        })
    }

    /// The manifest or index `reference` (a tag or a digest) names, at most
    /// `limit` bytes, with `Docker-Content-Digest` checked against its bytes.
    pub fn manifest(&self, reference: &str, limit: u64) -> Result<Fetched> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.origin, self.repo);
        let resp = self.get(&url, Some(ACCEPT_MANIFESTS))?;
        if let Some(n) = resp.header("Content-Length").and_then(|v| v.parse::<u64>().ok()) {
            if n > limit {
                return Err(Error::Failed(format!(
                    "GET {url}: a manifest of {n} bytes, over the limit of {limit}; refused"
                )));
            }
        }
        let header_digest = resp.header("Docker-Content-Digest").map(str::to_string);
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Failed(format!("GET {url}: reading the manifest: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(Error::Failed(format!("GET {url}: a manifest over the limit of {limit} bytes; refused")));
        }
        let digest = sha256(&bytes);
        if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
            if h != digest {
                return Err(Error::Failed(format!(
                    "GET {url}: Docker-Content-Digest says {h} but the manifest's bytes are {digest}; refused"
                )));
            }
        }
        Ok(Fetched { bytes, digest })
    }

    /// The blob `digest` as a stream (the caller checks its digest and size).
    pub fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send + Sync>> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.origin, self.repo);
        Ok(self.get(&url, None)?.into_reader())
    }

    /// GET with the credentials the registry asks for: on a 401, answer its
    /// challenge once and retry; follow redirects; any other status is an error
    /// that quotes the registry's own message.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<ureq::Response> {
        for attempt in 0..2 {
            let resp = self.follow(url, accept)?;
            match resp.status() {
                200..=299 => return Ok(resp),
                401 if attempt == 0 => {
                    let challenge = resp.header("WWW-Authenticate").map(str::to_string);
                    self.answer(url, challenge.as_deref(), &resp_text(resp))?;
                }
                401 => {
                    return Err(Error::Failed(format!(
                        "GET {url}: 401 unauthorized{}: {}",
                        self.creds_note(),
                        resp_text(resp)
                    )))
                }
                code => {
                    let status = format!("{code} {}", resp.status_text());
                    return Err(Error::Failed(format!("GET {url}: {status}: {}", resp_text(resp))));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Sends `url`, then each redirect's Location, and returns the first
    /// answer that is not a redirect (whatever its status).
    fn follow(&self, url: &str, accept: Option<&str>) -> Result<ureq::Response> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.set("Accept", a);
            }
            // Only to the registry itself, never to where it redirects.
            if origin_of(&url) == self.origin {
                if let Some(v) = self.authorization.borrow().as_deref() {
                    req = req.set("Authorization", v);
                }
            }
            self.requests.set(self.requests.get() + 1);
            log::debug!("registry request: GET {url}");
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => return Err(self.transport_error(&url, t)),
            };
            if !matches!(resp.status(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let loc = resp
                .header("Location")
                .ok_or_else(|| Error::Failed(format!("GET {url}: {} without a Location", resp.status())))?;
            let next = resolve(&url, loc);
            if url.starts_with("https://") && next.starts_with("http://") {
                return Err(Error::Failed(format!("GET {url}: redirect from https to plain http ({next}) refused")));
            }
            url = next;
        }
        Err(Error::Failed(format!("GET {url}: more than {MAX_REDIRECTS} redirects")))
    }

    /// Answers a 401's challenge: basic credentials, or a bearer token from the
    /// realm it names.
    fn answer(&self, url: &str, challenge: Option<&str>, body: &str) -> Result<()> {
        let unauthorized = |why: String| Error::Failed(format!("GET {url}: 401 unauthorized: {why}"));
        let challenge = challenge
            .and_then(auth::parse_challenge)
            .ok_or_else(|| unauthorized(format!("no Basic or Bearer challenge in WWW-Authenticate ({body})")))?;
        match challenge {
            Challenge::Basic => {
                let c = self.creds.as_ref().ok_or_else(|| unauthorized(self.no_creds()))?;
                *self.authorization.borrow_mut() = Some(c.header());
            }
            Challenge::Bearer { realm, service, scope } => {
                let token = self.token(&realm, service.as_deref(), scope.as_deref())?;
                *self.authorization.borrow_mut() = Some(format!("Bearer {token}"));
            }
        }
        Ok(())
    }

    /// `GET realm?service=..&scope=..` -> `{"token": ...}` (or `access_token`).
    fn token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        let scope = scope.map(str::to_string).unwrap_or_else(|| format!("repository:{}:pull", self.repo));
        let mut req = self.agent.get(realm).query("scope", &scope);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(c) = &self.creds {
            // A password never goes in clear text unless the registry itself is plain HTTP.
            if realm.starts_with("http://") && !self.insecure {
                return Err(Error::Failed(format!(
                    "token server {realm} is plain http: not sending the credentials of {} to it",
                    self.host
                )));
            }
            req = req.set("Authorization", &c.header());
        }
        self.requests.set(self.requests.get() + 1);
        log::debug!("registry request: GET {realm} (token, scope {scope})");
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401, r)) => {
                return Err(Error::Failed(format!(
                    "token server {realm}: 401 unauthorized{}: {}",
                    self.creds_note(),
                    resp_text(r)
                )))
            }
            Err(ureq::Error::Status(code, r)) => {
                return Err(Error::Failed(format!("token server {realm}: {code}: {}", resp_text(r))))
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(realm, t)),
        };
        let mut body = String::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_string(&mut body)
            .map_err(|e| Error::Failed(format!("token server {realm}: reading the answer: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::Failed(format!("token server {realm}: the answer is not JSON: {e}")))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| Error::Failed(format!("token server {realm}: no token in the answer")))
    }

    fn creds_note(&self) -> String {
        match &self.creds {
            Some(c) => format!(" (user {:?} from {}: wrong user name or password?)", c.user, c.from.display()),
            None => format!(" ({})", self.no_creds()),
        }
    }

    fn no_creds(&self) -> String {
        let files: Vec<String> = self.auth_files.iter().map(|f| f.display().to_string()).collect();
        format!("no credentials for {} in {} (podman login / docker login write them)", self.host, files.join(", "))
    }

    fn transport_error(&self, url: &str, t: ureq::Transport) -> Error {
        // Transport's own Display repeats the URL: kind and message only.
        let mut msg = format!("GET {url}: {}", t.kind());
        if let Some(m) = t.message() {
            msg.push_str(&format!(": {m}"));
        }
        if let Some(src) = std::error::Error::source(&t) {
            msg.push_str(&format!(": {src}"));
        }
        if !self.insecure && matches!(t.kind(), ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io) {
            msg.push_str(&format!(
                "; a registry that speaks plain http must be named with --insecure-registry {}",
                self.host
            ));
        }
        Error::Failed(msg)
    }
}

/// The registry's own words from an error body: distribution's
/// `{"errors":[{"code":..,"message":..}]}`, else the first line of the text.
fn resp_text(resp: ureq::Response) -> String {
    let mut body = String::new();
    let _ = resp.into_reader().take(ERROR_BODY_MAX).read_to_string(&mut body);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errs
                .iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                    format!("{} {}", s("code"), s("message")).trim().to_string()
                })
                .collect();
            return parts.join("; ");
        }
    }
    let line = body.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "no message".into()
    } else {
        line.chars().take(200).collect()
    }
}

/// `scheme://host[:port]` of an absolute URL (no default-port folding: a
/// registry's redirects name it as its clients do).
pub(crate) fn origin_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!("{}://{}", &url[..i], &rest[..end]).to_ascii_lowercase()
        }
        None => String::new(),
    }
}

/// A Location header against the URL that answered it (RFC 3986, the cases
/// registries use: absolute, scheme-relative, absolute path, relative path).
pub(crate) fn resolve(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let scheme = base.split("://").next().unwrap_or("https");
    if let Some(rest) = loc.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let origin = origin_of(base);
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let path = &base[origin.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{origin}{}{loc}", if dir.is_empty() { "/" } else { dir })
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(bytes);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_redirects() {
        assert_eq!(origin_of("https://Reg.example:5000/v2/a/blobs/x?y=1"), "https://reg.example:5000");
        assert_eq!(origin_of("http://h"), "http://h");
        let base = "https://reg:5000/v2/app/blobs/sha256:ab?x=1";
        assert_eq!(resolve(base, "https://s3.example/b?sig=1"), "https://s3.example/b?sig=1");
        assert_eq!(resolve(base, "//cdn.example/b"), "https://cdn.example/b");
        assert_eq!(resolve(base, "/other/b"), "https://reg:5000/other/b");
        assert_eq!(resolve(base, "c"), "https://reg:5000/v2/app/blobs/c");
        assert_eq!(resolve("http://h", "c"), "http://h/c");
    }

    #[test]
    fn digest_of_bytes() {
        assert_eq!(sha256(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
