//! `host-setup export NAME DIR`: the other direction of the OCI runtime. A
//! container of ours (its journal's Spec) becomes an OCI bundle: DIR/config.json,
//! written with the `oci-spec` crate's runtime types (the ones `hsrun` reads), and
//! DIR/rootfs, its layers flattened (export_rootfs.rs). `runc run` and `hsrun run`
//! of that bundle then run what `host-setup up` runs: each checks the other.
//!
//! What OCI cannot say stays out, and docs/oci-runtime.md says so: the veth pair or bridge
//! network (a bundle only asks for a new, empty network namespace), the
//! supervisor and init as PID 1 (the bundle's process is PID 1 itself), the
//! named netns and the logs.

use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, Resource};
use oci_spec::runtime as oci;
use oci_spec::OciSpecError;

use crate::cgroup::devices::{self, Kind};
use crate::error::Result;
use crate::seccomp::{self, Action, Op, Profile};
use crate::spec::Spec;
use crate::userns::IdMap;

/// The runtime-spec version the config says it follows.
pub const OCI_VERSION: &str = "1.0.2";

/// What the bundle's process is when the container has no command (init alone
/// waits as PID 1, `--pause`): the shell, as `host-setup run` and `exec` give.
pub const NO_COMMAND: &str = "/bin/sh";

/// Options of the tmpfs on /dev, devpts and /dev/shm: init's own (init/src/dev.rs).
fn c(s: &std::ffi::CStr) -> String {
    s.to_string_lossy().into_owned()
}

fn b<T>(r: std::result::Result<T, OciSpecError>) -> Result<T> {
    r.map_err(|e| crate::failed!("export: config.json: {e}"))
}

/// Everything `config` needs besides the Spec: what the journal and the host say.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// The container's user namespace ids (its journal's `Ids`), with --userns.
    pub ids: Option<IdMap>,
    /// The process's command, instead of the container's (`export NAME DIR -- CMD`).
    pub command: Vec<String>,
    /// cgroup v1 (memory.swappiness exists there only).
    pub v1: bool,
    /// The limits the container inherits (host-setup's own): (type, soft, hard).
    pub rlimits: Vec<(oci::PosixRlimitType, u64, u64)>,
}

/// The rlimits of this process, which a container started now inherits (host-setup
/// sets none of its own). RLIM_INFINITY is u64::MAX in both the kernel and OCI.
pub fn own_rlimits() -> Vec<(oci::PosixRlimitType, u64, u64)> {
    own_rlimit_types()
        .into_iter()
        .zip(RESOURCES)
        .filter_map(|(t, r)| getrlimit(r).ok().map(|(soft, hard)| (t, soft, hard)))
        .collect()
}

/// RLIMIT_* in the kernel's order (0 = CPU .. 15 = RTTIME).
const RESOURCES: [Resource; 16] = [
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_STACK,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_AS,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
];

/// OCI's names of RESOURCES, in the same order.
pub fn own_rlimit_types() -> [oci::PosixRlimitType; 16] {
    use oci::PosixRlimitType as T;
    [
        T::RlimitCpu,
        T::RlimitFsize,
        T::RlimitData,
        T::RlimitStack,
        T::RlimitCore,
        T::RlimitRss,
        T::RlimitNproc,
        T::RlimitNofile,
        T::RlimitMemlock,
        T::RlimitAs,
        T::RlimitLocks,
        T::RlimitSigpending,
        T::RlimitMsgqueue,
        T::RlimitNice,
        T::RlimitRtprio,
        T::RlimitRttime,
    ]
}

