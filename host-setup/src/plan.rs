//! The engine of a bring-up, and nothing else: it asks each step (steps/) in the
//! tutorial's order for its actions and hands them, one by one, to an `Apply`:
//!
//! - `Execute` (`up`, `run`) journals each action's record *before* running it,
//!   runs it, and between steps looks for Ctrl-C and injected faults (fault.rs);
//! - `Explain` (`--explain`) renders the same actions as the tutorial's shell
//!   commands and changes nothing.
//!
//! `down` and the recovery of an interrupted `up` are one thing: `teardown` stops
//! the processes and undoes every journal record, newest first (action::undo).

use std::time::{Duration, Instant};

use crate::action::{self, Action, Teardown};
use crate::ctx::{Bins, Ctx, Mode};
use crate::error::{Error, Result, SysContext};
use crate::state::{self, Journal, JournalWriter, Lock, Paths, Proc, Record, Resource, Role};
use crate::{cgroup::Cgroups, fault, preconditions, spec::Spec, steps, stop};

/// What to do with each action of each step.
pub trait Apply {
    /// A step begins.
    fn begin(&mut self, _step: &'static str) -> Result<()> {
        Ok(())
    }
    fn action(&mut self, step: &'static str, a: &Action, ctx: &mut Ctx) -> Result<()>;
    /// The step ended well.
    fn end(&mut self, _step: &'static str) -> Result<()> {
        Ok(())
    }
    /// Whether the actions change the host (then locked steps take the lock).
    fn changes_host(&self) -> bool;
}

/// Every step, in order: its actions, each applied, then what it produced noted.
pub fn walk(ctx: &mut Ctx, apply: &mut dyn Apply) -> Result<()> {
    for step in steps::all().into_iter().filter(|s| s.applies(ctx.spec)) {
        let t0 = Instant::now();
        apply.begin(step.name())?;
        {
            let _lock = match step.locked() && apply.changes_host() {
                true => Some(state::global_lock(ctx.paths)?),
                false => None,
            };
            for a in step.plan(ctx)? {
                apply.action(step.name(), &a, ctx)?;
                a.produce(ctx);
            }
        }
        apply.end(step.name())?;
        log::debug!("step {}: {:.1} ms", step.name(), t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(())
}

/// Journal, then run.
struct Execute;

impl Apply for Execute {
    fn begin(&mut self, step: &'static str) -> Result<()> {
        fault::enter_step(step)
    }
    fn action(&mut self, _step: &'static str, a: &Action, ctx: &mut Ctx) -> Result<()> {
        if let (Some(r), Some(j)) = (a.record(), ctx.journal.as_mut()) {
            j.append(&r)?;
        }
        a.run(ctx)
    }
    fn end(&mut self, _step: &'static str) -> Result<()> {
        fault::leave_step()?;
        match fault::take_interrupt() {
            Some(sig) => Err(Error::Interrupted(sig)),
            None => Ok(()),
        }
    }
    fn changes_host(&self) -> bool {
        true
    }
}

/// Render, change nothing: (step, its shell lines), in order.
#[derive(Default)]
pub struct Explain {
    pub steps: Vec<(&'static str, Vec<String>)>,
}

impl Apply for Explain {
    fn begin(&mut self, step: &'static str) -> Result<()> {
        self.steps.push((step, vec![]));
        Ok(())
    }
    fn action(&mut self, _step: &'static str, a: &Action, _ctx: &mut Ctx) -> Result<()> {
        self.steps.last_mut().expect("begin comes first").1.extend(a.shell());
        Ok(())
    }
    fn changes_host(&self) -> bool {
        false
    }
}

/// Options for bringing a container up.
pub struct Up<'a> {
    pub spec: &'a Spec,
    pub paths: &'a Paths,
    pub cgroup_parent: &'a str,
    pub bins: &'a Bins,
    pub mode: Mode,
    /// Foreground only: the container's own terminal or the pipes we relay.
    pub console: Option<crate::relay::ChildStdio>,
}

impl<'a> Up<'a> {
    fn ctx(&'a self, cgroups: &'a Cgroups, journal: Option<JournalWriter>, lock: Option<&'a mut Lock>) -> Ctx<'a> {
        Ctx {
            spec: self.spec,
            paths: self.paths,
            cgroups,
            cgroup_parent: self.cgroup_parent,
            bins: self.bins,
            mode: self.mode,
            console: self.console,
            journal,
            lock,
            layer_dirs: vec![],
            cgroup_dirs: vec![],
            ids: None,
            unit: None,
            init: None,
            partner_override: None,
            lease: None,
        }
    }
}

/// `--explain`: the actions as the tutorial's shell commands; nothing is changed.
pub fn explain(u: &Up) -> Result<Vec<(&'static str, Vec<String>)>> {
    let cgroups = Cgroups::detect()?;
    let mut ctx = u.ctx(&cgroups, None, None);
    let mut out = Explain::default();
    walk(&mut ctx, &mut out)?;
    Ok(out.steps)
}

/// Bring a container up; returns its init. The caller holds its lock. If a step
/// fails, everything made so far is undone before the error is returned.
pub fn up(u: &Up, lock: &mut Lock) -> Result<Proc> {
    // Ctrl-C, SIGTERM or SIGHUP now: finish the step under way, then undo them all.
    fault::hold_interrupts()?;
    let cgroups = Cgroups::detect()?;
    if let Some(j) = Journal::read(u.paths, &u.spec.name)? {
        if let Some(p) = j.proc(Role::Init).filter(|p| p.alive()) {
            let n = &u.spec.name;
            return Err(crate::precondition!(
                "{n} is already up (init pid {}); use host-setup exec {n} or host-setup down {n}",
                p.pid
            ));
        }
        // An earlier attempt was interrupted, or the container has ended: clean up first.
        log::info!("{}: removing what an earlier run left behind", u.spec.name);
        teardown(u.paths, &u.spec.name, &j, Duration::from_secs(0))?;
    }
    preconditions::check(u.spec, u.paths, &cgroups, u.cgroup_parent, u.bins)?;

    let mut journal = JournalWriter::open(u.paths, &u.spec.name)?;
    journal.append(&Record::Spec {
        spec: Box::new(u.spec.clone()),
        init: u.bins.init.clone(),
        format: state::FORMAT,
    })?;
    let mut ctx = u.ctx(&cgroups, Some(journal), Some(lock));
    if let Err(e) = walk(&mut ctx, &mut Execute) {
        log::debug!("setup failed: {e}; undoing");
        let j = Journal::read(u.paths, &u.spec.name)?.unwrap_or_default();
        if let Err(e2) = teardown(u.paths, &u.spec.name, &j, Duration::from_secs(0)) {
            log::error!("undoing the failed setup of {}: {e2}", u.spec.name);
        }
        return Err(e);
    }
    Ok(ctx.init.expect("the launch step starts init"))
}

/// Whether undoing `records` deletes a veth pair: a link record, or the netns of
/// a container with a network (its undo deletes the container's end first).
fn deletes_veth<'a>(mut records: impl Iterator<Item = &'a Resource>, has_net: bool) -> bool {
    records.any(|r| matches!(r, Resource::Link { .. }) || matches!(r, Resource::Netns(_)) && has_net)
}

/// Undo `records` in their order; the ones that failed, with why.
fn undo_all(records: &[(usize, &Resource)], t: &Teardown) -> Vec<(usize, Error)> {
    let mut failed = vec![];
    for (i, r) in records {
        let t0 = std::time::Instant::now();
        if let Err(e) = action::undo(r, t) {
            failed.push((*i, e));
        }
        // The time each undo took (`down`'s profile: tests/bench/scale's SCALE_PROFILE).
        log::debug!("undo {}: {:.2} ms", Record::Made((*r).clone()).to_line(), t0.elapsed().as_secs_f64() * 1e3);
    }
    failed
}

/// Stop the container's processes and undo every journal record, newest first.
/// Then delete the journal — unless something could not be undone: then the
/// journal keeps exactly those records, for the next `down` to retry.
pub fn teardown(paths: &Paths, name: &str, j: &Journal, grace: Duration) -> Result<()> {
    let mut errors: Vec<Error> = vec![];
    let t0 = std::time::Instant::now();
    if let Some(init) = j.proc(Role::Init) {
        if let Err(e) = stop::stop(init, grace) {
            errors.push(e);
        }
    }
    if let Some(sup) = j.proc(Role::Supervisor) {
        stop::stop_supervisor(sup);
    }
    log::debug!("stop {name}: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3);
    let t = Teardown { spec: j.spec(), paths };
    // Newest first. The container's directory depends on nothing else undone here
    // (the overlay on it went with the mount namespace of init, which is gone)
    // but --disk's tmpfs in it, unmounted first on the same thread.
    // Where the rest waits for a veth's deletion (RCU grace periods, several ms),
    // the directory is removed on a thread of its own meanwhile: its rmdirs wait
    // on the host's filesystem (0.3-4 ms each on ext4 here). Otherwise it comes
    // last, in its place in the order (it is older than all but the layers).
    let (dirs, rest): (Vec<_>, Vec<_>) =
        j.made().rev().enumerate().partition(|(_, r)| matches!(r, Resource::Dir(_) | Resource::Mount(_)));
    let has_net = t.spec.as_ref().is_some_and(|s| s.net.is_some());
    let overlap = !dirs.is_empty() && deletes_veth(rest.iter().map(|(_, r)| *r), has_net);
    let mut failed = std::thread::scope(|s| {
        let beside = overlap.then(|| s.spawn(|| undo_all(&dirs, &t)));
        let mut failed = undo_all(&rest, &t);
        failed.extend(match beside {
            Some(h) => {
                h.join().unwrap_or_else(|_| vec![(0, crate::failed!("removing the container's directory panicked"))])
            }
            None => undo_all(&dirs, &t),
        });
        failed
    });
    failed.sort_by_key(|(i, _)| *i); // newest first, as undone
    let made: Vec<&Resource> = j.made().rev().collect();
    let mut left: Vec<Record> = vec![];
    for (i, e) in failed {
        errors.push(e);
        left.push(Record::Made(made[i].clone()));
    }
    let path = paths.journal(name);
    if errors.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).sys(|| format!("rm {}", path.display())),
            _ => Ok(()),
        };
    }
    // Keep the spec and what is left, oldest first.
    let mut keep: Vec<Record> = j.records.iter().filter(|r| matches!(r, Record::Spec { .. })).cloned().collect();
    left.reverse();
    keep.extend(left);
    Journal::rewrite(&path, &keep)?;
    let first = errors.remove(0);
    Err(if errors.is_empty() { first } else { crate::failed!("{first} (and {} more; run down again)", errors.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_veth_is_deleted_by_a_link_or_a_networked_netns() {
        let (cg, ns) = (Resource::Cgroup("/sys/fs/cgroup/pids/x".into()), Resource::Netns("X".into()));
        let link = Resource::Link { netns: "X".into(), iface: "eth0".into() };
        assert!(deletes_veth([&cg, &link].into_iter(), false), "the pair's maker has a link record");
        assert!(deletes_veth([&cg, &ns].into_iter(), true), "the netns of a container with a network");
        assert!(!deletes_veth([&cg, &ns].into_iter(), false), "run without --address: nothing to overlap");
        assert!(!deletes_veth([&cg].into_iter(), true));
    }
}
