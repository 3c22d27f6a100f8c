//! config.json's `linux.resources` in general terms (spec::Resources); the
//! cgroups step writes them as v1 or v2 files (cgroup/explicit.rs).

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::error::Result;
use crate::spec::{BlockIo, DeviceRule, Resources, Throttle, WeightDevice};

fn unsupported(what: &str) -> crate::error::Error {
    crate::failed!("config.json: linux.resources.{what}: not supported by this runtime")
}

pub fn from_oci(r: Option<&LinuxResources>) -> Result<Resources> {
    let Some(r) = r else { return Ok(Resources::default()) };
    let mut out = Resources::default();
    if let Some(m) = r.memory() {
        out.memory = m.limit();
        out.memory_swap = m.swap();
        out.memory_reservation = m.reservation();
        if m.kernel().is_some() {
            // runc 1.1's reading too: deprecated by the kernel (5.4), a write is
            // accepted and ignored since 6.x (memory.kmem.limit_in_bytes stays
            // unlimited), and gone from v2.
            log::warn!("config.json: linux.resources.memory.kernel is deprecated by the kernel: not set");
        }
        out.memory_kernel_tcp = m.kernel_tcp();
        out.memory_swappiness = m.swappiness();
        out.disable_oom_killer = m.disable_oom_killer() == Some(true);
    }
    if let Some(c) = r.cpu() {
        out.cpu_shares = c.shares();
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpus = c.cpus().clone().filter(|s| !s.is_empty());
        out.mems = c.mems().clone().filter(|s| !s.is_empty());
        out.cpu_rt_runtime = c.realtime_runtime();
        out.cpu_rt_period = c.realtime_period();
    }
    out.pids = r.pids().as_ref().map(|p| p.limit());
    for d in r.devices().iter().flatten() {
        let kind = match d.typ() {
            None => 'a',
            Some(t) => t.as_str().chars().next().unwrap_or('a'),
        };
        out.devices.push(DeviceRule {
            allow: d.allow(),
            kind,
            major: d.major(),
            minor: d.minor(),
            access: d.access().clone().unwrap_or_else(|| "rwm".into()),
        });
    }
    out.unified = r.unified().clone().unwrap_or_default().into_iter().collect();
    if let Some(b) = r.block_io() {
        out.block_io = block_io(b);
    }
    // Refused by the cgroups step, which knows what this host lacks (cgroup/explicit_v*.rs).
    for h in r.hugepage_limits().iter().flatten() {
        out.hugepage_limits.push((h.page_size().clone(), h.limit() as u64));
    }
    if let Some(n) = r.network() {
        out.net_class_id = n.class_id();
        out.net_priorities = n.priorities().iter().flatten().map(|p| (p.name().clone(), p.priority())).collect();
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("rdma"));
    }
    Ok(out)
}

/// `linux.resources.blockIO` in general terms. A weight of 0 is "not set" (Docker
/// sends `"blockIO": {"weight": 0}`): cgroup/blkio.rs.
pub fn block_io(b: &LinuxBlockIo) -> BlockIo {
    let throttles = |l: &Option<Vec<LinuxThrottleDevice>>| -> Vec<Throttle> {
        l.iter().flatten().map(|t| Throttle { major: t.major(), minor: t.minor(), rate: t.rate() }).collect()
    };
    BlockIo {
        weight: b.weight(),
        leaf_weight: b.leaf_weight(),
        weight_device: b
            .weight_device()
            .iter()
            .flatten()
            .map(|d| WeightDevice {
                major: d.major(),
                minor: d.minor(),
                weight: d.weight(),
                leaf_weight: d.leaf_weight(),
            })
            .collect(),
        throttle_read_bps: throttles(b.throttle_read_bps_device()),
        throttle_write_bps: throttles(b.throttle_write_bps_device()),
        throttle_read_iops: throttles(b.throttle_read_iops_device()),
        throttle_write_iops: throttles(b.throttle_write_iops_device()),
    }
}
