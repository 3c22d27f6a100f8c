//! `kill ID [SIGNAL] [--all]`: a signal (name or number: KILL, SIGKILL, 9;
//! default TERM) to the container's process, or with --all to every process in
//! its cgroup. Only init by pid and start time, never a recycled pid.

use nix::sys::signal::Signal;

use super::cli::{opt, parse, Global};
use super::names;
use super::state::{State, Status};
use crate::error::Result;

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("kill", args, &[opt(&["all", "a"], false)], None)?;
    let id = p.id("kill")?;
    let word = p.args.get(1).map(String::as_str).unwrap_or("TERM");
    let n = names::signal(word)
        .ok_or_else(|| crate::usage!("kill: {word:?} is not a signal (a name or number: KILL, SIGKILL, 9)"))?;
    let sig = Signal::try_from(n).map_err(|_| crate::usage!("kill: signal {n} is not supported"))?;
    let paths = g.paths();
    let st = State::load(&paths, id)?;
    let status = st.status(&paths);
    if status == Status::Stopped {
        return Err(crate::failed!("cannot kill container {id}: it is not running"));
    }
    if p.flag("all") {
        for dir in &st.cgroup_dirs {
            for pid in crate::cgroup::procs(dir) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        }
        return Ok(0);
    }
    st.init().signal(sig)?;
    Ok(0)
}
