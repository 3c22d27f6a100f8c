//! What tini.rs and tini_says.rs share: Debian's tini as the reference, init run
//! with a pre-exec hook, a process's signal masks. Each includes it with
//! `mod tini_common;` (after `mod dropin;`).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;

use crate::dropin::{direct, run, Outcome};

/// Debian's tini (the `tini` package), the reference for the words.
pub const TINI: &str = "/usr/bin/tini";

/// Runs `init ARGS` with `f` applied in the child between fork and exec.
pub fn with_pre_exec(args: &[&str], f: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static) -> Outcome {
    let mut c = direct(args);
    // SAFETY: the closures given here only make async-signal-safe system calls.
    unsafe { c.pre_exec(f) };
    run(c)
}

/// The SigBlk and SigIgn masks of a process's /proc/PID/status.
pub fn sig_masks(status: &str) -> (u64, u64) {
    let mask = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    (mask("SigBlk:"), mask("SigIgn:"))
}
