//! `host-setup image pull` against a real registry: Debian's docker-registry
//! (distribution 2.8) started here on 127.0.0.1 with its own storage dir, images
//! pushed to it with skopeo from OCI layouts built here. Anonymous over plain
//! HTTP (`--insecure-registry`), htpasswd basic auth over TLS (a CA made with
//! openssl, trusted through SSL_CERT_FILE only), bearer tokens from a token
//! server (fake.rs); a fake registry for the lies a real one never tells.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_tests::{stdout, text, Lab, TempDir};

#[path = "image_pull/fake.rs"]
mod fake;
#[path = "image_pull/fixture.rs"]
mod fixture;

use fixture::{base_tree, sh, Desc, Layout, Registry};

/// A layout with the base image (busybox, files; a second plain-tar layer)
/// tagged `v1`; returns the manifest's descriptor.
fn base_layout(tmp: &TempDir) -> (Layout, Desc) {
    let tree = tmp.path("tree");
    base_tree(&tree);
    let top = tmp.path("top");
    fs::create_dir_all(top.join("data")).unwrap();
    fs::write(top.join("data/file2"), "second layer\n").unwrap();
    let mut l = Layout::new(tmp.path("layout"));
    let layers = [l.layer(&tree, true), l.layer(&top, false)];
    let m = l.image("amd64", &layers);
    l.tag(&m, "v1");
    (l, m)
}

/// `image pull` output: (reference, manifest digest, layer dirs topmost first).
fn parse_pull(out: &str) -> (String, String, Vec<PathBuf>) {
    let mut lines = out.lines();
    let first: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(first.len(), 2, "pull output: {out}");
    let dirs = lines.filter_map(|l| l.strip_prefix("layer ")).map(PathBuf::from).collect();
    (first[0].to_string(), first[1].to_string(), dirs)
}

fn pull(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut a = vec!["image", "pull"];
    a.extend_from_slice(args);
    let mut c = lab.cmd(&a);
    // No credentials of the machine's own user leak in.
    c.env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json").env_remove("XDG_RUNTIME_DIR").env("HOME", "/nonexistent");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn pull_ok(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> (String, String, Vec<PathBuf>) {
    let o = pull(lab, args, env);
    assert!(o.status.success(), "pull {args:?}: {}", text(&o));
    parse_pull(&stdout(&o))
}

fn pull_err(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = pull(lab, args, env);
    assert!(!o.status.success(), "pull {args:?} should fail: {}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No `.partial-` blob and no `.tmp-` layer left in the lab's image store.
fn no_partials(lab: &Lab) {
    for d in ["images/blobs/sha256", "images/layers/sha256"] {
        let Ok(rd) = fs::read_dir(lab.state_dir.join(d)) else { continue };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with('.'), "left behind: {}", e.path().display());
        }
    }
}

