//! cgroups: the tutorial's section 4-1 ("RED Cgroup 생성"). One interface, two
//! hierarchies: v1 (one mount per controller, what the tutorial and this machine
//! have) and v2 (one unified tree, every current distro). Detected at run time.
//!
//! Every container gets `<hierarchy>/<parent>/<name>`; `parent` is a directory the
//! project owns (default `host-setup`), so nothing outside it is ever created,
//! written or removed (the root cgroup's `cgroup.subtree_control` on v2 aside:
//! what we enable there is journalled and undone, see subtree.rs).

pub mod blkio;
mod cpuset;
pub mod devices;
mod explicit;
mod explicit_v1;
mod explicit_v2;
pub mod live;
mod op;
pub mod subtree;
mod v1;
mod v2;

pub use explicit::explicit_ops;
pub use op::Op;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Result, SysContext};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The resource limits of one container. Swap is always off, as in the tutorial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU time the container may use per `cpu_period_us`: 40000/100000 = 40 % of one CPU.
    pub cpu_quota_us: u64,
    pub cpu_period_us: u64,
    /// Memory limit in bytes (the tutorial: 200 MiB = 209715200).
    pub memory_bytes: u64,
    /// Most processes (and threads) at once: a fork bomb stays inside. None: no limit.
    pub pids_max: Option<u64>,
    /// Only the devices of a minimal /dev may be opened (devices.rs).
    pub restrict_devices: bool,
}

impl Limits {
    /// The tutorial's: 40 % of a CPU, 200 MiB, and nothing else.
    pub const TUTORIAL: Limits = Limits {
        cpu_quota_us: 40_000,
        cpu_period_us: 100_000,
        memory_bytes: 200 << 20,
        pids_max: None,
        restrict_devices: false,
    };
}

/// Which cgroup hierarchy this host has.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// v1 (legacy, or hybrid with an empty cgroup2 at /sys/fs/cgroup/unified):
    /// the mount point of each controller we use.
    V1(v1::Mounts),
    /// v2: the unified hierarchy's mount point.
    V2(PathBuf),
}

/// Readings for `status` and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub oom_kills: u64,
    pub pids: u64,
}

impl Cgroups {
    /// Detect like youki and crun do: statfs("/sys/fs/cgroup") is cgroup2 → unified;
    /// anything else (tmpfs holding one mount per v1 controller, maybe a cgroup2
    /// "unified/" beside them) → the v1 code, which is what the controllers live in.
    pub fn detect() -> Result<Cgroups> {
        let st = nix::sys::statfs::statfs(CGROUP_ROOT).sys(|| format!("statfs {CGROUP_ROOT}"))?;
        if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            return Ok(Cgroups::V2(PathBuf::from(CGROUP_ROOT)));
        }
        Cgroups::v1_from_mountinfo(&crate::mountinfo::read()?)
    }

    /// The v1 layout that a /proc/self/mountinfo text describes.
    pub fn v1_from_mountinfo(text: &str) -> Result<Cgroups> {
        Ok(Cgroups::V1(v1::Mounts::from_mountinfo(text)?))
    }

    pub fn version(&self) -> u8 {
        match self {
            Cgroups::V1(_) => 1,
            Cgroups::V2(_) => 2,
        }
    }

    /// The container's cgroup directories (one per v1 hierarchy used, one on v2).
    pub fn dirs(&self, parent: &str, name: &str) -> Vec<PathBuf> {
        match self {
            Cgroups::V1(m) => m.dirs(parent, name),
            Cgroups::V2(root) => vec![root.join(parent).join(name)],
        }
    }

    /// Check that every controller we need is there, before anything is changed.
    pub fn check(&self) -> Result<()> {
        match self {
            Cgroups::V1(m) => m.check(),
            Cgroups::V2(root) => v2::check(root),
        }
    }

    /// What the cgroups step does for container `name` under `parent`: make its
    /// directories and write its limits (the tutorial's 4-1 1)-2)), as ops that
    /// op.rs runs and renders.
    pub fn ops(&self, parent: &str, name: &str, limits: &Limits) -> Vec<Op> {
        match self {
            Cgroups::V1(m) => m.ops(parent, name, limits),
            Cgroups::V2(root) => v2::ops(root, parent, name, limits),
        }
    }

    /// The file whose "oom_kill" line counts the container's OOM kills
    /// (memory.oom_control on v1, memory.events on v2), as `usage` reads it.
    pub fn oom_file(&self, dirs: &[PathBuf]) -> Option<PathBuf> {
        match self {
            Cgroups::V1(m) => m.oom_file(dirs),
            Cgroups::V2(_) => dirs.first().map(|d| d.join("memory.events")),
        }
    }

    pub fn usage(&self, dirs: &[PathBuf]) -> Usage {
        match self {
            Cgroups::V1(m) => m.usage(dirs),
            Cgroups::V2(_) => dirs.first().map(|d| v2::usage(d)).unwrap_or_default(),
        }
    }
}

