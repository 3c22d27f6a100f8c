//! Not in the tutorial (`--userns`): the host ids the container's ids will be —
//! the lowest free range of 65536 from /etc/subuid and /etc/subgid's lines for
//! `host-setup`, or the default pool (src/userns/). Under the state dir's lock,
//! and journalled before anything uses it, so two containers coming up at once
//! never get the same range, and `down` frees it with the journal.

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::userns::{self, Pool};

pub struct Userns;

impl Step for Userns {
    fn name(&self) -> &'static str {
        "userns"
    }

    fn locked(&self) -> bool {
        true
    }

    fn applies(&self, spec: &crate::spec::Spec) -> bool {
        spec.userns
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let pool = Pool::load()?;
        let used = userns::claims::used(ctx.paths, &ctx.spec.name)?;
        Ok(vec![Action::Ids(userns::allocate(&pool, &used)?, pool.source)])
    }
}
