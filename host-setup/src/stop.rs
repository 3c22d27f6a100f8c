//! Stopping a container's processes: SIGTERM to init (which passes it on to the
//! main process), SIGKILL after the grace period. When a pid namespace's init dies,
//! the kernel kills the rest of it. Only processes named in the journal, by pid
//! *and* start time, are ever signalled.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::error::Result;
use crate::state::Proc;
use crate::sys;

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

/// Wait until the process has ended (a zombie counts as ended). A pidfd wakes us
/// the moment it ends; it is opened before `alive` checks the start time, so it
/// cannot name a process that took over a recycled pid. Kernels before 5.3 (no
/// pidfd_open) are polled every 5 ms.
pub fn wait_gone(p: Proc, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let pidfd = sys::pidfd_open(p.pid).ok();
    loop {
        if !p.alive() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match &pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // Readable once it has ended; EINTR or a timeout: look again.
                let _ = nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}
