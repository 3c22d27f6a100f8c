//! Section 3 1) of the tutorial: `ip netns add RED`, and its loopback up.

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::net::Op;

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

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let ns = &ctx.spec.netns;
        let mut actions = vec![Action::Net(Op::AddNetns(ns.clone())), Action::Net(Op::LoopbackUp(ns.clone()))];
        // --userns: the namespace stays the host's, where the container's root has
        // no CAP_NET_RAW; ping then opens an ICMP datagram socket, which the kernel
        // allows to the gids in this namespace's ping_group_range (default: none).
        if let Some(ids) = ctx.ids {
            let (first, last) = (ids.gid, ids.gid + (ids.count - 1));
            actions.push(Action::Net(Op::PingGroups { netns: ns.clone(), first, last }));
        }
        Ok(actions)
    }
}
