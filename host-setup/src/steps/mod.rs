//! The bring-up, one file per section of the tutorial, in its order. Each step
//! looks at the spec and the host and returns the concrete actions it will take
//! (action.rs); the engine (plan.rs) journals, runs or explains them.
//!
//! Adding a step: write `steps/NAME.rs` with a `Step` impl (open it with the
//! tutorial's section it does), and put it in `all()` where it belongs.

mod cgroups;
mod dirs;
mod disk;
mod launch;
mod layers;
mod link;
mod netns;
mod network;
#[cfg(test)]
mod tests;
mod userns;

use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;

pub trait Step {
    /// A short name, for logs, `--explain` and HOST_SETUP_FAULT: "netns".
    fn name(&self) -> &'static str;
    /// Whether the step plans and runs under the state dir's global lock (its
    /// decision depends on what other containers are doing).
    fn locked(&self) -> bool {
        false
    }
    /// Whether the container has this step at all (not shown, not locked if not).
    fn applies(&self, _spec: &crate::spec::Spec) -> bool {
        true
    }
    /// The actions this step will take for this container on this host.
    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>>;
}

/// The steps in the tutorial's order (with --userns, the ids first: the dirs
/// and the netns are made for them).
pub fn all() -> Vec<Box<dyn Step>> {
    vec![
        Box::new(layers::Layers),
        Box::new(userns::Userns),
        Box::new(dirs::Dirs),
        Box::new(disk::Disk),
        Box::new(netns::Netns),
        Box::new(link::Link),
        Box::new(network::Lease),
        Box::new(network::Network),
        Box::new(cgroups::Cgroups),
        Box::new(launch::Launch),
    ]
}
