//! The commands that bring a container up and take it down, around the engine
//! (plan.rs): the per-container lock, `--explain`, the foreground wait of `run`,
//! and what `up` and `down` print.

use std::path::PathBuf;
use std::time::Duration;

use crate::ctx::{Bins, Mode};
use crate::error::Result;
use crate::plan::{self, Up};
use crate::relay::{ChildStdio, Pipes};
use crate::spec::Spec;
use crate::state::{Journal, JournalWriter, Lock, Paths, Record, Role};
use crate::{forward, net, tty};

fn lock(paths: &Paths, name: &str) -> Result<Lock> {
    Lock::acquire(paths, name, || eprintln!("host-setup: waiting for another host-setup working on {name}"))
}

pub fn up(paths: &Paths, parent: &str, spec: &Spec, init: Option<PathBuf>, explain: bool, mode: Mode) -> Result<i32> {
    let bins = Bins::locate(init)?;
    // `run` on a terminal: the container gets one of its own (tty.rs says why).
    // Without one, pipes we relay (relay.rs): never our own fds 0-2.
    let term = if mode == Mode::Foreground && !explain { tty::new_if_interactive()? } else { None };
    let pipes = if mode == Mode::Foreground && !explain && term.is_none() { Some(Pipes::new()?) } else { None };
    let console = match (&term, &pipes) {
        (Some(t), _) => Some(ChildStdio::Tty(std::os::fd::AsRawFd::as_raw_fd(&t.slave))),
        (None, p) => p.as_ref().map(Pipes::child),
    };
    let u = Up { spec, paths, cgroup_parent: parent, bins: &bins, mode, console };
    // --explain writes nothing anywhere, so it takes no lock: the lock file (and the
    // state dir and containers/ that Lock::acquire makes for it) would be its only
    // trace. It reads the host as it is; an `up` under way may change what it shows.
    if explain {
        return explain_up(&u);
    }
    let mut lock = lock(paths, &spec.name)?;
    let res = up_locked(&u, &mut lock, term, pipes);
    lock.finish();
    res
}

fn explain_up(u: &Up) -> Result<i32> {
    // A script: bash runs it as it is (tests/explain_runs.rs proves it).
    println!("# host-setup up {} --explain: run it with bash -e, on a host where it is not up", u.spec.name);
    for (step, lines) in plan::explain(u)? {
        println!("# step {step}");
        for l in lines {
            println!("{l}");
        }
    }
    Ok(0)
}

fn up_locked(u: &Up, lock: &mut Lock, term: Option<tty::Terminal>, pipes: Option<Pipes>) -> Result<i32> {
    let (spec, paths) = (u.spec, u.paths);
    let init = plan::up(u, lock)?;
    match u.mode {
        Mode::Background => {
            let linked = match &spec.net {
                Some(n) => match (&n.peer, net::link_status(&spec.netns, &n.iface)) {
                    (_, Ok(Some(_))) => format!(", {}/{} on {}", n.addr, n.prefix_len, n.iface),
                    (Some(p), _) => format!(", {}/{} on {} once {p} is up", n.addr, n.prefix_len, n.iface),
                    (None, _) => format!(", {}/{} (no peer yet)", n.addr, n.prefix_len),
                },
                None => match crate::network::membership(paths, spec) {
                    Some(m) => format!(", {} on {} (network {})", m.address.unwrap_or_default(), m.iface, m.network),
                    None => String::new(),
                },
            };
            println!("{} is up: init pid {}, netns {}{linked}", spec.name, init.pid, spec.netns);
            Ok(0)
        }
        // hsrun's create (src/oci/) calls plan::up itself.
        Mode::Detached => Ok(0),
        Mode::Foreground => {
            // We are init's parent: wait for it, passing on the signals we get.
            let init = nix::unistd::Pid::from_raw(init.pid);
            let code = match (term, pipes) {
                (Some(t), _) => {
                    drop(t.slave); // init has it; the terminal goes when the container does
                    tty::relay(&t.master, init)
                }
                (None, Some(p)) => p.relay(init),
                (None, None) => forward::wait(init),
            };
            let j = Journal::read(paths, &spec.name)?.unwrap_or_default();
            let cg = crate::cgroup::Cgroups::detect()?;
            let oom_kills = cg.usage(&j.cgroup_dirs()).oom_kills;
            if let Ok(code) = code {
                let mut w = JournalWriter::open(paths, &spec.name)?;
                w.append(&Record::Exited { code, oom_kills })?;
            }
            let j = Journal::read(paths, &spec.name)?.unwrap_or_default();
            plan::teardown(paths, &spec.name, &j, Duration::from_secs(0))?;
            code
        }
    }
}

/// `down NAME...`: each container on a thread of its own (each has its own lock
/// and journal, as two `down` commands at once would), so that their waits — init
/// ending, a veth's deletion, rmdirs — overlap. What each did is printed in the
/// order given; the first error is returned once all have finished, the others
/// printed.
pub fn down_all(paths: &Paths, names: &[String], grace: Duration) -> Result<()> {
    // A name given twice is taken down once (two threads would wait for each other).
    let mut seen = std::collections::HashSet::new();
    let names: Vec<&String> = names.iter().filter(|n| seen.insert(*n)).collect();
    if let [name] = names[..] {
        return down(paths, name, grace).map(|said| println!("{said}"));
    }
    let results: Vec<Result<String>> = std::thread::scope(|s| {
        let threads: Vec<_> = names.iter().map(|n| s.spawn(move || down(paths, n, grace))).collect();
        threads
            .into_iter()
            .zip(&names)
            .map(|(t, n)| t.join().unwrap_or_else(|_| Err(crate::failed!("down {n}: the thread panicked"))))
            .collect()
    });
    let mut first = None;
    for r in results {
        match r {
            Ok(said) => println!("{said}"),
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => eprintln!("host-setup: {e}"),
        }
    }
    first.map_or(Ok(()), Err)
}

/// Take one container down; what to print about it.
fn down(paths: &Paths, name: &str, grace: Duration) -> Result<String> {
    // Nothing of it anywhere: say so without creating anything (not even the lock).
    if !paths.journal(name).exists() && !paths.lock(name).exists() {
        return Ok(format!("{name} is not up: nothing to do"));
    }
    let lock = lock(paths, name)?;
    let Some(j) = Journal::read(paths, name)? else {
        lock.finish();
        return Ok(format!("{name} is not up: nothing to do"));
    };
    let was = j.proc(Role::Init).is_some_and(|p| p.alive());
    let res = plan::teardown(paths, name, &j, grace);
    lock.finish();
    res?;
    Ok(format!("{name} is down{}", if was { "" } else { " (it had stopped already)" }))
}
