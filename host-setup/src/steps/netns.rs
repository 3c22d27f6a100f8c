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
        Ok(vec![Action::Net(Op::AddNetns(ns.clone())), Action::Net(Op::LoopbackUp(ns.clone()))])
    }
}
