//! The cgroup of a container described in full (an OCI bundle): its path as
//! given and the runtime spec's resources, as v1 or v2 files (runc's mapping,
//! libcontainer/cgroups/fs and fs2). What this host cannot limit is refused.

use std::path::{Path, PathBuf};

use super::{devices, Cgroups, Op};
use crate::error::Result;
use crate::spec::Resources;

fn refuse(what: &str, why: &str) -> crate::error::Error {
    crate::failed!("config.json: linux.resources.{what}: {why}")
}

/// The ops that make cgroup `rel` (`default/ID`) and write `r` into it.
pub fn explicit_ops(cg: &Cgroups, rel: &str, r: &Resources) -> Result<Vec<Op>> {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    match cg {
        Cgroups::V1(m) => {
            let mut ops: Vec<Op> =
                cg.dirs(parent, name).into_iter().map(|dir| Op::Mkdir { dir, enable_in: vec![] }).collect();
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
            }
            if r.cpus.is_some() || r.mems.is_some() {
                return Err(refuse("cpu.cpus", "cpusets are not managed by this runtime on cgroup v1"));
            }
            if let (Some(p), Some(pids)) = (r.pids, dir("pids")) {
                ops.push(Op::write(&pids, "pids.max", if p > 0 { p.to_string() } else { "max".into() }));
            }
            if let (false, Some(dev)) = (r.devices.is_empty(), dir("devices")) {
                for rule in &r.devices {
                    ops.push(Op::write(
                        &dev,
                        if rule.allow { "devices.allow" } else { "devices.deny" },
                        rule.v1_line(),
                    ));
                }
                // runc's too: the devices every container's /dev has stay usable.
                ops.extend(devices::ALLOWED.iter().map(|a| Op::write(&dev, "devices.allow", a.v1_line())));
            }
            if !r.unified.is_empty() {
                return Err(refuse("unified", "cgroup v2 files, and this host has cgroup v1"));
            }
            Ok(ops)
        }
        Cgroups::V2(root) => {
            let dir = root.join(rel);
            // Controllers on in every ancestor down to the parent (their subtree_control).
            let mut enable_in: Vec<PathBuf> = vec![];
            let mut at: PathBuf = root.clone();
            for part in Path::new(parent).components() {
                at = at.join(part);
                enable_in.push(at.clone());
            }
            let mut ops =
                vec![Op::Enable { dir: root.clone(), user: dir.clone() }, Op::Mkdir { dir: dir.clone(), enable_in }];
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
            if let Some(s) = r.cpu_shares {
                // runc's conversion of shares (2-262144) to weight (1-10000).
                ops.push(Op::write(&dir, "cpu.weight", 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142));
            }
            if r.cpu_quota.is_some() || r.cpu_period.is_some() {
                let q = r.cpu_quota.map_or("max".to_string(), max);
                ops.push(Op::write(&dir, "cpu.max", format!("{q} {}", r.cpu_period.unwrap_or(100_000))));
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
                let extra = r
                    .devices
                    .iter()
                    .filter(|d| d.allow)
                    .find(|d| !devices::ALLOWED.iter().any(|a| a.v1_line() == d.v1_line()));
                if let Some(d) = extra {
                    return Err(refuse(
                        "devices",
                        &format!("allowing {} is not supported on cgroup v2 by this runtime", d.v1_line()),
                    ));
                }
                ops.push(Op::DeviceFilter(dir.clone()));
            }
            for (k, v) in &r.unified {
                if k.contains('/') || !k.contains('.') {
                    return Err(refuse("unified", &format!("{k:?} is not a cgroup file name")));
                }
                ops.push(Op::write(&dir, k, v));
            }
            Ok(ops)
        }
    }
}