/// The bundle's config.json for `spec`, its root at `rootfs` (relative to the bundle).
pub fn config(spec: &Spec, extra: &Extra, rootfs: &Path) -> Result<oci::Spec> {
    let contain = !spec.privileged;
    let args = match (&extra.command, &spec.command) {
        (c, _) if !c.is_empty() => c.clone(),
        (_, c) if !c.is_empty() => c.clone(),
        _ => vec![NO_COMMAND.to_string()],
    };
    let env: Vec<String> =
        crate::contract::container_env().into_iter().filter(|e| !e.starts_with("RUST_LOG=")).collect();
    let rlimits = extra
        .rlimits
        .iter()
        .map(|&(typ, soft, hard)| b(oci::PosixRlimitBuilder::default().typ(typ).soft(soft).hard(hard).build()))
        .collect::<Result<Vec<_>>>()?;
    let process = oci::ProcessBuilder::default()
        .terminal(false)
        .user(b(oci::UserBuilder::default().uid(0u32).gid(0u32).build())?)
        .args(args)
        .env(env)
        .cwd("/")
        .capabilities(capabilities(contain)?)
        .rlimits(rlimits)
        .no_new_privileges(contain);
    let mut linux = oci::LinuxBuilder::default()
        .namespaces(namespaces(spec)?)
        .resources(resources(spec, extra.v1)?)
        // The rootfs's own propagation; runtime-spec 1.0.2's schema knows only
        // private, shared, slave and unbindable (runc also takes "rprivate").
        .rootfs_propagation("private");
    if let Some(ids) = extra.ids {
        let map = |host: u32| {
            b(oci::LinuxIdMappingBuilder::default().container_id(0u32).host_id(host).size(ids.count).build())
        };
        linux = linux.uid_mappings(vec![map(ids.uid)?]).gid_mappings(vec![map(ids.gid)?]);
    }
    // Always set: the crate's builder fills in its own lists (with /sys/firmware)
    // where none is given.
    let (masked, read_only): (Vec<String>, Vec<String>) = match contain {
        true => (
            init::maskproc::MASKED.iter().map(|p| c(p)).collect(),
            init::maskproc::READ_ONLY.iter().map(|p| c(p)).collect(),
        ),
        false => (vec![], vec![]),
    };
    linux = linux.masked_paths(masked).readonly_paths(read_only);
    if contain {
        if let Some(p) = spec.seccomp.profile()? {
            linux = linux.seccomp(seccomp_of(&p)?);
        }
    }
    let mut annotations = std::collections::HashMap::new();
    annotations.insert("org.host-setup.name".to_string(), spec.name.clone());
    annotations.insert("org.host-setup.pid1".to_string(), format!("{:?}", spec.pid1).to_lowercase());
    b(oci::SpecBuilder::default()
        .version(OCI_VERSION)
        .root(b(oci::RootBuilder::default().path(rootfs).readonly(false).build())?)
        .process(b(process.build())?)
        .hostname(spec.hostname.clone())
        .mounts(mounts(contain)?)
        .linux(b(linux.build())?)
        .annotations(annotations)
        .build())
}

/// init --restrict's sets (Docker's default) for a contained container, all of
/// them for a --privileged one; inheritable and ambient empty, as init leaves them.
fn capabilities(contain: bool) -> Result<oci::LinuxCapabilities> {
    let names: Vec<&str> = match contain {
        true => init::caps::DEFAULT.iter().map(|&n| init::caps::NAMES[n as usize]).collect(),
        false => init::caps::NAMES.to_vec(),
    };
    let set = names
        .iter()
        .map(|n| serde_json::from_value::<oci::Capability>(n.to_uppercase().into()))
        .collect::<std::result::Result<oci::Capabilities, _>>()
        .map_err(|e| crate::failed!("export: capability names: {e}"))?;
    b(oci::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(oci::Capabilities::new())
        .ambient(oci::Capabilities::new())
        .build())
}

