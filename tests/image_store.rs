//! The image store and unpacker (host-setup/src/image/): archives built here,
//! imported with `host-setup image import`, the unpacked layers checked file by
//! file against Debian's `umoci unpack` (the OCI reference implementation), run
//! as a container's layers with and without a user namespace, and hostile
//! archives refused without a byte written outside the layer's dir.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{text, Lab, TempDir};
use sha2::{Digest as _, Sha256};

#[path = "image_store/build.rs"]
mod build;
use build::*;

const BIG: u64 = 100 << 20;

/// The test image: busybox-static and a tree exercising what unpacking must
/// keep, in three layers (gzip, `second`, plain), bottom-up. Debian's umoci
/// (0.4) reads no zstd layers: the umoci comparison uses gzip for the second.
fn rich_image(l: &mut Layout, big: bool, second: Comp) -> Vec<Desc> {
    let busybox = fs::read("/bin/busybox").expect("busybox-static is installed");
    let l1 = l.layer(Comp::Gzip, |t| {
        dir(t, "bin", 0o755, 0, 0);
        file(t, "bin/busybox", &busybox, 0o755);
        link(t, tar::EntryType::Symlink, "bin/sh", "busybox");
        dir(t, "etc", 0o755, 0, 0);
        file(t, "etc/deleted-file", b"must not be seen\n", 0o644);
        file(t, "etc/kept", b"layer 1\n", 0o644);
        dir(t, "opq", 0o755, 0, 0);
        file(t, "opq/old1", b"hidden by the opaque dir\n", 0o644);
        dir(t, "opq/sub", 0o700, 12, 34);
        file(t, "opq/sub/old2", b"hidden too\n", 0o600);
        dir(t, "private", 0o700, 1000, 1000);
        file(t, "private/secret", b"s\n", 0o600);
        file(t, "setuid", b"#!/bin/sh\n", 0o4755);
        file(t, "setgid", b"#!/bin/sh\n", 0o2711);
        file_owned(t, "owned", b"o\n", 0o640, 1234, 5678, &[]);
        file_owned(t, "xattrs", b"x\n", 0o644, 0, 0, &[("user.test", b"hello"), ("trusted.test", b"t\x00\x01")]);
        file(t, "hl-a", b"hard linked\n", 0o644);
        link(t, tar::EntryType::Link, "hl-b", "hl-a");
        link(t, tar::EntryType::Symlink, "link-rel", "etc/kept");
        link(t, tar::EntryType::Symlink, "link-abs", "/etc/kept");
        link(t, tar::EntryType::Symlink, "dangling", "/nowhere/at/all");
        fifo(t, "fifo");
        if big {
            dir(t, "data", 0o755, 0, 0);
            file_from(t, "data/big", BIG, SparseIsh { pos: 0, size: BIG });
        }
    });
    let l2 = l.layer(second, |t| {
        file(t, "etc/.wh.deleted-file", b"", 0o644);
        file(t, "opq/.wh..wh..opq", b"", 0o644);
        file(t, "opq/new", b"layer 2\n", 0o644);
        file(t, "etc/kept", b"layer 2 replaced it\n", 0o644);
        file(t, "etc/added", b"added in layer 2\n", 0o644);
        dir(t, "l2", 0o755, 0, 0);
        file(t, "l2/x", b"x2\n", 0o644);
        link(t, tar::EntryType::Link, "l2/y", "l2/x");
    });
    let l3 = l.layer(Comp::Plain, |t| {
        file(t, ".wh.private", b"", 0o644);
        file(t, "implicit/dir/file", b"parents made as tar does\n", 0o644);
        file(t, "somefile", b"hello from the image\n", 0o644);
    });
    vec![l1, l2, l3]
}

