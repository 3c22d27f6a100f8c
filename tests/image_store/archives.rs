//! `docker save` archives, OCI layout tars, a multi-platform index; rm and prune.

use std::fs;
use std::path::Path;

use super::build::*;
use lab_tests::{text, Lab, TempDir};

/// The content of `rel` in the layer whose plain tar has `diff_id`.
fn layer_file(lab: &Lab, diff_id: &str, rel: &str) -> String {
    let p = lab.state_dir.join("images/layers/sha256").join(&diff_id[7..]).join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ls(lab: &Lab) -> String {
    String::from_utf8_lossy(&lab.ok(&["image", "ls"]).stdout).into_owned()
}

/// A `docker save` archive as Docker before 25 wrote it: ID/layer.tar (plain), the
/// config as HEX.json, manifest.json with RepoTags, a layer shared by symlink.
#[test]
fn docker_save_archive() {
    let lab = Lab::new();
    let tmp = TempDir::new("save");
    let mut l = Layout::new(&tmp.path("scratch"));
    let l1 = l.layer(Comp::Plain, |t| file(t, "hello", b"from docker save\n", 0o644));
    let l2 = l.layer(Comp::Plain, |t| file(t, ".wh.hello", b"", 0o644));
    let l3 = l.layer(Comp::Plain, |t| file(t, "again", b"third\n", 0o644));
    let save = tmp.path("save");
    for (id, d) in [("aaa", &l1), ("bbb", &l2), ("ccc", &l3)] {
        fs::create_dir_all(save.join(id)).unwrap();
        fs::copy(l.blob_path(&d.digest), save.join(id).join("layer.tar")).unwrap();
    }
    // Docker's way of storing one layer twice: a symlink to the other's tar.
    fs::create_dir_all(save.join("ddd")).unwrap();
    std::os::unix::fs::symlink("../ccc/layer.tar", save.join("ddd/layer.tar")).unwrap();
    let ids = [&l1, &l2, &l3, &l3].iter().map(|d| d.diff_id.clone()).collect();
    let m = l.image(&[], "amd64", Some(ids));
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(l.blob_path(&m.digest)).unwrap()).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap()[7..].to_string();
    fs::copy(l.blob_path(&format!("sha256:{config}")), save.join(format!("{config}.json"))).unwrap();
    let mj = serde_json::json!([{"Config": format!("{config}.json"), "RepoTags": ["imgtest/saved:1.0"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar", "ddd/layer.tar"]}]);
    fs::write(save.join("manifest.json"), serde_json::to_vec(&mj).unwrap()).unwrap();
    tar_dir(&save, &tmp.path("save.tar"));
    let o = lab.ok(&["image", "import", &tmp.s("save.tar")]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("docker.io/imgtest/saved:1.0 sha256:"), "{}", text(&o));
    assert!(ls(&lab).contains("docker.io/imgtest/saved:1.0"), "{}", ls(&lab));
    assert_eq!(layer_file(&lab, &l1.diff_id, "hello"), "from docker save\n");
    assert_eq!(layer_file(&lab, &l3.diff_id, "again"), "third\n");
    let wh = lab.state_dir.join("images/layers/sha256").join(&l2.diff_id[7..]).join("hello");
    let st = fs::symlink_metadata(&wh).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&st.file_type()), "{} is no whiteout", wh.display());
    // The extracted directory form imports too.
    lab.ok(&["image", "import", &tmp.s("save"), "--name", "imgtest/saved:dir"]);
    assert!(ls(&lab).contains("docker.io/imgtest/saved:dir"));
}

/// An OCI layout as a (gzip-compressed) tar; a multi-platform index gives amd64.
#[test]
fn layout_tar_and_multi_platform_index() {
    let lab = Lab::new();
    let tmp = TempDir::new("multi");
    let mut l = Layout::new(&tmp.path("layout"));
    let amd = l.layer(Comp::Zstd, |t| file(t, "arch", b"amd64\n", 0o644));
    let arm = l.layer(Comp::Gzip, |t| file(t, "arch", b"arm64\n", 0o644));
    let m_amd = l.image(std::slice::from_ref(&amd), "amd64", None);
    let m_arm = l.image(std::slice::from_ref(&arm), "arm64", None);
    // arm64 first: the pick is by platform, not by order.
    l.index(&[(&m_arm, None, Some("arm64")), (&m_amd, None, Some("amd64"))]);
    tar_dir(&tmp.path("layout"), &tmp.path("layout.tar"));
    let gz = fs::File::create(tmp.path("layout.tar.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    std::io::copy(&mut fs::File::open(tmp.path("layout.tar")).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    for (src, name) in
        [("layout.tar", "imgtest/multi:tar"), ("layout.tar.gz", "imgtest/multi:gz"), ("layout", "imgtest/multi:dir")]
    {
        let o = lab.ok(&["image", "import", &tmp.s(src), "--name", name]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&m_amd.digest),
            "{src}: not the amd64 manifest: {}",
            text(&o)
        );
    }
    assert_eq!(layer_file(&lab, &amd.diff_id, "arch"), "amd64\n");
    let arm_dir = lab.state_dir.join("images/layers/sha256").join(&arm.diff_id[7..]);
    assert!(!arm_dir.exists(), "the arm64 layer was unpacked");
    // Without a name, an archive that names none is refused (nothing to call it).
    let o = lab.run(&["image", "import", &tmp.s("layout")]);
    assert!(!o.status.success() && text(&o).contains("--name"), "{}", text(&o));
}

/// rm is refused while a container uses the image's layers; prune keeps what is
/// named and removes the rest.
#[test]
fn rm_refused_while_in_use_then_prune() {
    let lab = Lab::new();
    let tmp = TempDir::new("rm");
    let mut l = Layout::new(&tmp.path("layout"));
    let busybox = fs::read("/bin/busybox").unwrap();
    let a = l.layer(Comp::Gzip, |t| file(t, "bin/busybox", &busybox, 0o755));
    let b = l.layer(Comp::Gzip, |t| file(t, "only-b", b"b\n", 0o644));
    let ma = l.image(std::slice::from_ref(&a), "amd64", None);
    let mb = l.image(&[a.clone(), b.clone()], "amd64", None);
    l.index(&[(&ma, Some("imgtest/a:1"), None), (&mb, Some("imgtest/b:1"), None)]);
    let o = lab.ok(&["image", "import", &tmp.s("layout")]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2, "{}", text(&o));
    let layers = lab.state_dir.join("images/layers/sha256");
    let name = lab.name("rm");
    let bdir = layers.join(&b.diff_id[7..]).display().to_string();
    let adir = layers.join(&a.diff_id[7..]).display().to_string();
    lab.ok(&["up", &name, "--layer", &bdir, "--layer", &adir, "--", "/bin/busybox", "sleep", "1000"]);
    let o = lab.run(&["image", "rm", "imgtest/b:1"]);
    assert!(!o.status.success() && text(&o).contains(&format!("container {name} uses")), "{}", text(&o));
    assert!(Path::new(&bdir).is_dir());
    lab.ok(&["down", "--timeout", "1", &name]);
    lab.ok(&["image", "rm", "imgtest/b:1"]);
    assert!(!Path::new(&bdir).exists(), "b's own layer stayed");
    assert!(Path::new(&adir).is_dir(), "a's layer went, but a still uses it");
    assert!(!ls(&lab).contains("imgtest/b:1"));
    // Leftovers of an interrupted run go at prune: a partial blob, a temporary layer dir.
    fs::write(lab.state_dir.join("images/blobs/sha256/.partial-0000"), b"x").unwrap();
    fs::create_dir(layers.join(".tmp-0000")).unwrap();
    lab.ok(&["image", "prune"]);
    assert!(!layers.join(".tmp-0000").exists() && !lab.state_dir.join("images/blobs/sha256/.partial-0000").exists());
    assert!(Path::new(&adir).is_dir());
    lab.ok(&["image", "rm", "docker.io/imgtest/a:1"]);
    let left: Vec<_> = fs::read_dir(lab.state_dir.join("images/blobs/sha256"))
        .unwrap()
        .chain(fs::read_dir(&layers).unwrap())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
