//! Hostile archives: each refused with an error naming what is wrong, nothing
//! written outside the layer's dir (a canary dir outside is checked), no partial
//! layer and no image left behind.

use std::fs;
use std::path::Path;

use super::build::*;
use lab_tests::{text, Lab, TempDir};

/// Everything under `dir`: names and contents, to see that nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let data = if p.is_file() { fs::read(&p).unwrap() } else { b"(not a file)".to_vec() };
            (p.display().to_string(), data)
        })
        .collect();
    v.sort();
    v
}

/// What a hostile layer holds.
type Entries = Box<dyn Fn(&mut Tar)>;

struct Case {
    what: &'static str,
    /// words the error must contain
    expect: &'static str,
    extra: &'static [&'static str],
}

#[test]
fn hostile_archives_are_refused() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostile");
    let canary = TempDir::new("canary");
    fs::write(canary.path("secret"), b"canary\n").unwrap();
    let c = canary.s("");
    let c = c.trim_end_matches('/');
    // From the layer's temporary dir, enough ../ to reach / (it is 6 deep).
    let up = "../".repeat(10);
    let cases: Vec<(Case, Entries)> = vec![
        (
            Case { what: "dotdot", expect: "'..'", extra: &[] },
            Box::new({
                let p = format!("{up}{}/pwned", &c[1..]);
                move |t: &mut Tar| raw_file(t, &p, b"x")
            }),
        ),
        (
            Case { what: "absolute", expect: "absolute", extra: &[] },
            Box::new({
                let p = format!("{c}/pwned");
                move |t: &mut Tar| raw_file(t, &p, b"x")
            }),
        ),
        (
            Case { what: "symlink-then-through", expect: "goes through the symlink evil", extra: &[] },
            Box::new({
                let c = c.to_string();
                move |t: &mut Tar| {
                    link(t, tar::EntryType::Symlink, "evil", &c);
                    raw_file(t, "evil/pwned", b"x");
                }
            }),
        ),
        (
            Case { what: "relative-symlink-then-through", expect: "goes through the symlink a/evil", extra: &[] },
            Box::new({
                let target = format!("{up}{}", &c[1..]);
                move |t: &mut Tar| {
                    dir(t, "a", 0o755, 0, 0);
                    link(t, tar::EntryType::Symlink, "a/evil", &target);
                    raw_file(t, "a/evil/pwned", b"x");
                }
            }),
        ),
        (
            Case { what: "symlink-dir-then-hardlink", expect: "goes through the symlink evil", extra: &[] },
            Box::new({
                let c = c.to_string();
                move |t: &mut Tar| {
                    link(t, tar::EntryType::Symlink, "evil", &c);
                    link(t, tar::EntryType::Link, "stolen", "evil/secret");
                }
            }),
        ),
        (
            Case { what: "hardlink-absolute", expect: "absolute", extra: &[] },
            Box::new({
                let p = format!("{c}/secret");
                move |t: &mut Tar| link(t, tar::EntryType::Link, "stolen", &p)
            }),
        ),
        (
            Case { what: "hardlink-dotdot", expect: "'..'", extra: &[] },
            Box::new({
                let p = format!("{up}{}/secret", &c[1..]);
                move |t: &mut Tar| link(t, tar::EntryType::Link, "stolen", &p)
            }),
        ),
        (
            Case { what: "hardlink-not-in-layer", expect: "no such file in this layer", extra: &[] },
            Box::new(|t: &mut Tar| link(t, tar::EntryType::Link, "passwd", "etc/passwd")),
        ),
        (
            Case { what: "whiteout-dotdot", expect: "'..'", extra: &[] },
            Box::new({
                let p = format!("{up}{}/.wh.secret", &c[1..]);
                move |t: &mut Tar| raw_file(t, &p, b"")
            }),
        ),
        (
            Case { what: "overlay-xattr", expect: "would steer overlayfs", extra: &[] },
            Box::new(|t: &mut Tar| file_owned(t, "d", b"", 0o644, 0, 0, &[("trusted.overlay.redirect", b"/etc")])),
        ),
        (
            Case { what: "bomb", expect: "decompression bomb", extra: &["--max-unpacked-size", "10M"] },
            Box::new(|t: &mut Tar| file_from(t, "zeros", 50 << 20, SparseIsh { pos: 0, size: 50 << 20 })),
        ),
        (
            Case {
                what: "oversize-layer",
                expect: "larger than the limit of 1024 bytes",
                extra: &["--max-layer-size", "1K"],
            },
            Box::new(|t: &mut Tar| file(t, "big", &noise(16 << 10), 0o644)),
        ),
    ];
    for (case, f) in &cases {
        let mut l = Layout::new(&tmp.path(case.what));
        let layer = l.layer(Comp::Gzip, |t| f(t));
        let m = l.image(&[layer], "amd64", None);
        l.index(&[(&m, None, None)]);
        refused(&lab, &canary, &tmp.s(case.what), case);
    }

    // A blob whose content is not its digest.
    let mut l = Layout::new(&tmp.path("mismatch"));
    let layer = l.layer(Comp::Gzip, |t| file(t, "f", b"honest\n", 0o644));
    let m = l.image(std::slice::from_ref(&layer), "amd64", None);
    l.index(&[(&m, None, None)]);
    let mut bytes = fs::read(l.blob_path(&layer.digest)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(l.blob_path(&layer.digest), bytes).unwrap();
    refused(&lab, &canary, &tmp.s("mismatch"), &Case { what: "blob digest", expect: "digest mismatch", extra: &[] });

    // A config whose diff ID is not the layer's tar.
    let mut l = Layout::new(&tmp.path("diffid"));
    let layer = l.layer(Comp::Gzip, |t| file(t, "f", b"x\n", 0o644));
    let m = l.image(&[layer], "amd64", Some(vec![sha256(b"something else")]));
    l.index(&[(&m, None, None)]);
    refused(&lab, &canary, &tmp.s("diffid"), &Case { what: "diff id", expect: "not the diff ID", extra: &[] });

    // A manifest over the 4 MiB limit.
    let l = Layout::new(&tmp.path("hugemanifest"));
    let pad = "x".repeat(5 << 20);
    let huge = serde_json::json!({"schemaVersion": 2, "config": {"mediaType": "a", "digest": sha256(b""), "size": 0}, "layers": [], "annotations": {"pad": pad}});
    let m = l.put("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&huge).unwrap());
    l.index(&[(&m, None, None)]);
    refused(
        &lab,
        &canary,
        &tmp.s("hugemanifest"),
        &Case { what: "manifest size", expect: "over the limit", extra: &[] },
    );
}

fn refused(lab: &Lab, canary: &TempDir, layout: &str, case: &Case) {
    let before = snapshot(&canary.0);
    let mut args = vec!["image", "import", layout, "--name", "imgtest/hostile:1"];
    args.extend(case.extra);
    let o = lab.run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}: imported: {}", case.what, text(&o));
    assert!(err.contains(case.expect) && err.contains("refused"), "{}: wrong error: {}", case.what, text(&o));
    assert_eq!(snapshot(&canary.0), before, "{}: the canary dir changed", case.what);
    let layers = lab.state_dir.join("images/layers/sha256");
    let left: Vec<_> = fs::read_dir(&layers).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{}: left in {}: {left:?}", case.what, layers.display());
    let partial: Vec<_> = fs::read_dir(lab.state_dir.join("images/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(partial.is_empty(), "{}: partial blobs left: {partial:?}", case.what);
    let ls = lab.ok(&["image", "ls"]);
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("hostile"), "{}: tagged", case.what);
}

/// Bytes gzip cannot shrink (a linear congruential generator's high bytes).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}
