//! `hsrun update ID --resources FILE|-` (a runtime-spec LinuxResources JSON, as
//! containerd's shim passes it on stdin) or the flag forms (`--memory 256m`,
//! `--memory-swap`, `--memory-reservation`, `--cpu-quota`, `--cpu-period`,
//! `--cpu-share`, `--cpuset-cpus`, `--cpuset-mems`, `--pids-limit`): new limits
//! for a live container, written into its cgroups (update_cgroup.rs). What the
//! container's cgroups cannot take (realtime CPU, hugepages, devices, `unified`
//! keys, a block I/O weight without BFQ/CFQ) is refused, never dropped silently.
//! `--blkio-weight` and `--resources`' blockIO are written as at create (cgroup/blkio.rs).

use std::io::Read;

use oci_spec::runtime::LinuxResources;

use super::cli::{opt, parse, Global, Opt, Parsed};
use super::state::{State, Status};
use super::update_cgroup;
use crate::error::{Result, SysContext};
use crate::spec::BlockIo;

/// What to change; None: leave as it is. Byte and quota values: -1 is "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub memory: Option<i64>,
    /// Memory plus swap (runtime-spec's `swap`, v1's memsw).
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub swappiness: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    /// Block I/O weights and throttles (cgroup/blkio.rs); None: no change.
    pub block_io: Option<BlockIo>,
}

impl Changes {
    /// From a LinuxResources document; the parts we cannot apply are an error.
    pub fn from_resources(r: &LinuxResources) -> Result<Changes> {
        let refuse = |what: &str| Err(crate::usage!("update: resources.{what} cannot be changed by hsrun update"));
        if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return refuse("devices");
        }
        if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
            return refuse("hugepageLimits");
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return refuse("unified");
        }
        if r.rdma().as_ref().is_some_and(|u| !u.is_empty()) || r.network().is_some() {
            return refuse("rdma/network");
        }
        let mut c = Changes::default();
        if let Some(m) = r.memory() {
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                return refuse("memory.kernel/kernelTCP (deprecated by the kernel)");
            }
            c.memory = m.limit();
            c.memory_swap = m.swap();
            c.memory_reservation = m.reservation();
            c.swappiness = m.swappiness();
        }
        if let Some(cpu) = r.cpu() {
            if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
                return refuse("cpu.realtimeRuntime/realtimePeriod");
            }
            c.cpu_shares = cpu.shares();
            c.cpu_quota = cpu.quota();
            c.cpu_period = cpu.period();
            c.cpuset_cpus = cpu.cpus().clone().filter(|s| !s.is_empty());
            c.cpuset_mems = cpu.mems().clone().filter(|s| !s.is_empty());
        }
        if let Some(p) = r.pids() {
            c.pids_limit = Some(p.limit());
        }
        // Docker sends a weight of 0 (unset) with every update: no change.
        c.block_io = r.block_io().as_ref().map(super::resources::block_io).filter(crate::cgroup::blkio::wanted);
        Ok(c)
    }
}

/// `512`, `512k`, `256m`, `1g` (powers of 1024, as runc's units.RAMInBytes), or -1.
pub fn bytes(flag: &str, v: &str) -> Result<i64> {
    let t = v.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| crate::usage!("update: --{flag} {v:?}: a size in bytes (512m, 1g) or -1"))
}

const OPTS: &[Opt] = &[
    opt(&["resources", "r"], true),
    opt(&["memory"], true),
    opt(&["memory-swap"], true),
    opt(&["memory-reservation"], true),
    opt(&["kernel-memory"], true),
    opt(&["kernel-memory-tcp"], true),
    opt(&["cpu-quota"], true),
    opt(&["cpu-period"], true),
    opt(&["cpu-share", "cpu-shares"], true),
    opt(&["cpu-rt-runtime"], true),
    opt(&["cpu-rt-period"], true),
    opt(&["cpuset-cpus"], true),
    opt(&["cpuset-mems"], true),
    opt(&["pids-limit"], true),
    opt(&["blkio-weight"], true),
    opt(&["l3-cache-schema"], true),
    opt(&["mem-bw-schema"], true),
];