#[test]
fn anonymous_pull_run_repull_and_by_digest() {
    let tmp = TempDir::new("pull-anon");
    let (layout, m) = base_layout(&tmp);
    let reg = Registry::start(&tmp, None, None);
    reg.push(&layout.dir, "v1", "lab/base:v1", None);
    let lab = Lab::new();
    let r = format!("{}/lab/base:v1", reg.addr());

    // Plain HTTP is spoken only to a registry named as insecure.
    let e = pull_err(&lab, &[&r], &[]);
    assert!(e.contains(&format!("--insecure-registry {}", reg.addr())), "{e}");

    let (name, digest, dirs) = pull_ok(&lab, &[&r, "--insecure-registry", &reg.addr()], &[]);
    assert_eq!(name, r);
    assert_eq!(digest, reg.digest("lab/base:v1", None));
    let _ = m;
    assert_eq!(dirs.len(), 2);
    assert_eq!(fs::read_to_string(dirs[0].join("data/file2")).unwrap(), "second layer\n");
    let base = &dirs[1];
    assert_eq!(fs::read_to_string(base.join("etc/hello.txt")).unwrap(), "hello from the image\n");
    assert_eq!(fs::read_link(base.join("bin/sh")).unwrap(), Path::new("busybox"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(base.join("etc/hello.txt")).unwrap().ino(),
        fs::metadata(base.join("etc/hello-link.txt")).unwrap().ino()
    );
    let gets = reg.all_blob_gets("lab/base");
    assert_eq!(gets, 3, "config and two layers, once each:\n{}", reg.log_text());
    no_partials(&lab);

    // The pulled image runs.
    let name_c = lab.name("p");
    let mut run = vec!["run", name_c.as_str(), "--net", "none"];
    let dir_strs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    for d in &dir_strs {
        run.extend(["--layer", d.as_str()]);
    }
    run.extend(["--", "/bin/busybox", "cat", "/etc/hello.txt", "/data/file2"]);
    let o = lab.ok(&run);
    assert_eq!(stdout(&o), "hello from the image\nsecond layer\n", "{}", text(&o));

    // A second pull asks for the manifest only.
    let (_, digest2, dirs2) = pull_ok(&lab, &[&r, "--insecure-registry", &reg.addr()], &[]);
    assert_eq!((digest2.as_str(), &dirs2), (digest.as_str(), &dirs));
    assert_eq!(reg.all_blob_gets("lab/base"), gets, "the second pull downloaded a blob:\n{}", reg.log_text());

    // By digest, into another store.
    let lab2 = Lab::new();
    let by_digest = format!("{}/lab/base@{digest}", reg.addr());
    let (name3, digest3, dirs3) = pull_ok(&lab2, &[&by_digest, "--insecure-registry", &reg.addr()], &[]);
    assert_eq!((name3, digest3), (by_digest.clone(), digest.clone()));
    assert!(dirs3[1].join("bin/busybox").is_file());
    // A digest the registry does not have.
    let missing = format!("{}/lab/base@sha256:{}", reg.addr(), "0".repeat(64));
    let e = pull_err(&lab2, &[&missing, "--insecure-registry", &reg.addr()], &[]);
    assert!(e.contains("404") && e.contains("MANIFEST_UNKNOWN"), "{e}");
}

#[test]
fn multi_arch_index_picks_the_host_platform() {
    let tmp = TempDir::new("pull-multi");
    let mut l = Layout::new(tmp.path("layout"));
    let mut images = vec![];
    for arch in ["arm64", "amd64"] {
        let t = tmp.path(arch);
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("arch"), arch).unwrap();
        let layer = l.layer(&t, true);
        images.push((l.image(arch, &[layer]), arch));
    }
    let idx = l.index(&images);
    l.tag(&idx, "multi");
    let reg = Registry::start(&tmp, None, None);
    reg.push(&l.dir, "multi", "lab/multi:1", None);
    let r = format!("{}/lab/multi:1", reg.addr());

    let lab = Lab::new();
    let (_, digest, dirs) = pull_ok(&lab, &[&r, "--insecure-registry", &reg.addr()], &[]);
    assert_eq!(digest, images[1].0.digest, "amd64's manifest, not the index");
    assert_eq!(fs::read_to_string(dirs[0].join("arch")).unwrap(), "amd64");
    assert_eq!(reg.all_blob_gets("lab/multi"), 2, "amd64's config and layer only:\n{}", reg.log_text());

    let lab2 = Lab::new();
    let (_, digest, dirs) = pull_ok(&lab2, &[&r, "--insecure-registry", &reg.addr(), "--platform", "linux/arm64"], &[]);
    assert_eq!(digest, images[0].0.digest);
    assert_eq!(fs::read_to_string(dirs[0].join("arch")).unwrap(), "arm64");

    let e = pull_err(&lab2, &[&r, "--insecure-registry", &reg.addr(), "--platform", "linux/s390x"], &[]);
    assert!(e.contains("no image for linux/s390x") && e.contains("linux/arm64, linux/amd64"), "{e}");
}

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

