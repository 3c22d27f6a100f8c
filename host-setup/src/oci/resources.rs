//! config.json's `linux.resources` in general terms (spec::Resources); the
//! cgroups step writes them as v1 or v2 files (cgroup/explicit.rs).

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::spec::{DeviceRule, Resources};

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
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            // runc 1.1's reading too: deprecated by the kernel (5.4) and gone from v2.
            log::warn!(
                "config.json: linux.resources.memory.kernel and kernelTCP are deprecated by the kernel: not set"
            );
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported("memory.disableOOMKiller"));
        }
    }
    if let Some(c) = r.cpu() {
        out.cpu_shares = c.shares();
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpus = c.cpus().clone().filter(|s| !s.is_empty());
        out.mems = c.mems().clone().filter(|s| !s.is_empty());
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            return Err(unsupported("cpu.realtimeRuntime"));
        }
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
        // Docker 20.10 always sends `"blockIO": {"weight": 0}`: runc treats a
        // weight (or leafWeight) of 0 and empty device lists as not set.
        let set = |w: Option<u16>| w.is_some_and(|w| w != 0);
        let lists = [
            b.weight_device().as_ref().map_or(0, |v| v.len()),
            b.throttle_read_bps_device().as_ref().map_or(0, |v| v.len()),
            b.throttle_write_bps_device().as_ref().map_or(0, |v| v.len()),
            b.throttle_read_iops_device().as_ref().map_or(0, |v| v.len()),
            b.throttle_write_iops_device().as_ref().map_or(0, |v| v.len()),
        ];
        if set(b.weight()) || set(b.leaf_weight()) || lists.iter().any(|&n| n > 0) {
            return Err(unsupported("blockIO (a weight or device limits)"));
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("hugepageLimits"));
    }
    if r.network().is_some() {
        return Err(unsupported("network"));
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("rdma"));
    }
    Ok(out)
}
