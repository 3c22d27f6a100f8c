//! `host-setup image pull` and its partial blobs (`.partial-` in the store): a
//! pull killed in the middle of a layer and pulled again, two pulls of one image
//! at once that download each blob once.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_tests::{stdout, text, Lab, TempDir};

use super::fixture::{sh, Desc, Layout, Registry};
use super::{fake, no_partials, parse_pull, pull_ok};

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
