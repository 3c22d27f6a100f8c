//! Section 4-1 5) of the tutorial, the directories for the overlay: the upper dir
//! that takes the container's writes (the tutorial's /redfs/container), overlay's
//! work dir, and the merge dir where the overlay is mounted and pivot_root goes —
//! all in the container's own directory, which `down` removes.

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;

pub struct Dirs;

impl Step for Dirs {
    fn name(&self) -> &'static str {
        "dirs"
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let (p, n) = (ctx.paths, &ctx.spec.name);
        if ctx.spec.explicit.is_some() {
            // No overlay: the directory holds the exec fifo and the netns file.
            return Ok(vec![Action::Dirs { root: p.container(n), subdirs: vec![], owned: vec![], owner: None }]);
        }
        let mut subdirs = vec![p.upper(n), p.work(n), p.merge(n)];
        if ctx.ids.is_some() {
            // The mount points of the idmapped layers (init attaches them there).
            subdirs.push(p.container(n).join("lower"));
            subdirs.extend((0..ctx.layer_dirs.len()).map(|i| p.lower(n, i)));
        }
        let owned = vec![p.upper(n), p.work(n)];
        Ok(vec![Action::Dirs { root: p.container(n), subdirs, owned, owner: ctx.ids }])
    }
}
