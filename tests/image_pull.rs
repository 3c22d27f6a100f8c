//! `host-setup image pull` against a real registry: Debian's docker-registry
//! (distribution 2.8) started here on 127.0.0.1 with its own storage dir, images
//! pushed to it with skopeo from OCI layouts built here. Anonymous over plain
//! HTTP (`--insecure-registry`), htpasswd basic auth over TLS (a CA made with
//! openssl, trusted through SSL_CERT_FILE only), bearer tokens from a token
//! server (fake.rs); a fake registry for the lies a real one never tells.

use std::fs;
use std::path::{Path, PathBuf};

use lab_tests::{stdout, text, Lab, TempDir};

/// Credentials: basic auth over TLS, redirects to blob storage, bearer tokens.
#[path = "image_pull/auth.rs"]
mod auth;
#[path = "image_pull/fake.rs"]
mod fake;
#[path = "image_pull/fixture.rs"]
mod fixture;
/// Partial blobs: a pull killed in the middle, two pulls of one image at once.
#[path = "image_pull/partial.rs"]
mod partial;

use fixture::{base_tree, Desc, Layout, Registry};

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
