//! A container described in full by its caller instead of host-setup's defaults:
//! an OCI bundle's config.json today (src/oci/), an image run with `-v`, `-u`,
//! `-w`, `--read-only` tomorrow. The same steps read it: the root is a plain
//! directory (no layers, no overlay), the namespaces are new, joined by path or
//! the host's, the id maps are given (not taken from the pool), the cgroup path
//! and resources are given, and `inside` is what init does in the new root (sent
//! as records, contract_spec.rs).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::userns::IdMaps;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explicit {
    /// The root filesystem: a directory used as it is (init binds it).
    pub root: PathBuf,
    pub namespaces: Namespaces,
    /// A new user namespace's maps, as given (None: none, or one joined by path).
    #[serde(default)]
    pub id_map: Option<IdMaps>,
    /// The container's cgroup, relative to each hierarchy's root: `default/ID`.
    pub cgroup_path: String,
    /// hsrun --systemd-cgroup: that cgroup is this systemd unit's (cgroup_path is its cgroup).
    #[serde(default)]
    pub systemd: Option<crate::systemd::Unit>,
    #[serde(default)]
    pub resources: Resources,
    /// None: the UTS namespace keeps the name it was born with.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The process's environment, exactly (nothing of host-setup's own).
    #[serde(default)]
    pub env: Vec<String>,
    /// The process gets a terminal (a pty whose master goes to the caller).
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub inside: Inside,
    /// Hooks host-setup runs on the host, with the state on stdin.
    #[serde(default)]
    pub hooks: Hooks,
    /// The caller's fds 3..3+N reach the process as they are (`--preserve-fds N`).
    #[serde(default)]
    pub preserve_fds: u32,
}

/// One namespace: a new one, one joined by its path, or the host's (absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ns {
    #[default]
    New,
    Join(PathBuf),
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Namespaces {
    pub net: Ns,
    pub pid: Ns,
    pub ipc: Ns,
    pub uts: Ns,
    pub mount: Ns,
    pub cgroup: Ns,
    pub user: Ns,
}

impl Namespaces {
    /// The clone(2) flags of the namespaces made new at clone time (the net
    /// namespace is made by the netns step, the cgroup one by init, the user one
    /// by spawn.rs).
    pub fn clone_flags(&self) -> libc::c_int {
        let mut f = 0;
        for (ns, flag) in [
            (&self.mount, libc::CLONE_NEWNS),
            (&self.uts, libc::CLONE_NEWUTS),
            (&self.ipc, libc::CLONE_NEWIPC),
            (&self.pid, libc::CLONE_NEWPID),
        ] {
            if *ns == Ns::New {
                f |= flag;
            }
        }
        f
    }

    /// The namespaces joined by path at clone time: (path, CLONE_NEW*) (nsjoin.rs;
    /// the network namespace is entered by init, the user namespace is not joined).
    pub fn joins(&self) -> Vec<(PathBuf, libc::c_int)> {
        let all = [
            (&self.cgroup, libc::CLONE_NEWCGROUP),
            (&self.ipc, libc::CLONE_NEWIPC),
            (&self.uts, libc::CLONE_NEWUTS),
            (&self.pid, libc::CLONE_NEWPID),
            (&self.mount, libc::CLONE_NEWNS),
        ];
        all.into_iter()
            .filter_map(|(ns, flag)| match ns {
                Ns::Join(p) => Some((p.clone(), flag)),
                _ => None,
            })
            .collect()
    }
}

