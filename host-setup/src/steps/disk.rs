//! Not in the tutorial (`--disk SIZE`): a limit on what the container writes. Its
//! overlay upper and work dirs go on a tmpfs of that size of their own, mounted in
//! the container's directory (disk.rs: why not a project quota on this kernel).

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::disk::Tmpfs;
use crate::error::Result;

pub struct Disk;

impl Step for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn applies(&self, spec: &crate::spec::Spec) -> bool {
        spec.disk.is_some()
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let bytes = ctx.spec.disk.unwrap_or_default();
        Ok(vec![Action::Disk(Tmpfs::new(ctx.paths, ctx.spec, bytes))])
    }
}
