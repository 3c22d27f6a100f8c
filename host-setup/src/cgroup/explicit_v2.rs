//! An OCI container's cgroup on v2: one dir, the controllers it needs enabled in
//! every ancestor's cgroup.subtree_control (subtree.rs for the root's), the
//! resources as v2 files. What v2 has no file for is refused.

use std::path::{Path, PathBuf};

use super::explicit::refuse;
use super::{blkio, devices, v2, Op};
use crate::error::Result;
use crate::spec::Resources;

/// The controllers to enable for the container: cpu, memory, pids always; cpuset
/// and io when the config sets them.
pub fn controllers(r: &Resources) -> Vec<&'static str> {
    let mut c = v2::CONTROLLERS.to_vec();
    if r.cpus.is_some() || r.mems.is_some() {
        c.push("cpuset");
    }
    if blkio::wanted(&r.block_io) {
        c.push("io");
    }
    c
}

pub(super) fn ops(root: &Path, rel: &str, r: &Resources) -> Result<Vec<Op>> {
    let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
    let dir = root.join(rel);
    let controllers = controllers(r);
    // Controllers on in every ancestor down to the parent (their subtree_control).
    let mut enable_in: Vec<PathBuf> = vec![];
    let mut at: PathBuf = root.to_path_buf();
    for part in Path::new(parent).components() {
        at = at.join(part);
        enable_in.push(at.clone());
    }
    let mut ops = vec![Op::Enable { dir: root.to_path_buf(), user: dir.clone(), controllers: controllers.clone() }];
    ops.extend(
        super::missing_ancestors(root, &dir).into_iter().map(|a| Op::MkdirAncestor { dir: a, cpuset_top: None }),
    );
    ops.push(Op::Mkdir { dir: dir.clone(), enable_in, controllers });
    let max = |v: i64| if v < 0 { "max".to_string() } else { v.to_string() };
    if let Some(l) = r.memory {
        ops.push(Op::write(&dir, "memory.max", max(l)));
    }
    if let Some(s) = r.memory_swap {
        // v2's swap.max is the swap alone; the spec's value is memory + swap.
        let v = match (s, r.memory) {
            (s, _) if s < 0 => "max".into(),
            (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
            _ => return Err(refuse("memory.swap", "needs memory.limit on cgroup v2")),
        };
        ops.push(Op::Write { file: dir.join("memory.swap.max"), value: v, if_exists: true });
    }
    if let Some(s) = r.memory_reservation {
        ops.push(Op::write(&dir, "memory.low", max(s)));
    }
    if r.memory_kernel_tcp.is_some() {
        // runc's and crun's reading on v2: TCP memory is part of memory.max there.
        log::warn!("config.json: linux.resources.memory.kernelTCP: cgroup v2 counts it in memory.max: not set");
    }
    if r.memory_swappiness.is_some() {
        return Err(refuse("memory.swappiness", "cgroup v2 has no per-cgroup swappiness (only vm.swappiness)"));
    }
    if r.disable_oom_killer {
        return Err(refuse(
            "memory.disableOOMKiller",
            "cgroup v2 has no memory.oom_control: the OOM killer cannot be turned off for a cgroup \
             (memory.oom.group only chooses what it kills)",
        ));
    }
    if let Some(s) = r.cpu_shares {
        // runc's conversion of shares (2-262144) to weight (1-10000).
        ops.push(Op::write(&dir, "cpu.weight", 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142));
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let q = r.cpu_quota.map_or("max".to_string(), max);
        ops.push(Op::write(&dir, "cpu.max", format!("{q} {}", r.cpu_period.unwrap_or(100_000))));
    }
    if r.cpu_rt_runtime.is_some() || r.cpu_rt_period.is_some() {
        return Err(refuse("cpu.realtimeRuntime", "cgroup v2 has no realtime CPU bandwidth files"));
    }
    if let Some(c) = &r.cpus {
        ops.push(Op::write(&dir, "cpuset.cpus", c));
    }
    if let Some(m) = &r.mems {
        ops.push(Op::write(&dir, "cpuset.mems", m));
    }
    if let Some(p) = r.pids {
        ops.push(Op::write(&dir, "pids.max", if p > 0 { p.to_string() } else { "max".into() }));
    }
    if !r.devices.is_empty() {
        // v2 has no devices controller: the eBPF filter of devices.rs, whose
        // list is the default devices; other allow rules are refused.
        let extra =
            r.devices.iter().filter(|d| d.allow).find(|d| !devices::ALLOWED.iter().any(|a| a.v1_line() == d.v1_line()));
        if let Some(d) = extra {
            return Err(refuse(
                "devices",
                &format!("allowing {} is not supported on cgroup v2 by this runtime", d.v1_line()),
            ));
        }
        ops.push(Op::DeviceFilter(dir.clone()));
    }
    for w in blkio::v2(&r.block_io)? {
        ops.push(Op::WriteAny { files: w.files.iter().map(|f| dir.join(f)).collect(), value: w.value, what: w.what });
    }
    if !r.hugepage_limits.is_empty() {
        return Err(refuse("hugepageLimits", "hugetlb limits are not managed by this runtime"));
    }
    if r.net_class_id.is_some() || !r.net_priorities.is_empty() {
        return Err(refuse("network", "cgroup v2 has no net_cls or net_prio controller"));
    }
    for (k, v) in &r.unified {
        if k.contains('/') || !k.contains('.') {
            return Err(refuse("unified", &format!("{k:?} is not a cgroup file name")));
        }
        ops.push(Op::write(&dir, k, v));
    }
    Ok(ops)
}