/// type, mode, owner, size, nlink, content hash, link target, xattrs: one line per path.
fn walk(root: &Path, skip_xattr: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let mut line = format!("uid={} gid={}", m.uid(), m.gid());
        if ft.is_dir() {
            line = format!("dir mode={:o} {line}", m.mode() & 0o7777);
            for e in fs::read_dir(&p).unwrap() {
                todo.push(rel.join(e.unwrap().file_name()));
            }
        } else if ft.is_symlink() {
            line = format!("symlink -> {} {line}", fs::read_link(&p).unwrap().display());
        } else if ft.is_file() {
            let mut h = Sha256::new();
            let mut f = fs::File::open(&p).unwrap();
            let mut buf = vec![0; 1 << 20];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let sum: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
            line =
                format!("file mode={:o} size={} nlink={} sha256={sum} {line}", m.mode() & 0o7777, m.len(), m.nlink());
        } else {
            let kind = if ft.is_fifo() { "fifo" } else { "special" };
            line = format!("{kind} mode={:o} rdev={} {line}", m.mode() & 0o7777, m.rdev());
        }
        let mut names = host_setup::sys::xattr::list(&p).unwrap();
        names.sort();
        for n in names.iter().filter(|n| !n.to_string_lossy().starts_with(skip_xattr)) {
            let v = host_setup::sys::xattr::get(&p, n).unwrap();
            line += &format!(" {}={:?}", n.to_string_lossy(), String::from_utf8_lossy(&v));
        }
        out.insert(format!("/{}", rel.display()), line);
    }
    out
}

/// `f` on the read-only overlay of `lowers` (topmost first), mounted in a mount
/// namespace of one thread's own, so nothing of it is seen by the host.
fn on_overlay<T: Send>(lowers: &[PathBuf], extra: &str, f: impl FnOnce(&Path) -> T + Send) -> T {
    use nix::mount::{mount, umount, MsFlags};
    let mp = TempDir::new("merged");
    let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let opts = format!("lowerdir={}{extra}", lowerdir.join(":"));
    std::thread::scope(|s| {
        s.spawn(|| {
            // unshare(CLONE_NEWNS) in a thread: that thread alone gets the namespace.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare");
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
            mount(Some("overlay"), &mp.0, Some("overlay"), MsFlags::MS_RDONLY, Some(opts.as_str()))
                .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
            let r = f(&mp.0);
            umount(&mp.0).unwrap();
            r
        })
        .join()
        .unwrap()
    })
}

fn layer_dirs(lab: &Lab, layers: &[Desc]) -> Vec<PathBuf> {
    // topmost first, as overlayfs and --layer take them
    layers.iter().rev().map(|l| lab.state_dir.join("images/layers/sha256").join(&l.diff_id[7..])).collect()
}

fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut d = vec![];
    for (k, v) in a {
        match b.get(k) {
            Some(w) if w == v => {}
            Some(w) => d.push(format!("{k}:\n  ours:  {v}\n  umoci: {w}")),
            None => d.push(format!("{k}: only ours: {v}")),
        }
    }
    d.extend(b.iter().filter(|(k, _)| !a.contains_key(*k)).map(|(k, v)| format!("{k}: only umoci's: {v}")));
    d
}

