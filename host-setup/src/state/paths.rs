//! Where everything lives, from `--state-dir`.

use std::fs;
use std::path::PathBuf;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/host-setup";
pub const DEFAULT_CGROUP_PARENT: &str = "host-setup";

#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn new(state_dir: impl Into<PathBuf>) -> Paths {
        Paths { state_dir: state_dir.into() }
    }
    pub fn layers(&self) -> PathBuf {
        self.state_dir.join("layers")
    }
    pub fn containers(&self) -> PathBuf {
        self.state_dir.join("containers")
    }
    pub fn container(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }
    pub fn journal(&self, name: &str) -> PathBuf {
        self.containers().join(format!("{name}.journal"))
    }
    pub fn lock(&self, name: &str) -> PathBuf {
        self.containers().join(format!("{name}.lock"))
    }
    /// The overlay's upper dir: the tutorial's /redfs/container.
    pub fn upper(&self, name: &str) -> PathBuf {
        self.container(name).join("upper")
    }
    /// With --userns: the mount point of layer `i` (topmost 0) inside init's namespace.
    pub fn lower(&self, name: &str, i: usize) -> PathBuf {
        self.container(name).join("lower").join(i.to_string())
    }
    /// An empty dir: the lower layer under init's dir in init's read-only image
    /// (init_image.rs; overlay needs two lower layers when it has no upper).
    pub fn image(&self, name: &str) -> PathBuf {
        self.container(name).join("image")
    }
    pub fn work(&self, name: &str) -> PathBuf {
        self.container(name).join("work")
    }
    /// Where the overlay is mounted and pivot_root goes: the tutorial's /redfs/merge.
    pub fn merge(&self, name: &str) -> PathBuf {
        self.container(name).join("merge")
    }
    /// Bridge networks: networks/NAME/ holds network.json, its journal and leases/.
    pub fn networks(&self) -> PathBuf {
        self.state_dir.join("networks")
    }
    pub fn network(&self, name: &str) -> PathBuf {
        self.networks().join(name)
    }
    pub fn console(&self, name: &str) -> PathBuf {
        self.container(name).join("console.log")
    }

    /// Names of the containers that have a journal, sorted.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.containers())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".journal").map(str::to_string))
            .collect();
        names.sort();
        names
    }
}
