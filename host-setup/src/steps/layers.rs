//! Sections 1 and 2 of the tutorial, "myroot" and "tools": the image layers,
//! built from the host's binaries and the libraries they need (`cp` + `ldd`), or
//! taken from the cache when nothing they are made of has changed.

use super::Step;
use crate::action::{Action, LayerUse};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::layers::{self, Builder};
use crate::spec::Layer;

pub struct Layers;

impl Step for Layers {
    fn name(&self) -> &'static str {
        "layers"
    }

    // From planning to pruning: a layer dir another host-setup has just been given
    // must be in its journal before anyone may prune it.
    fn locked(&self) -> bool {
        true
    }

    // A container described in full has a plain directory as its root instead.
    fn applies(&self, spec: &crate::spec::Spec) -> bool {
        spec.explicit.is_none()
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let b = Builder::new(ctx.paths.layers(), ctx.bins.own_dir.clone());
        let mut actions = vec![];
        for l in &ctx.spec.layers {
            actions.push(Action::Layer(match l {
                Layer::Builtin(n) => {
                    let m = layers::builtin(n).ok_or_else(|| crate::failed!("no built-in layer named {n}"))?;
                    // --explain prints every file: a full plan; `up` needs only the
                    // directory, from the memo when it still holds (layers/memo.rs).
                    LayerUse::Build(if ctx.journal.is_some() { b.plan_to_use(&m)? } else { b.plan(&m)? })
                }
                Layer::Dir(d) => LayerUse::Dir(d.clone()),
            }));
        }
        actions.push(Action::PruneLayers);
        Ok(actions)
    }
}