/// The changes the command line asks for (`--resources` and flags: flags win, as in runc).
pub fn changes(p: &Parsed) -> Result<Changes> {
    let mut c = match p.value("resources") {
        None => Changes::default(),
        Some(file) => {
            let text = if file == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).sys(|| "update: read resources from stdin".into())?;
                s
            } else {
                std::fs::read_to_string(file).sys(|| format!("update: read {file}"))?
            };
            let de = &mut serde_json::Deserializer::from_str(&text);
            let r: LinuxResources = serde_path_to_error::deserialize(de)
                .map_err(|e| crate::usage!("update: {file}: {}: {}", e.path(), e.inner()))?;
            Changes::from_resources(&r)?
        }
    };
    for f in
        ["kernel-memory", "kernel-memory-tcp", "cpu-rt-runtime", "cpu-rt-period", "l3-cache-schema", "mem-bw-schema"]
    {
        if p.value(f).is_some() {
            return Err(crate::usage!("update: --{f} is not supported by hsrun"));
        }
    }
    if let Some(w) = number::<u16>(p, "blkio-weight")?.filter(|w| *w != 0) {
        c.block_io.get_or_insert_with(BlockIo::default).weight = Some(w);
    }
    let size = |f: &str| p.value(f).map(|v| bytes(f, v)).transpose();
    c.memory = size("memory")?.or(c.memory);
    c.memory_swap = size("memory-swap")?.or(c.memory_swap);
    c.memory_reservation = size("memory-reservation")?.or(c.memory_reservation);
    c.cpu_quota = number(p, "cpu-quota")?.or(c.cpu_quota);
    c.cpu_period = number(p, "cpu-period")?.or(c.cpu_period);
    c.cpu_shares = number(p, "cpu-share")?.or(c.cpu_shares);
    c.pids_limit = number(p, "pids-limit")?.or(c.pids_limit);
    c.cpuset_cpus = p.value("cpuset-cpus").map(String::from).or(c.cpuset_cpus);
    c.cpuset_mems = p.value("cpuset-mems").map(String::from).or(c.cpuset_mems);
    Ok(c)
}

/// A numeric option, or a usage error naming it.
fn number<T: std::str::FromStr>(p: &Parsed, name: &str) -> Result<Option<T>> {
    p.value(name).map(|v| v.parse().map_err(|_| crate::usage!("update: --{name}: {v:?} is not a number"))).transpose()
}

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("update", args, OPTS, None)?;
    let id = p.id("update")?;
    let st = State::load(&g.paths(), id)?;
    let changes = changes(&p)?;
    if st.status(&g.paths()) == Status::Stopped {
        return Err(crate::failed!("update {id}: the container is stopped"));
    }
    update_cgroup::apply(&st.cgroup_dirs, &changes)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("memory", "512").unwrap(), 512);
        assert_eq!(bytes("memory", "256m").unwrap(), 256 << 20);
        assert_eq!(bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("memory", "2kb").unwrap(), 2048);
        assert_eq!(bytes("memory", "-1").unwrap(), -1);
        assert!(bytes("memory", "lots").is_err());
    }

    #[test]
    fn resources_document() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":268435456,"swap":268435456},"cpu":{"shares":512,"quota":20000,"period":100000,"cpus":""},
                "pids":{"limit":64},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        let c = Changes::from_resources(&r).unwrap();
        assert_eq!(c.memory, Some(256 << 20));
        assert_eq!(c.memory_swap, Some(256 << 20));
        assert_eq!((c.cpu_shares, c.cpu_quota, c.cpu_period), (Some(512), Some(20000), Some(100000)));
        assert_eq!(c.cpuset_cpus, None, "an empty cpus is no change");
        assert_eq!(c.pids_limit, Some(64));
        let rt: LinuxResources = serde_json::from_str(r#"{"cpu":{"realtimeRuntime":1000}}"#).unwrap();
        assert!(Changes::from_resources(&rt).unwrap_err().to_string().contains("realtime"));
        let hp: LinuxResources = serde_json::from_str(r#"{"unified":{"io.max":"8:0 rbps=1"}}"#).unwrap();
        assert!(Changes::from_resources(&hp).unwrap_err().to_string().contains("unified"));
    }
}
