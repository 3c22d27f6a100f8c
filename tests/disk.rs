//! `--disk SIZE`: what a container writes is limited. Its upper dir is a tmpfs of
//! that size of its own (this kernel has no project quotas; host-setup/src/disk.rs),
//! so a write past it fails with ENOSPC and the state dir's filesystem does not
//! grow — measured on a state dir that is an ext4 filesystem of the test's own (a
//! sparse image on a loop device), where a container without --disk makes it grow
//! by all it writes. With a user namespace (the default) and without; `status`,
//! `status --json` and `verify` show the limit; `down` leaves no mount behind; a
//! --disk the container cannot have is refused before anything is made.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{stdout, text, Lab, TempDir};

/// A lab whose state dir may be a fresh ext4 filesystem of its own (a sparse
/// image in a temp dir, mounted through a loop device). Fields drop in order: the
/// containers go down first; then whatever is still mounted under the state dir
/// (a test that failed half-way) is unmounted, the filesystem with it (which frees
/// the loop device), and the state dir and the image are removed.
struct DiskLab {
    lab: Lab,
    _sweep: Sweep,
}

struct Sweep {
    state_dir: PathBuf,
    _img: Option<TempDir>,
}

impl DiskLab {
    fn new() -> DiskLab {
        let lab = Lab::new();
        DiskLab { _sweep: Sweep { state_dir: lab.state_dir.clone(), _img: None }, lab }
    }

    fn on_own_filesystem() -> DiskLab {
        let mut d = DiskLab::new();
        let img = TempDir::new("disk-img");
        let file = img.s("fs.img");
        sh(&["truncate", "-s", "512M", &file]);
        sh(&["mkfs.ext4", "-q", &file]);
        std::fs::create_dir_all(&d.lab.state_dir).unwrap();
        d._sweep._img = Some(img);
        sh(&["mount", "-o", "loop", &file, d.lab.state_dir.to_str().unwrap()]);
        d
    }

