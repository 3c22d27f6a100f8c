//! Section 4-1 1)-2) of the tutorial: the container's cgroups and its limits —
//! `mkdir /sys/fs/cgroup/cpu/red; echo 40000 > .../cpu.cfs_quota_us`, the memory
//! limit with swap off — on cgroup v1 or v2, whichever this host has (cgroup/).

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;

pub struct Cgroups;

impl Step for Cgroups {
    fn name(&self) -> &'static str {
        "cgroups"
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        if let Some(e) = &ctx.spec.explicit {
            if let Some(unit) = &e.systemd {
                let crate::cgroup::Cgroups::V2(root) = ctx.cgroups else {
                    return Err(crate::failed!(
                        "--systemd-cgroup: this host has cgroup v1 controllers; this runtime drives systemd on cgroup v2 only (use cgroupfs paths)"
                    ));
                };
                let ops = crate::cgroup::explicit_ops(ctx.cgroups, &e.cgroup_path, &e.resources)?;
                let t = crate::systemd::Transient::new(unit, &ctx.spec.name, root, &e.resources, ops);
                return Ok(vec![Action::Unit(t)]);
            }
            let ops = crate::cgroup::explicit_ops(ctx.cgroups, &e.cgroup_path, &e.resources)?;
            return Ok(ops.into_iter().map(Action::Cgroup).collect());
        }
        let ops = ctx.cgroups.ops(ctx.cgroup_parent, &ctx.spec.name, &ctx.spec.limits);
        Ok(ops.into_iter().map(Action::Cgroup).collect())
    }
}