/// cgroup limits as the OCI runtime spec names them (cgroup.rs writes them as v1 or v2 files).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: Option<i64>,
    /// Memory plus swap (-1: unlimited).
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub pids: Option<i64>,
    pub devices: Vec<DeviceRule>,
    /// cgroup v2 files, written as given.
    pub unified: BTreeMap<String, String>,
    /// Realtime CPU time per period (v1's cpu.rt_runtime_us / cpu.rt_period_us).
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    /// v1's memory.kmem.tcp.limit_in_bytes (v2 has none: a warning).
    pub memory_kernel_tcp: Option<i64>,
    /// v1's memory.swappiness (0-100).
    pub memory_swappiness: Option<u64>,
    /// v1's memory.oom_control = 1: the container waits instead of being OOM-killed.
    pub disable_oom_killer: bool,
    pub block_io: BlockIo,
    /// Page size ("2MB") -> bytes: refused (cgroup/explicit.rs says why).
    pub hugepage_limits: Vec<(String, u64)>,
    /// `network.classID` / `priorities`: refused (cgroup/explicit.rs says why).
    pub net_class_id: Option<u32>,
    pub net_priorities: Vec<(String, u32)>,
}

/// runtime-spec's `linux.resources.blockIO` (cgroup/blkio.rs writes it as v1 or v2 files).
/// A weight of 0 is "not set" (Docker sends `"weight": 0` with every container).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockIo {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    pub weight_device: Vec<WeightDevice>,
    pub throttle_read_bps: Vec<Throttle>,
    pub throttle_write_bps: Vec<Throttle>,
    pub throttle_read_iops: Vec<Throttle>,
    pub throttle_write_iops: Vec<Throttle>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// A rate limit of one block device: bytes or I/O operations per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// A device cgroup rule: `allow`, kind a/c/b, major and minor (None: any), access "rwm".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl DeviceRule {
    /// The v1 devices.allow/deny line: `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        if self.kind == 'a' {
            return "a".into();
        }
        format!("{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.access)
    }
}

/// What init does inside, in the order it does it (init/src/spec.rs's table).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Inside {
    /// Of "/" (MS_* flags; None: private, recursively).
    pub root_propagation: Option<u64>,
    pub mounts: Vec<Mount>,
    pub devices: Vec<Device>,
    /// (target, link path).
    pub symlinks: Vec<(String, String)>,
    pub root_readonly: bool,
    pub no_pivot: bool,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    pub sysctl: BTreeMap<String, String>,
    pub domainname: Option<String>,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i64>,
    pub user: User,
    pub caps: Option<Caps>,
    pub no_new_privs: bool,
    pub cwd: String,
    /// The fd on which init finds a unix socket connected to the engine's
    /// `--console-socket`: init makes the terminal inside (CONSOLE record).
    pub console_fd: Option<i32>,
    /// The exec fifo init waits on until `start` (a host path).
    pub start_fifo: Option<PathBuf>,
    /// Hooks init runs inside after the wait, before exec (startContainer).
    pub hooks: Vec<Hook>,
    /// Hooks init runs in the container's namespaces after its mounts,
    /// before the pivot (createContainer).
    pub create_hooks: Vec<Hook>,
    /// The state JSON init's hooks get on stdin, around its status and pid:
    /// head + status + middle + pid + tail (init fills both in).
    pub hook_state: Option<[String; 3]>,
    /// init stops before the createContainer hooks and the pivot until the
    /// runtime ran `Hooks::prestart` and `create_runtime` (PIVOT_SYNC).
    pub pivot_sync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    /// Inside the new root: `/proc`.
    pub target: String,
    pub fstype: String,
    /// MS_* flags.
    pub flags: u64,
    pub data: String,
    /// MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE (| MS_REC); 0: none.
    pub propagation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub path: String,
    /// b'c', b'b' or b'p'.
    pub kind: u8,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
}

/// The five capability sets, as bit masks (1 << CAP_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds; None: no limit.
    pub timeout: Option<u64>,
}

/// The hooks run on the host, each kind in order (runtime-spec "Lifecycle");
/// createContainer and startContainer are init's (`Inside`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Hooks {
    /// prestart (deprecated), then createRuntime: after the namespaces and
    /// mounts exist, before createContainer and the pivot (init waits: PIVOT_SYNC).
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}