    /// Bytes in use on the state dir's filesystem (statvfs).
    fn used(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.lab.state_dir).unwrap();
        (s.blocks() - s.blocks_free()) * s.fragment_size()
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        let mut left = mounts_under(&self.state_dir);
        left.reverse();
        if self._img.is_some() {
            left.push(self.state_dir.display().to_string());
        }
        for m in left {
            let o = Command::new("umount").args(["-l", &m]).output().unwrap();
            if !o.status.success() {
                eprintln!("umount -l {m}: {}", text(&o));
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn sh(argv: &[&str]) {
    let o = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(o.status.success(), "{}: {}", argv.join(" "), text(&o));
}

/// A layer with busybox's dd, rm and sync on top of the built-in ones.
fn tools_layer() -> TempDir {
    let dir = TempDir::new("disk-layer");
    std::fs::create_dir(dir.path("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.path("bin/busybox")).expect("busybox-static is missing");
    for a in ["dd", "sync"] {
        symlink("busybox", dir.path("bin").join(a)).unwrap();
    }
    dir
}

/// Mount points below `dir` (not `dir` itself: some tests give the state dir a
/// filesystem of its own), oldest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    lab_tests::mounts_under(dir).into_iter().filter(|m| Path::new(m) != dir).collect()
}

/// `dd` of 40M into / of the container: (its success, its output).
fn write_40m(lab: &Lab, name: &str) -> (bool, String) {
    let o = lab.exec(name, &["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=40 && sync"]);
    (o.status.success(), text(&o))
}

#[test]
fn writes_past_the_disk_limit_fail_and_the_state_dirs_filesystem_does_not_grow() {
    let d = DiskLab::on_own_filesystem();
    let (lab, layer) = (&d.lab, tools_layer());
    let limit: u64 = 20 << 20;

    // Without --disk the same write lands on the state dir's filesystem.
    let free = lab.name("free");
    lab.ok(&["up", &free, "--net", "none", "--layer", &layer.s("")]);
    let before = d.used();
    let (ok, out) = write_40m(lab, &free);
    assert!(ok, "without --disk, 40M fit: {out}");
    let grew = d.used() - before;
    assert!(grew >= 40 << 20, "without --disk the state dir's filesystem grows by what is written: {grew}");
    lab.ok(&["down", &free]);

    for (suffix, userns) in [("u", None), ("n", Some("--no-userns"))] {
        let name = lab.name(suffix);
        let mut up = vec!["up", &name, "--net", "none", "--disk", "20M", "--layer", layer.0.to_str().unwrap()];
        up.extend(userns);
        lab.ok(&up);
        let before = d.used();
        let (ok, out) = write_40m(lab, &name);
        assert!(!ok && out.contains("No space left on device"), "{name}: dd past --disk 20M: {out}");
        let grew = d.used().saturating_sub(before);
        assert!(grew < 1 << 20, "{name}: the state dir's filesystem grew by {grew} bytes");

        // The kernel's size and use of the container's filesystem.
        let v: serde_json::Value = serde_json::from_slice(&lab.ok(&["status", "--json", &name]).stdout).unwrap();
        let disk = &v["containers"][0]["disk"];
        assert_eq!(disk["saved_bytes"].as_u64(), Some(limit), "{disk}");
        assert_eq!(disk["limit_bytes"].as_u64(), Some(limit), "{disk}");
        assert_eq!(disk["filesystem"], "tmpfs");
        let used = disk["used_bytes"].as_u64().unwrap();
        assert!(used > limit - (1 << 20) && used <= limit, "{name}: {used} bytes used of {limit}");
        let s = stdout(&lab.ok(&["status", &name]));
        assert!(s.contains("disk      20M on a tmpfs of its own, "), "{s}");

        let o = lab.ok(&["verify", "--check", "disk", &name]);
        let line = stdout(&o);
        assert!(line.contains(" disk ") && line.contains("PASS") && line.contains("/disk/upper"), "{line}");
        // Behind host-setup's back, the limit raised: verify and status say so.
        let mount = lab.state_dir.join("containers").join(&name).join("disk");
        sh(&["mount", "-o", "remount,size=40m", mount.to_str().unwrap()]);
        let o = lab.run(&["verify", "--check", "disk", &name]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(stdout(&o).contains("FAIL  tmpfs of 40M, spec 20M"), "{}", text(&o));
        assert!(stdout(&lab.ok(&["status", &name])).contains("disk      20M (kernel: 40M) on a tmpfs"));
        sh(&["mount", "-o", "remount,size=20m", mount.to_str().unwrap()]);
        assert!(lab.run(&["verify", "--check", "disk", &name]).status.success());

        // Removing the file gives the space back.
        let o = lab.exec(&name, &["rm", "/big"]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&lab.ok(&["status", "--json", &name]).stdout).unwrap();
        let used = v["containers"][0]["disk"]["used_bytes"].as_u64().unwrap();
        assert!(used < 1 << 20, "{name}: after rm, {used} bytes used");

        lab.ok(&["down", &name]);
        assert_eq!(mounts_under(&lab.state_dir), Vec::<String>::new(), "{name}: mounts left after down");
        assert!(!lab.state_dir.join("containers").join(&name).exists(), "{name}: its directory is left");
        let own_fs = format!(" {} ext4 ", lab.state_dir.display());
        let left: Vec<String> = lab.leftovers(&[&name]).into_iter().filter(|l| !l.contains(&own_fs)).collect();
        assert_eq!(left, Vec::<String>::new(), "{name}: left after down");
    }
}

#[test]
fn a_disk_limit_the_container_cannot_have_is_refused_and_explain_makes_nothing() {
    let d = DiskLab::new();
    let lab = &d.lab;
    let name = lab.name("r");
    for (disk, want) in [
        ("200M", "--disk 200M is not below --memory 200M"),
        ("20Q", "invalid disk size \"20Q\""),
        ("512k", "is too small"),
    ] {
        let o = lab.run(&["up", &name, "--net", "none", "--disk", disk]);
        assert_eq!(o.status.code(), Some(2), "--disk {disk}: {}", text(&o));
        assert!(text(&o).contains(want), "--disk {disk}: {}", text(&o));
    }
    // --explain shows the mount and the overlay on it, and makes nothing either.
    let dir = lab.state_dir.join("containers").join(&name).join("disk");
    let explain = stdout(&lab.ok(&["up", &name, "--net", "none", "--disk", "20M", "--explain"]));
    let mount =
        format!("mount -t tmpfs -o nosuid,nodev,size=20971520,nr_inodes=5120,mode=0700 tmpfs {}", dir.display());
    assert!(explain.contains(&mount), "{explain}");
    assert!(explain.contains(&format!(",upperdir={0}/upper,workdir={0}/work", dir.display())), "{explain}");
    assert!(!lab.state_dir.join("containers").join(&name).exists());
    assert_eq!(mounts_under(&lab.state_dir), Vec::<String>::new());
    assert_eq!(lab.leftovers(&[&name]), Vec::<String>::new());
}

#[test]
fn run_in_the_foreground_gets_the_limit_and_leaves_nothing() {
    let (d, layer) = (DiskLab::new(), tools_layer());
    let lab = &d.lab;
    let name = lab.name("f");
    let o = lab.run(&[
        "run",
        &name,
        "--net",
        "none",
        "--disk",
        "8M",
        "--layer",
        &layer.s(""),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1M",
        "count=16",
    ]);
    assert!(!o.status.success() && text(&o).contains("No space left on device"), "{}", text(&o));
    assert_eq!(mounts_under(&lab.state_dir), Vec::<String>::new());
    assert_eq!(lab.leftovers(&[&name]), Vec::<String>::new());
}

#[test]
fn a_disk_step_that_fails_or_is_killed_leaves_nothing() {
    let d = DiskLab::new();
    let lab = &d.lab;
    let name = lab.name("k");
    for when in ["before", "recorded", "after"] {
        for how in ["fail", "kill"] {
            let fault = format!("disk:{when}:{how}");
            let o = lab
                .cmd(&["up", &name, "--net", "none", "--disk", "20M"])
                .env("HOST_SETUP_FAULT", &fault)
                .output()
                .unwrap();
            assert!(!o.status.success(), "{fault}: {}", text(&o));
            if how == "kill" {
                if when == "after" {
                    assert_eq!(mounts_under(&lab.state_dir).len(), 1, "{fault}: the tmpfs is there to undo");
                }
                lab.ok(&["down", &name]);
            }
            assert_eq!(mounts_under(&lab.state_dir), Vec::<String>::new(), "{fault}");
            assert_eq!(lab.leftovers(&[&name]), Vec::<String>::new(), "{fault}");
        }
    }
}

#[test]
fn a_pair_goes_down_with_its_disk_while_the_veth_is_deleted() {
    // down removes the container's directory on a thread of its own while the
    // veth's deletion waits for RCU: the tmpfs in it must be gone first.
    let d = DiskLab::new();
    let lab = &d.lab;
    let (a, b) = (lab.name("a"), lab.name("b"));
    lab.ok(&["up", &a, "--address", "11.11.11.2/24", "--iface", "veth0", "--peer", &b, "--disk", "20M"]);
    lab.ok(&["up", &b, "--address", "11.11.11.3/24", "--iface", "veth1", "--peer", &a, "--disk", "20M"]);
    assert_eq!(mounts_under(&lab.state_dir).len(), 2, "two tmpfs");
    lab.ok(&["down", &a, &b]);
    assert_eq!(mounts_under(&lab.state_dir), Vec::<String>::new());
    assert_eq!(lab.leftovers(&[&a, &b]), Vec::<String>::new());
}
