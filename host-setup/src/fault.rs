//! Interruptions, real and injected, during `up`.
//!
//! Real: SIGINT, SIGTERM and SIGHUP are held (blocked) while a container is being
//! set up, and looked at between steps: the step under way finishes, everything
//! made so far is undone, and host-setup exits 128+N. A SIGKILL cannot be held:
//! the journal still names everything, and the next `down` or `up` removes it.
//!
//! Injected, for the recovery tests: `HOST_SETUP_FAULT=STEP:WHEN:ACTION`, where
//! STEP is a step's name (layers, dirs, netns, link, lease, network, cgroups, launch), WHEN is
//! `before` (the step), `recorded` (after its first journal record, before the
//! thing is made) or `after` (the step), and ACTION is `fail` (the step returns an
//! error), `kill` (host-setup SIGKILLs itself there) or `interrupt` (it sends
//! itself SIGINT there, as a Ctrl-C would) or `pause` (it waits there, up to a
//! minute, for a real SIGINT, SIGTERM or SIGHUP, which then interrupts the setup as
//! it would anywhere: a test's signal arrives at a known point).
//!
//! Every point passed is logged at debug level (`fault point STEP:WHEN`): with
//! `RUST_LOG=debug` a clean `up` lists the points that exist for its container, and
//! tests/faults.rs builds its matrix from that list.

use std::sync::Mutex;

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Error, Result};

/// The signals that interrupt a setup.
const INTERRUPTS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn interrupts() -> SigSet {
    crate::sys::sigset(&INTERRUPTS)
}

/// Hold the interrupting signals until `take_interrupt` looks at them.
pub fn hold_interrupts() -> Result<()> {
    interrupts().thread_block().map_err(|e| Error::sys("sigprocmask(SIG_BLOCK, INT TERM HUP)", e))
}

/// A held SIGINT/SIGTERM/SIGHUP, if one arrived (it is consumed).
pub fn take_interrupt() -> Option<Signal> {
    crate::sys::take_pending(&interrupts())
}

struct Current {
    step: &'static str,
    recorded: bool,
}

static CURRENT: Mutex<Current> = Mutex::new(Current { step: "", recorded: false });

/// The step `name` begins (and the `before` fault point).
pub fn enter_step(name: &'static str) -> Result<()> {
    *CURRENT.lock().unwrap() = Current { step: name, recorded: false };
    point(name, "before")
}

/// The step that is running ends well (the `after` fault point).
pub fn leave_step() -> Result<()> {
    let step = std::mem::take(&mut CURRENT.lock().unwrap().step);
    if step.is_empty() {
        return Ok(());
    }
    point(step, "after")
}

/// A journal record was written (the `recorded` fault point, once per step).
pub fn recorded() -> Result<()> {
    let step = {
        let mut c = CURRENT.lock().unwrap();
        if c.step.is_empty() || c.recorded {
            return Ok(());
        }
        c.recorded = true;
        c.step
    };
    point(step, "recorded")
}

fn point(step: &str, when: &str) -> Result<()> {
    log::debug!("fault point {step}:{when}");
    let Ok(spec) = std::env::var("HOST_SETUP_FAULT") else { return Ok(()) };
    let mut it = spec.splitn(3, ':');
    let (Some(s), Some(w), Some(action)) = (it.next(), it.next(), it.next()) else { return Ok(()) };
    if s != step || w != when {
        return Ok(());
    }
    log::warn!("HOST_SETUP_FAULT: {action} at {step}:{when}");
    match action {
        "kill" => {
            let _ = nix::sys::signal::raise(Signal::SIGKILL);
            unreachable!("SIGKILL")
        }
        "interrupt" => {
            let _ = nix::sys::signal::raise(Signal::SIGINT);
            Ok(())
        }
        "pause" => {
            // Taken, then raised again: still held, it is pending when the step ends.
            if let Some(sig) = crate::sys::wait_signal(&interrupts(), std::time::Duration::from_secs(60)) {
                let _ = nix::sys::signal::raise(sig);
            }
            Ok(())
        }
        _ => Err(crate::failed!("injected fault at {step}:{when} (HOST_SETUP_FAULT)")),
    }
}
