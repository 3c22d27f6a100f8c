//! `host-setup image pull` with credentials: htpasswd basic auth over TLS (a CA
//! trusted through SSL_CERT_FILE only), a blob redirected to storage that must not
//! see them, bearer tokens from the realm the registry names.

use std::fs;

use lab_tests::{Lab, TempDir};

use super::fixture::{self, sh, Registry};
use super::{base_layout, fake, no_partials, pull_err, pull_ok};

#[test]
fn tls_with_htpasswd_basic_auth() {
    let tmp = TempDir::new("pull-tls");
    let tls = fixture::make_tls(&tmp.0);
    sh(&format!("htpasswd -Bbc '{}' alice 's3cret pw' 2>/dev/null", tmp.s("htpasswd")));
    let (layout, m) = base_layout(&tmp);
    let auth = format!("  htpasswd:\n    realm: test-realm\n    path: {}\n", tmp.s("htpasswd"));
    let reg = Registry::start(&tmp, Some(&tls), Some(&auth));
    reg.push(&layout.dir, "v1", "lab/private:v1", Some("alice:s3cret pw"));
    let r = format!("{}/lab/private:v1", reg.addr());
    let ca = tls.ca.display().to_string();
    let write_auth = |file: &str, creds: &str| {
        let b64 = sh(&format!("printf '%s' '{creds}' | base64 -w0"));
        let json = format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.addr());
        fs::write(tmp.path(file), json).unwrap();
        tmp.s(file)
    };
    let good = write_auth("good.json", "alice:s3cret pw");
    let bad = write_auth("bad.json", "alice:wrong");
    let lab = Lab::new();

    // The CA is not in the system's store: refused.
    let e = pull_err(&lab, &[&r], &[("REGISTRY_AUTH_FILE", &good)]);
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // No credentials, then wrong ones: a 401 that says which.
    let e = pull_err(&lab, &[&r], &[("SSL_CERT_FILE", &ca)]);
    assert!(e.contains("401 unauthorized") && e.contains("no credentials for"), "{e}");
    let e = pull_err(&lab, &[&r], &[("SSL_CERT_FILE", &ca), ("REGISTRY_AUTH_FILE", &bad)]);
    assert!(e.contains("401 unauthorized") && e.contains("wrong user name or password") && e.contains(&bad), "{e}");

    let (_, digest, dirs) = pull_ok(&lab, &[&r], &[("SSL_CERT_FILE", &ca), ("REGISTRY_AUTH_FILE", &good)]);
    assert_eq!(digest, reg.digest("lab/private:v1", Some("alice:s3cret pw")));
    let _ = m;
    assert!(dirs[1].join("bin/busybox").is_file());
    no_partials(&lab);
}

