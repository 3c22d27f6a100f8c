//! Section 4-1 5) of the tutorial, the directories for the overlay: the upper dir
//! that takes the container's writes (the tutorial's /redfs/container), overlay's
//! work dir, and the merge dir where the overlay is mounted and pivot_root goes —
//! all in the container's own directory, which `down` removes.

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::spec::Ns;
use crate::userns::IdMap;

pub struct Dirs;

impl Step for Dirs {
    fn name(&self) -> &'static str {
        "dirs"
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let (p, n) = (ctx.paths, &ctx.spec.name);
        if let Some(e) = &ctx.spec.explicit {
            // No overlay: the directory holds the exec fifo and the netns file. In a
            // new user namespace init (its root, a host uid with no rights over
            // root's files) must search it to reach the fifo: group its root's gid.
            let root = match &e.namespaces.user {
                Ns::Join(path) => crate::userns::joined_root(path),
                _ => e.id_map.as_ref().and_then(|m| m.root()),
            };
            let owner = root.map(|(uid, gid)| IdMap { uid, gid, count: 1 });
            return Ok(vec![Action::Dirs { root: p.container(n), subdirs: vec![p.image(n)], owned: vec![], owner }]);
        }
        let mut subdirs = vec![p.upper(n), p.work(n), p.merge(n), p.image(n)];
        if ctx.ids.is_some() {
            // The mount points of the idmapped layers (init attaches them there).
            subdirs.push(p.container(n).join("lower"));
            subdirs.extend((0..ctx.layer_dirs.len()).map(|i| p.lower(n, i)));
        }
        let owned = vec![p.upper(n), p.work(n)];
        Ok(vec![Action::Dirs { root: p.container(n), subdirs, owned, owner: ctx.ids }])
    }
}
