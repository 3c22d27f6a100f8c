//! `hsrun update ID --resources FILE|-` (a runtime-spec LinuxResources JSON, as
//! containerd's shim passes it on stdin) or the flag forms (`--memory 256m`,
//! `--memory-swap`, `--memory-reservation`, `--cpu-quota`, `--cpu-period`,
//! `--cpu-share`, `--cpuset-cpus`, `--cpuset-mems`, `--pids-limit`): new limits
//! for a live container, written into its cgroups (update_cgroup.rs). What the
//! container's cgroups cannot take (realtime CPU, hugepages, devices, block I/O
//! weights, `unified` keys) is refused, never dropped silently.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::running::Running;
use super::update_cgroup;
use super::verb_args::{self, value};
use crate::error::{Result, SysContext};

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
        if let Some(b) = r.block_io() {
            // Docker sends a weight of 0 (unset) with every update.
            let weights = b.weight().unwrap_or(0) != 0 || b.leaf_weight().unwrap_or(0) != 0;
            let lists = [b.weight_device().as_ref().map(Vec::len), b.throttle_read_bps_device().as_ref().map(Vec::len)]
                .into_iter()
                .chain([b.throttle_write_bps_device().as_ref().map(Vec::len)])
                .chain([b.throttle_read_iops_device().as_ref().map(Vec::len)])
                .chain([b.throttle_write_iops_device().as_ref().map(Vec::len)])
                .any(|n| n.unwrap_or(0) > 0);
            if weights || lists {
                return refuse("blockIO (no blkio/io controller in the container's cgroups)");
            }
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

const OPTS: &[verb_args::Opt] = &[
    value(&["resources", "r"]),
    value(&["memory"]),
    value(&["memory-swap"]),
    value(&["memory-reservation"]),
    value(&["kernel-memory"]),
    value(&["kernel-memory-tcp"]),
    value(&["cpu-quota"]),
    value(&["cpu-period"]),
    value(&["cpu-share", "cpu-shares"]),
    value(&["cpu-rt-runtime"]),
    value(&["cpu-rt-period"]),
    value(&["cpuset-cpus"]),
    value(&["cpuset-mems"]),
    value(&["pids-limit"]),
    value(&["blkio-weight"]),
    value(&["l3-cache-schema"]),
    value(&["mem-bw-schema"]),
];

/// The changes the command line asks for (`--resources` and flags: flags win, as in runc).
pub fn changes(p: &verb_args::Parsed) -> Result<Changes> {
    let mut c = match p.get("resources") {
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
        if p.get(f).is_some() {
            return Err(crate::usage!("update: --{f} is not supported by hsrun"));
        }
    }
    if p.get("blkio-weight").is_some_and(|w| w != "0") {
        return Err(crate::usage!("update: --blkio-weight: no blkio/io controller in the container's cgroups"));
    }
    let size = |f: &str| p.get(f).map(|v| bytes(f, v)).transpose();
    c.memory = size("memory")?.or(c.memory);
    c.memory_swap = size("memory-swap")?.or(c.memory_swap);
    c.memory_reservation = size("memory-reservation")?.or(c.memory_reservation);
    c.cpu_quota = p.number("cpu-quota")?.or(c.cpu_quota);
    c.cpu_period = p.number("cpu-period")?.or(c.cpu_period);
    c.cpu_shares = p.number("cpu-share")?.or(c.cpu_shares);
    c.pids_limit = p.number("pids-limit")?.or(c.pids_limit);
    c.cpuset_cpus = p.get("cpuset-cpus").map(String::from).or(c.cpuset_cpus);
    c.cpuset_mems = p.get("cpuset-mems").map(String::from).or(c.cpuset_mems);
    Ok(c)
}

pub fn main(root: &Path, args: &[String]) -> Result<i32> {
    let p = verb_args::parse("update", args, OPTS)?;
    let [id] = p.rest.as_slice() else {
        return Err(crate::usage!("update: takes one container id: hsrun update [--resources FILE|-] [flags] ID"));
    };
    let c = Running::load(root, id)?;
    let changes = changes(&p)?;
    c.require_alive("update")?;
    update_cgroup::apply(&c.saved.cgroup_dirs, &changes)?;
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