/// Behind a registry that wants basic auth, a blob redirected to another host
/// (blob storage): followed, and the credentials are not sent there.
#[test]
fn redirects_to_blob_storage_get_no_credentials() {
    let tmp = TempDir::new("pull-redirect");
    let (layout, m) = base_layout(&tmp);
    let blobs = layout.dir.join("blobs/sha256");
    let blobs2 = blobs.clone();
    let (storage, storage_seen) = fake::serve(move |req| {
        let d = req.path.trim_start_matches("/store/");
        fs::read(blobs2.join(d))
            .map_or(fake::Response::status(404, &[]), |b| fake::Response::ok(b, "application/octet-stream"))
    });
    let mdig = m.digest.clone();
    let (port, seen) = fake::serve(move |req| {
        if req.header("authorization") != Some("Basic Ym9iOnB3") {
            return fake::Response::status(401, &[("WWW-Authenticate", r#"Basic realm="fake""#)]);
        }
        if req.path.contains("/manifests/") {
            let b = fs::read(blobs.join(&mdig[7..])).unwrap();
            return fake::Response::ok(b, "application/vnd.oci.image.manifest.v1+json");
        }
        let d = req.path.rsplit("sha256:").next().unwrap().to_string();
        fake::Response::status(307, &[("Location", &format!("http://localhost:{storage}/store/{d}"))])
    });
    let host = format!("127.0.0.1:{port}");
    fs::write(tmp.path("auth.json"), format!(r#"{{"auths":{{"{host}":{{"username":"bob","password":"pw"}}}}}}"#))
        .unwrap();
    let lab = Lab::new();
    let (_, _, dirs) = pull_ok(
        &lab,
        &[&format!("{host}/app:v1"), "--insecure-registry", &host],
        &[("REGISTRY_AUTH_FILE", &tmp.s("auth.json"))],
    );
    assert!(dirs[1].join("bin/busybox").is_file());
    let st = storage_seen.lock().unwrap();
    assert_eq!(st.len(), 3, "config and two layers from storage");
    assert!(st.iter().all(|r| r.header("authorization").is_none()), "credentials sent to blob storage");
    assert!(seen.lock().unwrap().iter().filter(|r| r.header("authorization").is_some()).count() >= 4);
}

/// The token flow (distribution's docs/spec/auth/token.md): the registry
/// answers 401 with a Bearer challenge naming a realm; the token server there
/// takes basic credentials and gives a token, which every later request carries.
#[test]
fn bearer_token_from_the_realm_the_registry_names() {
    let tmp = TempDir::new("pull-token");
    let (layout, m) = base_layout(&tmp);
    let (tport, tseen) = fake::serve(|req| {
        let q = req.path.replace("%3A", ":").replace("%2F", "/");
        if req.header("authorization") != Some("Basic Ym9iOnB3") {
            return fake::Response::status(401, &[]);
        }
        if !q.contains("scope=repository:team/app:pull") || !q.contains("service=fake-registry") {
            return fake::Response::status(400, &[]);
        }
        fake::Response::ok(br#"{"token":"tok-123","expires_in":300}"#.to_vec(), "application/json")
    });
    let blobs = layout.dir.join("blobs/sha256");
    let mdig = m.digest.clone();
    let (port, seen) = fake::serve(move |req| {
        if req.header("authorization") != Some("Bearer tok-123") {
            let c = format!(
                r#"Bearer realm="http://127.0.0.1:{tport}/token",service="fake-registry",scope="repository:team/app:pull""#
            );
            return fake::Response::status(401, &[("WWW-Authenticate", &c)]);
        }
        let d = if req.path.contains("/manifests/") {
            mdig.clone()
        } else {
            req.path.rsplit('/').next().unwrap().to_string()
        };
        fs::read(blobs.join(d.trim_start_matches("sha256:"))).map_or(fake::Response::status(404, &[]), |b| {
            fake::Response::ok(b, "application/vnd.oci.image.manifest.v1+json")
        })
    });
    let host = format!("127.0.0.1:{port}");
    let r = format!("{host}/team/app:v1");
    let write_auth = |file: &str, pw: &str| {
        let json = format!(r#"{{"auths":{{"{host}/team":{{"username":"bob","password":"{pw}"}}}}}}"#);
        fs::write(tmp.path(file), json).unwrap();
        tmp.s(file)
    };
    let (good, bad) = (write_auth("good.json", "pw"), write_auth("bad.json", "nope"));
    let lab = Lab::new();
    let e = pull_err(&lab, &[&r, "--insecure-registry", &host], &[("REGISTRY_AUTH_FILE", &bad)]);
    assert!(e.contains(&format!("token server http://127.0.0.1:{tport}/token: 401 unauthorized")), "{e}");
    assert!(e.contains("wrong user name or password"), "{e}");
    tseen.lock().unwrap().clear();
    seen.lock().unwrap().clear();

    let (_, digest, dirs) = pull_ok(&lab, &[&r, "--insecure-registry", &host], &[("REGISTRY_AUTH_FILE", &good)]);
    assert_eq!(digest, m.digest);
    assert!(dirs[1].join("bin/busybox").is_file());
    assert_eq!(tseen.lock().unwrap().len(), 1, "one token for the whole pull");
    let bearer = seen.lock().unwrap().iter().filter(|r| r.header("authorization") == Some("Bearer tok-123")).count();
    assert_eq!(bearer, 4, "manifest, config and two layers with the token");
}