/// init's namespaces: a new one of each (the network one empty: the veth pair
/// or bridge port has no OCI form), cgroup when contained, user with --userns.
fn namespaces(spec: &Spec) -> Result<Vec<oci::LinuxNamespace>> {
    use oci::LinuxNamespaceType as N;
    let mut kinds = vec![N::Pid, N::Ipc, N::Uts, N::Mount, N::Network];
    if !spec.privileged {
        kinds.push(N::Cgroup);
    }
    if spec.userns {
        kinds.push(N::User);
    }
    kinds.into_iter().map(|t| b(oci::LinuxNamespaceBuilder::default().typ(t).build())).collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<oci::Mount> {
    b(oci::MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build())
}

/// /proc, and when contained init's /dev (init/src/dev.rs) plus mqueue and a
/// read-only sysfs, as runc's default spec has them.
fn mounts(contain: bool) -> Result<Vec<oci::Mount>> {
    let mut m = vec![mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?];
    if contain {
        let dev = c(init::dev::DEV_OPTIONS);
        let pts = c(init::dev::DEVPTS_OPTIONS);
        let shm = c(init::dev::SHM_OPTIONS);
        let with = |flags: &[&'static str], opts: &str| -> Vec<String> {
            flags.iter().map(|s| s.to_string()).chain(opts.split(',').map(String::from)).collect()
        };
        let own = |dest: &str, typ: &str, source: &str, options: Vec<String>| {
            b(oci::MountBuilder::default().destination(dest).typ(typ).source(source).options(options).build())
        };
        m.push(own("/dev", "tmpfs", "tmpfs", with(&["nosuid", "noexec"], &dev))?);
        m.push(own("/dev/pts", "devpts", "devpts", with(&["nosuid", "noexec"], &pts))?);
        m.push(own("/dev/shm", "tmpfs", "shm", with(&["nosuid", "nodev", "noexec"], &shm))?);
        m.push(mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?);
        m.push(mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?);
    }
    Ok(m)
}

/// The Spec's limits: CPU quota/period, memory with swap off (swap = memory,
/// swappiness 0 on v1), pids, and the device allow list (cgroup/devices.rs).
fn resources(spec: &Spec, v1: bool) -> Result<oci::LinuxResources> {
    let l = &spec.limits;
    let mut memory = oci::LinuxMemoryBuilder::default().limit(l.memory_bytes as i64).swap(l.memory_bytes as i64);
    if v1 {
        memory = memory.swappiness(0u64);
    }
    let cpu = oci::LinuxCpuBuilder::default().quota(l.cpu_quota_us as i64).period(l.cpu_period_us);
    let mut devs = vec![];
    if l.restrict_devices {
        devs.push(b(oci::LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build())?);
        for r in devices::ALLOWED {
            let typ = if r.kind == Kind::Char { oci::LinuxDeviceType::C } else { oci::LinuxDeviceType::B };
            let mut d = oci::LinuxDeviceCgroupBuilder::default().allow(true).typ(typ).access(r.access);
            if let Some(major) = r.major {
                d = d.major(major as i64);
            }
            if let Some(minor) = r.minor {
                d = d.minor(minor as i64);
            }
            devs.push(b(d.build())?);
        }
    } else {
        devs.push(b(oci::LinuxDeviceCgroupBuilder::default().allow(true).access("rwm").build())?);
    }
    let mut r = oci::LinuxResourcesBuilder::default().memory(b(memory.build())?).cpu(b(cpu.build())?).devices(devs);
    if let Some(p) = l.pids_max {
        r = r.pids(b(oci::LinuxPidsBuilder::default().limit(p as i64).build())?);
    }
    b(r.build())
}

/// The compiled profile back in OCI form: unconditional allows as one entry,
/// every other rule as one entry of its own (conditions of one entry all hold;
/// two entries for one call: either), the default action last.
pub fn seccomp_of(p: &Profile) -> Result<oci::LinuxSeccomp> {
    let arch = match p.arch {
        seccomp::Arch::X86_64 => oci::Arch::ScmpArchX86_64,
        seccomp::Arch::Aarch64 => oci::Arch::ScmpArchAarch64,
    };
    let names: std::collections::HashMap<u32, &str> =
        p.arch.names().into_iter().filter_map(|n| p.arch.nr(n).map(|nr| (nr, n))).collect();
    let name = |nr: u32| {
        names
            .get(&nr)
            .map(|n| n.to_string())
            .ok_or_else(|| crate::failed!("export: seccomp: no name for system call {nr}"))
    };
    let mut allowed = vec![];
    let mut others = vec![];
    for r in &p.rules {
        if r.action == Action::Allow && r.conds.is_empty() {
            allowed.push(name(r.nr)?);
            continue;
        }
        let (action, ret) = action_of(r.action);
        let mut s = oci::LinuxSyscallBuilder::default().names(vec![name(r.nr)?]).action(action);
        if let Some(e) = ret {
            s = s.errno_ret(e);
        }
        if !r.conds.is_empty() {
            let args = r.conds.iter().map(|c| {
                let (op, value, two) = match c.op {
                    Op::Ne => (oci::LinuxSeccompOperator::ScmpCmpNe, c.value, None),
                    Op::Lt => (oci::LinuxSeccompOperator::ScmpCmpLt, c.value, None),
                    Op::Le => (oci::LinuxSeccompOperator::ScmpCmpLe, c.value, None),
                    Op::Eq => (oci::LinuxSeccompOperator::ScmpCmpEq, c.value, None),
                    Op::Ge => (oci::LinuxSeccompOperator::ScmpCmpGe, c.value, None),
                    Op::Gt => (oci::LinuxSeccompOperator::ScmpCmpGt, c.value, None),
                    // libseccomp's SCMP_CMP_MASKED_EQ: `value` is the mask, `valueTwo` the datum.
                    Op::MaskedEq(mask) => (oci::LinuxSeccompOperator::ScmpCmpMaskedEq, mask, Some(c.value)),
                };
                let mut a = oci::LinuxSeccompArgBuilder::default().index(c.index as usize).value(value).op(op);
                if let Some(t) = two {
                    a = a.value_two(t);
                }
                b(a.build())
            });
            s = s.args(args.collect::<Result<Vec<_>>>()?);
        }
        others.push(b(s.build())?);
    }
    allowed.sort();
    allowed.dedup();
    let mut syscalls = vec![b(oci::LinuxSyscallBuilder::default()
        .names(allowed)
        .action(oci::LinuxSeccompAction::ScmpActAllow)
        .build())?];
    syscalls.extend(others);
    let (default, ret) = action_of(p.default);
    let mut s =
        oci::LinuxSeccompBuilder::default().default_action(default).architectures(vec![arch]).syscalls(syscalls);
    if let Some(e) = ret.filter(|&e| e != libc::EPERM as u32) {
        s = s.default_errno_ret(e);
    }
    b(s.build())
}

fn action_of(a: Action) -> (oci::LinuxSeccompAction, Option<u32>) {
    use oci::LinuxSeccompAction as A;
    match a {
        Action::Allow => (A::ScmpActAllow, None),
        Action::Errno(e) => (A::ScmpActErrno, Some(e as u32)),
        Action::KillThread => (A::ScmpActKill, None),
        Action::KillProcess => (A::ScmpActKillProcess, None),
        Action::Trap => (A::ScmpActTrap, None),
        Action::Log => (A::ScmpActLog, None),
        Action::Trace(d) => (A::ScmpActTrace, Some(d as u32)),
    }
}

/// config.json's text: serde_json pretty, capability sets sorted (the crate keeps
/// them in a HashSet) so that two exports of one container read the same.
pub fn to_json(config: &oci::Spec) -> Result<String> {
    let mut v = serde_json::to_value(config).map_err(|e| crate::failed!("export: config.json: {e}"))?;
    if let Some(caps) = v.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) {
        for set in caps.values_mut() {
            if let Some(a) = set.as_array_mut() {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&v).map_err(|e| crate::failed!("export: config.json: {e}"))?;
    text.push('\n');
    Ok(text)
}

/// The rootfs dir inside a bundle.
pub fn rootfs_dir(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
