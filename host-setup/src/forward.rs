//! Passing signals on to what runs in a container (`run`, `exec`): host-setup
//! waits for its child and forwards what it gets instead of reacting to it.

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::error::Result;
use crate::sys;

/// The signals host-setup passes on (SIGCHLD only wakes it up).
pub fn signals() -> SigSet {
    sys::sigset(&[
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGCHLD,
    ])
}

/// Block them in this process, before forking the child, so that none is lost.
pub fn block() -> Result<()> {
    sys::block(&signals())
}

/// Wait for `child` while passing on every signal of `signals()` to it. The caller
/// has blocked them (`block`). Returns its exit code (128+N for signal N).
pub fn wait(child: Pid) -> Result<i32> {
    let set = signals();
    loop {
        // The child may have exited before we got here: check first, then sleep.
        if let Some(code) = sys::try_wait(child)? {
            return Ok(code);
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                log::debug!("forward {sig} to {child}");
                let _ = nix::sys::signal::kill(child, sig);
            }
        }
    }
}