/// Pids in a cgroup directory (host pids: we read it from the host's pid namespace).
pub fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The file a process writes "0" into to join cgroup `dir`, opened for writing:
/// v1's `tasks` (the writing thread alone: without the global threadgroup lock,
/// whose first taking waits an RCU grace period; for a single-threaded writer it
/// is the same move as cgroup.procs), else `cgroup.procs` (v2). init does the same
/// (init/src/join.rs).
pub fn join_file(dir: &Path) -> Result<(fs::File, PathBuf)> {
    let tasks = dir.join("tasks");
    let procs = match fs::File::options().write(true).open(&tasks) {
        Ok(f) => return Ok((f, tasks)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir.join("cgroup.procs"),
        Err(e) => return Err(e).sys(|| format!("open {}", tasks.display())),
    };
    let f = fs::File::options().write(true).open(&procs).sys(|| format!("open {}", procs.display()))?;
    Ok((f, procs))
}

/// Remove one cgroup directory of a container. A cgroup can only be removed once
/// it has no processes (EBUSY until then; the last ones may still be exiting after
/// a SIGKILL), so this retries for up to `wait`. Ok(false) if it was not there.
pub fn remove(dir: &Path, wait: Duration) -> Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => {
                log::debug!("rmdir {}", dir.display());
                return Ok(true);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                // v2 tells when the last process has left (cgroup.events); v1 is polled.
                match v2::populated(dir) {
                    Some(true) => {
                        log::debug!("rmdir {}: EBUSY, waiting for cgroup.events: populated 0", dir.display());
                        v2::wait_until_empty(dir, deadline);
                    }
                    _ => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            Err(e) => {
                let left = procs(dir);
                let err = Err::<(), _>(e).sys(|| format!("rmdir {}", dir.display())).unwrap_err();
                return Err(match (left.is_empty(), v2::populated(dir)) {
                    (false, _) => err.hint(format!("processes still in it after {} s: {left:?}", wait.as_secs())),
                    (true, Some(true)) => err.hint(format!(
                        "still populated after {} s (cgroup.events): processes in a child cgroup",
                        wait.as_secs()
                    )),
                    (true, Some(false)) => err.hint("it has child cgroups"),
                    (true, None) => err,
                });
            }
        }
    }
}

/// Remove the project's parent cgroup directory if no container uses it any more.
/// Another host-setup may be creating a container in it right now: then rmdir
/// fails with EBUSY/ENOTEMPTY and the parent simply stays.
pub fn remove_parent_if_empty(parent_dir: &Path) {
    match fs::remove_dir(parent_dir) {
        Ok(()) => log::debug!("rmdir {} (empty parent)", parent_dir.display()),
        Err(e) => log::debug!("keep {}: {e}", parent_dir.display()),
    }
}

/// The parent directories (one per hierarchy) of a container's cgroup dirs.
pub fn parents(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dirs.iter().filter_map(|d| d.parent().map(Path::to_path_buf)).collect();
    out.dedup();
    out
}

/// Validate a cgroup parent name: one directory level of [A-Za-z0-9._-].
pub fn validate_parent(parent: &str) -> Result<()> {
    let ok = !parent.is_empty()
        && parent.len() <= 64
        && parent != "."
        && parent != ".."
        && parent.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(crate::usage!(
            "invalid cgroup parent {parent:?}: use one directory name of letters, digits, '.', '_' or '-' (e.g. host-setup)"
        ))
    }
}

/// mkdir that is fine if the directory is already there.
pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            log::debug!("mkdir {}", dir.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).sys(|| format!("mkdir {}", dir.display())),
    }
}

/// The directories strictly between `top` (a hierarchy's mount point) and the
/// cgroup `dir` that do not exist now, top first: the ones an OCI container's
/// nested cgroupsPath makes, so its journal can take them away again. A parent
/// that was there belongs to someone else (the engine: containerd's namespace,
/// a Kubernetes pod) and is never removed.
pub fn missing_ancestors(top: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| *a != top && a.starts_with(top))
        .filter(|a| !a.exists())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// mkdir -p: the parents first, those there already fine.
pub(crate) fn mkdir_all(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(p) = dir.parent() {
        mkdir_all(p)?;
    }
    mkdir(dir)
}

/// Write one value into a cgroup control file (`echo 40000 > cpu.cfs_quota_us`).
fn write(path: &Path, value: &str) -> Result<()> {
    log::debug!("echo {value} > {}", path.display());
    let mut f = fs::OpenOptions::new().write(true).open(path).sys(|| format!("open {}", path.display()))?;
    f.write_all(value.as_bytes()).sys(|| format!("write {value} to {}", path.display()))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.events, memory.oom_control, cpu.stat): the value of `key`.
pub fn keyed_u64(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_names() {
        assert!(validate_parent("host-setup").is_ok());
        assert!(validate_parent("hs-test.1_2").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(65)] {
            let e = validate_parent(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn keyed_values() {
        let dir = std::env::temp_dir().join(format!("cg-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("memory.events");
        fs::write(&f, "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n").unwrap();
        assert_eq!(keyed_u64(&f, "oom_kill"), Some(1));
        assert_eq!(keyed_u64(&f, "oom"), Some(2));
        assert_eq!(keyed_u64(&f, "nope"), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn join_file_prefers_tasks() {
        let dir = std::env::temp_dir().join(format!("cg-join-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let e = join_file(&dir).unwrap_err();
        assert!(e.to_string().contains("cgroup.procs") && e.to_string().contains("ENOENT"), "{e}");
        fs::write(dir.join("cgroup.procs"), "").unwrap();
        assert_eq!(join_file(&dir).unwrap().1, dir.join("cgroup.procs"), "v2: no tasks file");
        fs::write(dir.join("tasks"), "").unwrap();
        assert_eq!(join_file(&dir).unwrap().1, dir.join("tasks"), "v1: tasks");
        fs::remove_dir_all(&dir).unwrap();
    }
}
