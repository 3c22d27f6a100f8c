//! cgroup pieces against the real kernel, outside a container.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use lab_tests::{require_root, text};

/// A cgroup v2 directory of the test's own: on a v2 host under /sys/fs/cgroup, on
/// a hybrid host (like the project's machine) under its cgroup2 mount.
struct V2Dir(PathBuf);

impl V2Dir {
    fn new(tag: &str) -> V2Dir {
        let root = if nix::sys::statfs::statfs("/sys/fs/cgroup").unwrap().filesystem_type()
            == nix::sys::statfs::CGROUP2_SUPER_MAGIC
        {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            PathBuf::from("/sys/fs/cgroup/unified")
        };
        assert!(root.join("cgroup.procs").exists(), "no cgroup2 hierarchy at {}", root.display());
        let dir = root.join(format!("hs-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        V2Dir(dir)
    }
}

impl Drop for V2Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A node of a block device the host can open, made in a temp dir.
struct DiskNode(PathBuf);

impl DiskNode {
    fn new() -> DiskNode {
        let (maj, min) = lab_tests::openable_block_device();
        let dir = std::env::temp_dir().join(format!("hs-test-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let node = dir.join("disk");
        let dev = nix::sys::stat::makedev(maj as u64, min as u64);
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
        nix::sys::stat::mknod(&node, nix::sys::stat::SFlag::S_IFBLK, mode, dev).unwrap();
        DiskNode(node)
    }
}

impl Drop for DiskNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// `sh -c line`, in the cgroup `dir` if given.
fn sh_in(dir: Option<&PathBuf>, line: &str) -> std::process::Output {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", line]);
    if let Some(d) = dir {
        let procs = d.join("cgroup.procs");
        unsafe {
            c.pre_exec(move || std::fs::write(&procs, "0"));
        }
    }
    c.output().unwrap()
}

#[test]
fn the_v2_device_filter_loads_and_denies_block_devices() {
    require_root();
    let cg = V2Dir::new("devices");
    let disk = DiskNode::new();
    host_setup::cgroup::devices::attach_v2(&cg.0).expect("the kernel accepts the device filter");
    let line = format!("exec 3</dev/null && echo null-ok; exec 4<{} && echo disk-opened; true", disk.0.display());
    // Outside the cgroup the node opens (so the filter is what stops it inside).
    let o = sh_in(None, &line);
    assert!(String::from_utf8_lossy(&o.stdout).contains("disk-opened"), "{}", text(&o));
    let o = sh_in(Some(&cg.0), &line);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("null-ok"), "/dev/null stays usable: {}", text(&o));
    assert!(!out.contains("disk-opened"), "the host's disk must not open: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not permitted"), "{}", text(&o));
}
