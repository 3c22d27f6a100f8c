//! `start ID`: open the exec fifo for reading, which releases init blocked
//! opening it for writing, read what init says once its startContainer hooks
//! ran (`0`, or the failed hook's error), and remove it; then the poststart hooks. `state ID`:
//! the runtime spec's state JSON.

use std::io::Read;
use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::cli::{parse, Global};
use super::state::{State, Status};
use super::to_spec::exec_fifo;
use crate::error::{Result, SysContext};

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("start", args, &[], None)?;
    start(g, p.id("start")?)?;
    Ok(0)
}

pub fn start(g: &Global, id: &str) -> Result<()> {
    let paths = g.paths();
    let st = State::load(&paths, id)?;
    match st.status(&paths) {
        Status::Created => {}
        s => {
            return Err(crate::failed!(
                "cannot start container {id}: it is {} (start works once, on a created container)",
                s.word()
            ))
        }
    }
    let fifo = exec_fifo(&paths, id);
    // Non-blocking: init may have died meanwhile, and then no writer ever comes.
    let f =
        nix::fcntl::open(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .sys(|| format!("open {}", fifo.display()))?;
    let mut file = std::fs::File::from(f);
    loop {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => break,
            Ok(_) if !st.init().alive() => {
                let _ = std::fs::remove_file(&fifo);
                return Err(crate::failed!("cannot start container {id}: its init {} has exited", st.pid));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(crate::error::Error::sys(format!("poll {}", fifo.display()), e)),
        }
    }
    // init writes `0` once its startContainer hooks ran, or a failed hook's
    // error, then closes: read until EOF (blocking now: init is there).
    let _ = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
    let mut said = Vec::new();
    let _ = file.by_ref().take(16 << 10).read_to_end(&mut said);
    std::fs::remove_file(&fifo).sys(|| format!("rm {}", fifo.display()))?;
    match String::from_utf8_lossy(&said).trim_end() {
        "0" => {}
        "" => return Err(crate::failed!("cannot start container {id}: its init {} exited at start", st.pid)),
        e => return Err(crate::failed!("cannot start container {id}: {e}")),
    }
    if let Some(e) = paths_spec(&paths, id) {
        let state = st.spec_state(Status::Running);
        if let Err(err) = super::hooks::run_all("poststart", &e.hooks.poststart, &state) {
            log::warn!("{err}");
        }
    }
    Ok(())
}

/// The container's explicit spec, from its journal.
pub fn paths_spec(paths: &crate::state::Paths, id: &str) -> Option<crate::spec::Explicit> {
    crate::state::Journal::read(paths, id).ok()??.spec()?.explicit.map(|b| *b)
}

pub fn state_main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("state", args, &[], None)?;
    let id = p.id("state")?;
    let paths = g.paths();
    let st = State::load(&paths, id)?;
    let v = st.spec_state(st.status(&paths));
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}