#[test]
fn unpacked_tree_matches_umoci() {
    let lab = Lab::new();
    let tmp = TempDir::new("umoci");
    let mut l = Layout::new(&tmp.path("layout"));
    let layers = rich_image(&mut l, true, Comp::Gzip);
    let m = l.image(&layers, "amd64", None);
    l.index(&[(&m, Some("rich"), None)]);
    let t0 = std::time::Instant::now();
    lab.ok(&["image", "import", &tmp.s("layout"), "--name", "imgtest/rich:1"]);
    eprintln!("import with a 100 MB file: {:?}", t0.elapsed());
    let o = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:rich", tmp.s("layout")), &tmp.s("bundle")])
        .output()
        .unwrap();
    assert!(o.status.success(), "umoci unpack: {}", text(&o));
    let theirs = walk(&tmp.path("bundle/rootfs"), "\0");
    assert!(theirs.contains_key("/data/big") && !theirs.contains_key("/etc/deleted-file"), "{theirs:#?}");
    let dirs = layer_dirs(&lab, &layers);
    // Without userxattr overlayfs reads trusted.overlay.* and hides it; the
    // user.overlay.opaque we also set (for userns containers) shows: left out.
    let plain = on_overlay(&dirs, "", |mp| walk(mp, "user.overlay."));
    let d = diff(&plain, &theirs);
    assert!(d.is_empty(), "overlay of our layers vs umoci's rootfs:\n{}", d.join("\n"));
    // With userxattr (as in a user namespace) it is the other way round.
    let userx = on_overlay(&dirs, ",userxattr", |mp| walk(mp, "trusted.overlay."));
    let d = diff(&userx, &theirs);
    assert!(d.is_empty(), "overlay (userxattr) of our layers vs umoci's rootfs:\n{}", d.join("\n"));
    // The big file is stored with holes, not 100 MB of zeros.
    let big = dirs[2].join("data/big");
    assert!(fs::metadata(&big).unwrap().blocks() * 512 < 8 << 20, "{} is not sparse", big.display());
    // Unpacked once: a second import of the same layout unpacks nothing new.
    let before = fs::metadata(&dirs[0]).unwrap().ino();
    lab.ok(&["image", "import", &tmp.s("layout"), "--name", "imgtest/rich:2"]);
    assert_eq!(fs::metadata(&dirs[0]).unwrap().ino(), before);
    let ls = lab.ok(&["image", "ls"]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls.contains("docker.io/imgtest/rich:1")
            && ls.contains("docker.io/imgtest/rich:2")
            && ls.contains("2026-12-01T10:00:00Z"),
        "{ls}"
    );
}

#[test]
fn run_with_the_unpacked_layers() {
    let lab = Lab::new();
    let tmp = TempDir::new("runimg");
    let mut l = Layout::new(&tmp.path("layout"));
    let layers = rich_image(&mut l, false, Comp::Zstd);
    let m = l.image(&layers, "amd64", None);
    l.index(&[(&m, None, None)]);
    lab.ok(&["image", "import", &tmp.s("layout"), "--name", "imgtest/run:1"]);
    let dirs: Vec<String> = layer_dirs(&lab, &layers).iter().map(|p| p.display().to_string()).collect();
    let script = "cat /somefile; cat /etc/kept; echo /opq/*; test -e /etc/deleted-file && echo DELETED-FILE-SEEN; \
                  test -e /private && echo PRIVATE-SEEN; ls -ln /setuid /owned";
    for (suffix, userns) in [("u", None), ("n", Some("--no-userns"))] {
        let name = lab.name(suffix);
        let mut args = vec!["run", name.as_str()];
        args.extend(userns);
        for d in &dirs {
            args.extend(["--layer", d.as_str()]);
        }
        args.extend(["--", "/bin/busybox", "sh", "-c", script]);
        let o = lab.run(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", text(&o));
        let lines: Vec<&str> = out.lines().collect();
        // /opq/new alone: the opaque dir hides layer 1's old1 and sub.
        assert_eq!(lines[..3], ["hello from the image", "layer 2 replaced it", "/opq/new"], "{userns:?}: {}", text(&o));
        assert!(!out.contains("SEEN"), "{userns:?}: a whiteout did not hide a file: {out}");
        // The owners as the container sees them: 0 (its root) and 1234:5678,
        // the same inside a user namespace (the layer is mapped by an idmapped mount).
        assert!(out.contains("-rwsr-xr-x") && out.contains(" 1234 ") && out.contains(" 5678 "), "{userns:?}: {out}");
    }
    assert!(lab.leftovers(&[]).is_empty(), "{:?}", lab.leftovers(&[]));
}

#[path = "image_store/archives.rs"]
mod archives;
#[path = "image_store/hostile.rs"]
mod hostile;
