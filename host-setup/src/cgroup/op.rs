//! What the cgroups step does to the cgroup tree, as data: v1.rs and v2.rs each
//! list their ops for a container (`Cgroups::ops`), and this one place runs them,
//! renders them as the tutorial's shell commands (`--explain`), and says which
//! directory each one makes (journalled before it is made, removed on `down`).

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{blkio, cpuset, devices, mkdir, mkdir_all, subtree, v2, write};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// v2: `echo '+cpu +memory +pids' > DIR/cgroup.subtree_control` in a cgroup not
    /// ours (the hierarchy's root), those not enabled yet, claimed for the
    /// container cgroup `user` and given back by the last user (subtree.rs).
    Enable { dir: PathBuf, user: PathBuf, controllers: Vec<&'static str> },
    /// `mkdir DIR`, its parent (the project's own cgroup) first if it is not there.
    /// On v2, first `echo '+cpu +memory +pids' > D/cgroup.subtree_control` for
    /// each D of `enable_in` (the parent: ours, it goes with its rmdir).
    Mkdir { dir: PathBuf, enable_in: Vec<PathBuf>, controllers: Vec<&'static str> },
    /// v1 cpuset: `mkdir -p DIR` under the hierarchy's `top`. A new cpuset cgroup
    /// starts with empty cpuset.cpus and cpuset.mems, and no task may join it
    /// (ENOSPC) until both are set: each dir made here gets its parent's values
    /// (cpuset.go's ensureParent in runc); a dir that was there is left as it is.
    MkdirCpuset { top: PathBuf, dir: PathBuf },
    /// `mkdir DIR`: a parent of an OCI container's nested cgroupsPath (`a/b/ID`)
    /// that was not there at plan time, so this container makes it (journalled as
    /// `CgroupAncestor`, removed on delete if no other cgroup is in it by then).
    /// Under the v1 cpuset hierarchy `cpuset_top`, filled from its parent.
    MkdirAncestor { dir: PathBuf, cpuset_top: Option<PathBuf> },
    /// `echo VALUE > FILE`; with `if_exists`, only where the kernel has FILE
    /// (memory.memsw.* and memory.swap.max exist only with swap accounting).
    Write { file: PathBuf, value: String, if_exists: bool },
    /// v2 has no devices controller: load the eBPF device filter (devices.rs) and
    /// attach it to DIR.
    DeviceFilter(PathBuf),
    /// `echo VALUE > F` into the first of `files` the kernel has (blkio.weight or
    /// blkio.bfq.weight: only the block scheduler's own); none is an error naming
    /// `what`, the config.json path (blkio.rs).
    WriteAny { files: Vec<PathBuf>, value: String, what: &'static str },
}

impl Op {
    pub fn write(dir: &Path, file: &str, value: impl ToString) -> Op {
        Op::Write { file: dir.join(file), value: value.to_string(), if_exists: false }
    }

    /// The cgroup directory this op makes, if any.
    pub fn makes(&self) -> Option<&Path> {
        match self {
            Op::Mkdir { dir, .. } | Op::MkdirCpuset { dir, .. } => Some(dir),
            _ => None,
        }
    }

    pub fn run(&self) -> Result<()> {
        match self {
            Op::Enable { dir, user, controllers } => subtree::enable(dir, user, controllers),
            Op::MkdirCpuset { top, dir } => cpuset::mkdir(top, dir),
            Op::MkdirAncestor { dir, cpuset_top: Some(top) } => cpuset::mkdir(top, dir),
            Op::MkdirAncestor { dir, cpuset_top: None } => mkdir(dir),
            Op::Mkdir { dir, enable_in, controllers } => {
                // A concurrent `down` of the last other container may rmdir the parent
                // between our mkdirs: then make it (and enable in it) again.
                let mut tries = 0;
                loop {
                    for d in enable_in {
                        mkdir(d)?;
                        v2::enable_for_children(d, controllers)?;
                    }
                    // An OCI cgroupsPath may be nested (`a/b/ID`): its parents too.
                    mkdir_all(dir.parent().expect("a cgroup dir has a parent"))?;
                    match mkdir(dir) {
                        Err(e) if e.errno() == Some(Errno::ENOENT) && tries < 3 => tries += 1,
                        other => return other,
                    }
                }
            }
            Op::Write { file, value, if_exists } => {
                if *if_exists && !file.exists() {
                    log::debug!("{} is absent: no swap accounting, nothing to limit", file.display());
                    return Ok(());
                }
                write(file, value).map_err(|e| cpuset::hint(e, file, value))
            }
            Op::DeviceFilter(dir) => devices::attach_v2(dir),
            Op::WriteAny { files, value, what } => match files.iter().find(|f| f.exists()) {
                Some(f) => write(f, value),
                None => {
                    let names: Vec<&str> = files.iter().filter_map(|f| f.file_name()?.to_str()).collect();
                    let dir = files.first().and_then(|f| f.parent()).unwrap_or(Path::new(""));
                    Err(blkio::missing(what, dir, &names))
                }
            },
        }
    }

    pub fn shell(&self) -> Vec<String> {
        match self {
            Op::Enable { dir, controllers, .. } => {
                let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
                vec![format!(
                    "echo '{}' > {}/cgroup.subtree_control   # those not on yet; down of the last container turns them off",
                    enable.join(" "),
                    dir.display()
                )]
            }
            Op::MkdirCpuset { top, dir } => cpuset::shell(top, dir),
            Op::MkdirAncestor { dir, cpuset_top: Some(top) } => cpuset::shell(top, dir),
            Op::MkdirAncestor { dir, cpuset_top: None } => {
                vec![format!("mkdir {}   # not there yet: ours, removed on delete if empty", dir.display())]
            }
            Op::Mkdir { dir, enable_in, controllers } => {
                let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
                let mut out: Vec<String> = enable_in
                    .iter()
                    .map(|d| {
                        format!("mkdir -p {0}; echo '{1}' > {0}/cgroup.subtree_control", d.display(), enable.join(" "))
                    })
                    .collect();
                out.push(format!("mkdir -p {}", dir.display()));
                out
            }
            Op::Write { file, value, if_exists } => {
                let v = if value.contains(' ') { format!("'{value}'") } else { value.clone() };
                vec![if *if_exists {
                    format!("[ -e {0} ] && echo {v} > {0}   # only with swap accounting", file.display())
                } else {
                    format!("echo {v} > {}", file.display())
                }]
            }
            Op::WriteAny { files, value, .. } => {
                let alts: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                vec![format!("echo '{value}' > {}   # the first of these the kernel has", alts.join(" | "))]
            }
            Op::DeviceFilter(dir) => {
                vec![format!(
                    "# bpf(BPF_PROG_LOAD) the device filter (allow: {}), bpf(BPF_PROG_ATTACH) to {} as BPF_CGROUP_DEVICE",
                    devices::ALLOWED.iter().map(|r| r.v1_line()).collect::<Vec<_>>().join(", "),
                    dir.display()
                )]
            }
        }
    }
}
