//! Sections 4-1 3) to 4-2 5) of the tutorial: `unshare -m -u -i -fp nsenter
//! --net=/var/run/netns/RED`, then, inside, joining the cgroups, the overlay mount,
//! /proc, pivot_root, the old root detached (the tutorial's `umount -l put_old`) and the hostname. host-setup clones init
//! into the new namespaces (spawn.rs); init does the rest from inside (init/src/).

use super::Step;
use crate::action::Action;
use crate::contract::{InitArgs, Userns};
use crate::contract_run::RunLaunch;
use crate::contract_spec::ExplicitLaunch;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::net;

pub struct Launch;

impl Step for Launch {
    fn name(&self) -> &'static str {
        "launch"
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let (p, spec) = (ctx.paths, ctx.spec);
        if let Some(e) = &spec.explicit {
            // The root as it is (init binds it), the namespaces and records as given.
            return Ok(vec![Action::Launch(InitArgs {
                init_bin: ctx.bins.init.clone(),
                image_empty: p.image(&spec.name),
                cgroup_dirs: ctx.cgroup_dirs.clone(),
                // A systemd unit's cgroup exists only once init is in it (spawn.rs's gate).
                born_in_cgroup: ctx.cgroups.version() == 2 && ctx.cgroup_dirs.len() == 1 && e.systemd.is_none(),
                netns: spec.netns.clone().into(),
                rootfs: e.root.clone(),
                lower: vec![],
                upper: Default::default(),
                work: Default::default(),
                hostname: e.hostname.clone().unwrap_or_default(),
                command: spec.command.clone(),
                pid1: spec.pid1,
                contain: false,
                seccomp: spec.seccomp.clone(),
                // A new user namespace: the config's maps, written by spawn.rs.
                userns: e.id_map.clone().map(|ids| Userns { ids, mount_points: vec![] }),
                explicit: Some(ExplicitLaunch::new(e)),
                run: None,
            })]);
        }
        Ok(vec![Action::Launch(InitArgs {
            init_bin: ctx.bins.init.clone(),
            image_empty: p.image(&spec.name),
            cgroup_dirs: ctx.cgroup_dirs.clone(),
            born_in_cgroup: ctx.cgroups.version() == 2 && ctx.cgroup_dirs.len() == 1,
            netns: net::netns_path(&spec.netns),
            rootfs: p.merge(&spec.name),
            lower: ctx.layer_dirs.clone(),
            upper: crate::disk::upper(p, spec),
            work: crate::disk::work(p, spec),
            hostname: spec.hostname.clone(),
            command: spec.command.clone(),
            pid1: spec.pid1,
            contain: !spec.privileged,
            seccomp: spec.seccomp.clone(),
            userns: ctx.ids.map(|ids| Userns {
                ids: ids.into(),
                mount_points: (0..ctx.layer_dirs.len()).map(|i| p.lower(&spec.name, i)).collect(),
            }),
            explicit: None,
            run: spec.run.as_ref().map(|r| Box::new(RunLaunch::new(r, ctx.ids.is_some(), ctx.layer_dirs.len()))),
        })])
    }
}
