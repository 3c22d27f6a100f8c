//! `delete ID [--force]`: the journal's teardown, as `down` (`--force` kills a
//! running container first; without it a running one is refused), then the
//! poststop hooks. Nothing is left: the container's dir, cgroups, netns bind.

use std::time::Duration;

use super::cli::{opt, parse, Global};
use super::state::{State, Status};
use crate::error::Result;
use crate::plan;
use crate::state::{Journal, Lock};

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("delete", args, &[opt(&["force", "f"], false)], None)?;
    delete(g, p.id("delete")?, p.flag("force"))?;
    Ok(0)
}

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let paths = g.paths();
    if !super::state::exists(&paths, id) {
        // runc's `delete --force` of an unknown container succeeds: engines call it
        // to be sure (podman's cleanup runs it after its own delete, and fails on 1).
        if force {
            return Ok(());
        }
        return Err(crate::failed!("container {id} does not exist"));
    }
    let lock = Lock::acquire(&paths, id, || eprintln!("hsrun: waiting for another hsrun working on {id}"))?;
    // No state yet (a create killed half-way): the journal alone says what to undo.
    let st = State::load(&paths, id).ok();
    if let Some(st) = &st {
        let s = st.status(&paths);
        // The runtime spec: deleting a container that is not stopped is an error
        // (runc deletes a created one anyway; the validation suite checks the spec).
        if s != Status::Stopped && !force {
            lock.finish();
            return Err(crate::failed!(
                "cannot delete container {id}: it is {}; stop it first or use --force",
                s.word()
            ));
        }
    }
    // A paused container is thawed first: on v1 a frozen task does not act on
    // SIGKILL until it is thawed, so the teardown's kill would leave it, frozen,
    // in cgroups that cannot be removed (runc thaws after its kill, too).
    if let Some(st) = st.as_ref().filter(|st| st.status(&paths) == Status::Paused) {
        if let Err(err) = super::pause::set(&st.cgroup_dirs, false) {
            log::warn!("{err}");
        }
    }
    let j = Journal::read(&paths, id)?.unwrap_or_default();
    let explicit = j.spec().and_then(|s| s.explicit).map(|b| *b);
    let res = plan::teardown(&paths, id, &j, Duration::from_secs(0));
    // Whatever the journal did not name (a create killed before its first record).
    let _ = crate::state::remove_tree(&paths.container(id));
    lock.finish();
    res?;
    if let (Some(e), Some(st)) = (explicit, st) {
        if let Err(err) = super::hooks::run_all("poststop", &e.hooks.poststop, &st.spec_state(Status::Stopped)) {
            log::warn!("{err}");
        }
    }
    Ok(())
}