/// A registry whose blob is not what its manifest says: wrong bytes of the right
/// size, then more bytes than the descriptor's size. Neither is stored.
#[test]
fn a_blob_with_the_wrong_bytes_is_refused() {
    let tmp = TempDir::new("pull-fake");
    let mut l = Layout::new(tmp.path("layout"));
    let t = tmp.path("t");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("f"), "good").unwrap();
    let layer = l.layer(&t, false);
    let m = l.image("amd64", std::slice::from_ref(&layer));
    l.tag(&m, "x");
    let blobs = l.dir.join("blobs/sha256");
    let (ldig, mdig) = (layer.0.digest.clone(), m.digest.clone());
    let ldig2 = ldig.clone();
    let (port, _) = fake::serve(move |req| {
        let ldig = &ldig2;
        let p = &req.path;
        if let Some(rest) = p.strip_prefix("/v2/") {
            let (repo, what) = rest.split_once('/').unwrap_or(("", rest));
            let read = |d: &str| fs::read(blobs.join(&d[7..])).unwrap();
            if what.starts_with("manifests/") {
                return fake::Response::ok(read(&mdig), "application/vnd.oci.image.manifest.v1+json");
            }
            if let Some(d) = what.strip_prefix("blobs/") {
                let mut body = read(d);
                if d == ldig.as_str() {
                    match repo {
                        "evil" => body.iter_mut().rev().take(600).for_each(|b| *b ^= 0x55),
                        _ => body.extend_from_slice(&[0u8; 4096]),
                    }
                }
                return fake::Response::ok(body, "application/octet-stream");
            }
        }
        fake::Response::status(404, &[])
    });
    let lab = Lab::new();
    let host = format!("127.0.0.1:{port}");
    let e = pull_err(&lab, &[&format!("{host}/evil:x"), "--insecure-registry", &host], &[]);
    assert!(e.contains("digest mismatch") && e.contains(&ldig), "{e}");
    let e = pull_err(&lab, &[&format!("{host}/big:x"), "--insecure-registry", &host], &[]);
    assert!(e.contains(&ldig) && e.contains("larger than"), "{e}");
    assert!(!lab.state_dir.join("images/blobs/sha256").join(&ldig[7..]).exists());
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

/// A layout with one 100 MB layer of random bytes (plain tar: no time in gzip).
fn big_layout(tmp: &TempDir) -> (Layout, Desc, Desc) {
    let t = tmp.path("big");
    fs::create_dir_all(&t).unwrap();
    sh(&format!("head -c 100M /dev/urandom > '{}'", t.join("random").display()));
    let mut l = Layout::new(tmp.path("layout"));
    let layer = l.layer(&t, false);
    fs::remove_dir_all(&t).unwrap();
    let m = l.image("amd64", std::slice::from_ref(&layer));
    l.tag(&m, "big");
    (l, m, layer.0)
}

/// Served slowly (fake.rs, 1 MiB per 20 ms) so that the kill lands in the
/// middle of the 100 MB layer.
#[test]
fn sigkill_in_the_middle_then_pull_again() {
    let tmp = TempDir::new("pull-kill");
    let (layout, m, layer) = big_layout(&tmp);
    let blobs = layout.dir.join("blobs/sha256");
    let mdig = m.digest.clone();
    let (port, _) = fake::serve(move |req| {
        let d = if req.path.contains("/manifests/") {
            mdig.clone()
        } else {
            req.path.rsplit('/').next().unwrap().to_string()
        };
        let Ok(body) = fs::read(blobs.join(d.trim_start_matches("sha256:"))) else {
            return fake::Response::status(404, &[]);
        };
        let mut r = fake::Response::ok(body, "application/vnd.oci.image.manifest.v1+json");
        r.pace = Some(Duration::from_millis(20));
        r
    });
    let host = format!("127.0.0.1:{port}");
    let r = format!("{host}/lab/big:1");
    let lab = Lab::new();
    let partial = lab.state_dir.join("images/blobs/sha256").join(format!(".partial-{}", &layer.digest[7..]));
    let mut child = lab
        .cmd(&["image", "pull", &r, "--insecure-registry", &host])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the pull ended before the layer was half way");
        assert!(t0.elapsed() < Duration::from_secs(60), "no partial blob appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Our own child, by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let len = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0 && len < layer.size, "not killed in the middle ({len} bytes)");

    let (_, digest, dirs) = pull_ok(&lab, &[&r, "--insecure-registry", &host], &[]);
    assert_eq!(digest, m.digest);
    assert_eq!(fs::metadata(dirs[0].join("random")).unwrap().len(), 100 << 20);
    no_partials(&lab);
}

#[test]
fn two_pulls_at_once_download_each_blob_once() {
    let tmp = TempDir::new("pull-twice");
    let (layout, m, layer) = big_layout(&tmp);
    let reg = Registry::start(&tmp, None, None);
    reg.push(&layout.dir, "big", "lab/both:1", None);
    let r = format!("{}/lab/both:1", reg.addr());
    let lab = Lab::new();
    let spawn = || {
        lab.cmd(&["image", "pull", &r, "--insecure-registry", &reg.addr()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let want = reg.digest("lab/both:1", None);
    let _ = m;
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(parse_pull(&stdout(&o)).1, want);
    }
    // (skopeo gzips the plain layer as it pushes: the registry's digests are its own.)
    let _ = layer;
    assert_eq!(reg.all_blob_gets("lab/both"), 2, "config and layer once each:\n{}", reg.log_text());
    no_partials(&lab);
}
