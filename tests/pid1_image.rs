//! The root filesystem and the container of pid1_restrict.rs and pid1_contain.rs:
//! a busybox-static lower layer under an overlay, init as PID 1 of fresh
//! namespaces. Each includes it with `mod pid1_image;` (after `mod dropin;`).
#![allow(dead_code)]

use std::fs;
use std::process::Command;

use lab_tests::TempDir;

use crate::dropin::{busybox_layer, init};

/// A container's directories: a busybox lower layer (with users and a /mnt), upper,
/// work and merge.
pub struct Image {
    pub t: TempDir,
}

impl Image {
    pub fn new(tag: &str) -> Image {
        let t = TempDir::new(tag);
        let lower = t.path("lower");
        busybox_layer(&lower);
        // /etc/passwd and /etc/group (root and nobody), an empty /mnt; no /dev (init --dev makes one).
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
            .unwrap();
        fs::write(lower.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        fs::create_dir_all(lower.join("mnt")).unwrap();
        for d in ["upper", "work", "merge"] {
            fs::create_dir_all(t.path(d)).unwrap();
        }
        Image { t }
    }

    /// `unshare ... init --lower ... --rootfs MERGE --hostname T FLAGS -- /bin/sh -c SCRIPT`,
    /// loopback up in the container's fresh network namespace.
    pub fn container(&self, flags: &[&str], script: &str) -> Command {
        let mut c = self.unshare();
        c.args(self.setup_flags()).args(flags).args(["--", "/bin/sh", "-c", script]);
        c
    }

    /// `unshare ... init` with no arguments yet.
    pub fn unshare(&self) -> Command {
        let mut c = Command::new("unshare");
        c.args(["-m", "-u", "-i", "-n", "-p", "-f", "--kill-child", "--propagation", "private"]);
        c.args(["/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]).arg(init());
        c.env_remove("RUST_LOG");
        c
    }

    pub fn setup_flags(&self) -> Vec<String> {
        let t = &self.t;
        ["--lower", &t.s("lower"), "--upper", &t.s("upper"), "--work", &t.s("work"), "--rootfs", &t.s("merge")]
            .into_iter()
            .chain(["--hostname", "T"])
            .map(String::from)
            .collect()
    }

    pub fn dir(&self) -> String {
        self.t.0.to_str().unwrap().to_string()
    }
}

/// Every containment flag, as host-setup's secure default passes them.
pub const ALL: &[&str] = &["--dev", "--mask-proc", "--cgroupns", "--restrict"];
