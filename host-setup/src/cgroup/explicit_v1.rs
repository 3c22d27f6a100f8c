//! An OCI container's cgroup on v1: a dir in each hierarchy (the cpuset one
//! filled from its parent, cpuset.rs), the resources as v1 files.

use super::explicit::refuse;
use super::v1::Mounts;
use super::{blkio, devices, Op};
use crate::error::Result;
use crate::spec::Resources;

/// Why `controller` cannot be used: no hierarchy, or not done by this runtime.
fn no_hierarchy(m: &Mounts, controller: &str) -> String {
    match m.mount(controller) {
        None => format!(
            "no {controller} cgroup hierarchy is mounted on this host (/proc/self/mountinfo has no cgroup \
             with the {controller} option; mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller})"
        ),
        Some(p) => format!("the {controller} hierarchy ({}) is not managed by this runtime", p.display()),
    }
}

pub(super) fn ops(m: &Mounts, rel: &str, r: &Resources) -> Result<Vec<Op>> {
    let mut ops = m.explicit_mkdirs(rel);
    let dir = |c: &str| m.controller_dir(c, rel);
    if let Some(mem) = dir("memory") {
        if let Some(l) = r.memory {
            // memsw (memory + swap) must stay >= the memory limit: memory first.
            ops.push(Op::write(&mem, "memory.limit_in_bytes", l));
        }
        if let Some(s) = r.memory_swap {
            ops.push(Op::Write {
                file: mem.join("memory.memsw.limit_in_bytes"),
                value: s.to_string(),
                if_exists: true,
            });
        }
        if let Some(s) = r.memory_reservation {
            ops.push(Op::write(&mem, "memory.soft_limit_in_bytes", s));
        }
        if let Some(t) = r.memory_kernel_tcp {
            let file = vec![mem.join("memory.kmem.tcp.limit_in_bytes")];
            ops.push(Op::WriteAny { files: file, value: t.to_string(), what: "linux.resources.memory.kernelTCP" });
        }
        if let Some(s) = r.memory_swappiness {
            if s > 100 {
                return Err(refuse("memory.swappiness", &format!("{s} is not within 0-100")));
            }
            ops.push(Op::write(&mem, "memory.swappiness", s));
        }
        if r.disable_oom_killer {
            // oom_kill_disable 1: at the limit the container's tasks wait (under_oom 1).
            ops.push(Op::write(&mem, "memory.oom_control", 1));
        }
    }
    if let Some(cpu) = dir("cpu") {
        if let Some(s) = r.cpu_shares {
            ops.push(Op::write(&cpu, "cpu.shares", s));
        }
        // The period first: the quota is checked against it.
        if let Some(p) = r.cpu_period {
            ops.push(Op::write(&cpu, "cpu.cfs_period_us", p));
        }
        if let Some(q) = r.cpu_quota {
            ops.push(Op::write(&cpu, "cpu.cfs_quota_us", q));
        }
        if r.cpu_rt_runtime.is_some() || r.cpu_rt_period.is_some() {
            let top = m.mount("cpu").expect("cpu is mounted: dir() found it");
            if !top.join("cpu.rt_runtime_us").exists() {
                return Err(refuse(
                    "cpu.realtimeRuntime",
                    &format!(
                        "the kernel has no {}/cpu.rt_runtime_us (built without CONFIG_RT_GROUP_SCHED)",
                        top.display()
                    ),
                ));
            }
            // The period first; the runtime must fit in what the parent has left
            // (sum of the children's runtime/period <= the parent's: EINVAL).
            if let Some(p) = r.cpu_rt_period {
                ops.push(Op::write(&cpu, "cpu.rt_period_us", p));
            }
            if let Some(t) = r.cpu_rt_runtime {
                ops.push(Op::write(&cpu, "cpu.rt_runtime_us", t));
            }
        }
    }
    if r.cpus.is_some() || r.mems.is_some() {
        let Some(cs) = dir("cpuset") else { return Err(refuse("cpu.cpus", &no_hierarchy(m, "cpuset"))) };
        if let Some(c) = &r.cpus {
            ops.push(Op::write(&cs, "cpuset.cpus", c));
        }
        if let Some(mems) = &r.mems {
            ops.push(Op::write(&cs, "cpuset.mems", mems));
        }
    }
    if let (Some(p), Some(pids)) = (r.pids, dir("pids")) {
        ops.push(Op::write(&pids, "pids.max", if p > 0 { p.to_string() } else { "max".into() }));
    }
    if let (false, Some(dev)) = (r.devices.is_empty(), dir("devices")) {
        for rule in &r.devices {
            ops.push(Op::write(&dev, if rule.allow { "devices.allow" } else { "devices.deny" }, rule.v1_line()));
        }
        // runc's too: the devices every container's /dev has stay usable.
        ops.extend(devices::ALLOWED.iter().map(|a| Op::write(&dev, "devices.allow", a.v1_line())));
    }
    if blkio::wanted(&r.block_io) {
        let Some(b) = dir("blkio") else { return Err(refuse("blockIO", &no_hierarchy(m, "blkio"))) };
        for w in blkio::v1(&r.block_io) {
            ops.push(Op::WriteAny { files: w.files.iter().map(|f| b.join(f)).collect(), value: w.value, what: w.what });
        }
    }
    if !r.hugepage_limits.is_empty() {
        return Err(refuse("hugepageLimits", &no_hierarchy(m, "hugetlb")));
    }
    if r.net_class_id.is_some() {
        return Err(refuse("network.classID", &no_hierarchy(m, "net_cls")));
    }
    if !r.net_priorities.is_empty() {
        return Err(refuse("network.priorities", &no_hierarchy(m, "net_prio")));
    }
    if !r.unified.is_empty() {
        return Err(refuse("unified", "cgroup v2 files, and this host has cgroup v1"));
    }
    Ok(ops)
}
