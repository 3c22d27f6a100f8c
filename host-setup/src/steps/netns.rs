//! Section 3 1) of the tutorial: `ip netns add RED`, and its loopback up. Then the
//! sysctls of the container's own netns (not in the tutorial: Docker sets the same).

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::net::sysctl::{At, DEFAULT_DISABLE_IPV6, PING_GROUP_RANGE, UNPRIVILEGED_PORT_START};
use crate::net::{Op, Sysctl};

pub struct Netns;

impl Step for Netns {
    fn name(&self) -> &'static str {
        "netns"
    }

    // A peer coming up at the same time sees this namespace either not at all or
    // whole (the file, then the bind mount): the link step holds the same lock.
    fn locked(&self) -> bool {
        true
    }

    // A container described in full may join a namespace or keep the host's.
    fn applies(&self, spec: &crate::spec::Spec) -> bool {
        spec.explicit.as_ref().map_or(true, |e| e.namespaces.net == crate::spec::Ns::New)
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let ns = &ctx.spec.netns;
        if ctx.spec.explicit.is_some() {
            // runc's: a new namespace gets its loopback up, and nothing else.
            return Ok(vec![Action::Net(Op::AddNetns(ns.clone())), Action::Net(Op::LoopbackUp(ns.clone()))]);
        }
        // Not undone: they die with the netns (net/sysctl.rs, At::Netns).
        let set = |s: Sysctl| Action::Net(Op::Sysctl { set: s, at: At::Netns(ns.clone()) });
        let mut actions = vec![Action::Net(Op::AddNetns(ns.clone())), Action::Net(Op::LoopbackUp(ns.clone()))];
        // Ports below 1024 open to anyone in this netns, as Docker does: binding them
        // takes CAP_NET_BIND_SERVICE in the user namespace that owns the netns (the
        // host's), which root inside a user namespace lacks (`httpd -p 80`: EACCES).
        // The netns is the container's alone, so the ports are its own.
        actions.push(set(Sysctl::new(UNPRIVILEGED_PORT_START, "0")));
        // A user namespace: the netns stays the host's, where the container's root has
        // no CAP_NET_RAW; ping then opens an ICMP datagram socket, which the kernel
        // allows to the gids in this namespace's ping_group_range (default: none).
        if let Some(ids) = ctx.ids {
            let (first, last) = (ids.gid, ids.gid + (ids.count - 1));
            actions.push(set(Sysctl::new(PING_GROUP_RANGE, format!("{first} {last}"))));
        }
        // On a bridge network (IPv4 only), no IPv6 on the link the network step makes
        // next (it takes the namespace's default; lo, made already, keeps ::1), as
        // Docker does. With it, each new container's link-local address sent DAD,
        // MLD and router solicitations to the bridge, which floods each to every
        // port: at ~500 containers those bursts overflowed the kernel's per-CPU
        // receive backlog (netdev_max_backlog, 1,000 packets), and now and then a new
        // container's first packet was dropped (docs/performance.md).
        // (A kernel without IPv6, ipv6.disable=1, has no such file: nothing to do.)
        if ctx.spec.join.is_some() && std::path::Path::new("/proc/sys/net/ipv6").exists() {
            actions.push(set(Sysctl::new(DEFAULT_DISABLE_IPV6, "1")));
        }
        Ok(actions)
    }
}
