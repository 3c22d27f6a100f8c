//! One hsrun test's world, shared by the OCI suites: a state root (`--root`), a
//! cgroup parent and a temp dir of bundles, all named after the test's label and
//! a per-process tag. Drop deletes every container it named (`delete --force`),
//! then the cgroup parent in every hierarchy and the root.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::{bin, mounts_under, require_root, seq, TempDir};

/// Every cgroup hierarchy's mount point: v2's one (/sys/fs/cgroup itself), or v1's
/// one per controller (the dirs under /sys/fs/cgroup).
pub fn hierarchies() -> Vec<PathBuf> {
    let root = PathBuf::from("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root];
    }
    std::fs::read_dir(&root).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()
}

pub struct World {
    pub root: PathBuf,
    pub parent: String,
    pub dir: TempDir,
    ids: RefCell<Vec<String>>,
}

impl World {
    /// `label`: the test's own prefix (`/tmp/LABEL-TAG`, cgroup parent `LABEL-TAG`).
    pub fn new(label: &str) -> World {
        require_root();
        let tag = format!("{}-{}", std::process::id(), seq());
        World {
            root: PathBuf::from(format!("/tmp/{label}-{tag}")),
            parent: format!("{label}-{tag}"),
            dir: TempDir::new(label),
            ids: Default::default(),
        }
    }

    /// A new container id, deleted on drop.
    pub fn id(&self, s: &str) -> String {
        let id = format!("{s}-{}", seq());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("hsrun"));
        c.arg("--root").arg(&self.root).args(args).stdin(Stdio::null()).env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// What of container `id` is still on the host: its state (`containers/ID`,
    /// `ID.journal`, `ID.lock`), its cgroup in any hierarchy, and any mount under
    /// this world's root or bundles. Names are matched whole: `ctr-1` is not `ctr-14`.
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut left = vec![];
        for e in std::fs::read_dir(self.root.join("containers")).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == id || name.strip_prefix(id).is_some_and(|rest| rest.starts_with('.')) {
                left.push(e.path().display().to_string());
            }
        }
        for h in hierarchies() {
            let d = h.join(&self.parent).join(id);
            if d.exists() {
                left.push(d.display().to_string());
            }
        }
        left.extend(mounts_under(&self.root));
        left.extend(mounts_under(&self.dir.0));
        left
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        for h in hierarchies() {
            let _ = std::fs::remove_dir(h.join(&self.parent));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
