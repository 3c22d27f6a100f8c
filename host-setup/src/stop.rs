//! Stopping a container's processes: SIGTERM to init (which passes it on to the
//! main process), SIGKILL after the grace period. When a pid namespace's init dies,
//! the kernel kills the rest of it. Only processes named in the journal, by pid
//! *and* start time, are ever signalled.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::Result;
use crate::state::Proc;

pub fn stop(init: Proc, grace: Duration) -> Result<()> {
    if !init.alive() {
        return Ok(());
    }
    if !grace.is_zero() {
        log::debug!("kill -TERM {}", init.pid);
        init.signal(Signal::SIGTERM)?;
        if wait_gone(init, grace) {
            return Ok(());
        }
        log::info!("init {} did not end within {} s of SIGTERM: SIGKILL", init.pid, grace.as_secs());
    }
    init.signal(Signal::SIGKILL)?;
    if wait_gone(init, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(crate::failed!("init {} is still there 5 s after SIGKILL", init.pid))
    }
}

/// The supervisor journals init's exit status and ends right after init: give it
/// a moment, then SIGKILL it.
pub fn stop_supervisor(sup: Proc) {
    if !wait_gone(sup, Duration::from_secs(5)) {
        let _ = sup.signal(Signal::SIGKILL);
        wait_gone(sup, Duration::from_secs(2));
    }
}

/// Wait until the process has ended (a zombie counts as ended).
pub fn wait_gone(p: Proc, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !p.alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
