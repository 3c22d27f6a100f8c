//! The hooks host-setup runs on the host (runtime-spec "POSIX-platform Hooks"):
//! each with the container's state as JSON on its stdin, its env and args as
//! given, killed at its timeout. A failing createRuntime or createContainer hook
//! fails `create`; a failing poststart or poststop one is reported only.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::spec::Hook;

pub fn run_all(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    for h in hooks {
        run(kind, h, state)?;
    }
    Ok(())
}

fn run(kind: &str, h: &Hook, state: &serde_json::Value) -> Result<()> {
    let what = format!("{kind} hook {}", h.path);
    let mut cmd = Command::new(&h.path);
    if let Some((first, rest)) = h.args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
        cmd.args(rest);
    }
    cmd.env_clear();
    for e in &h.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| crate::failed!("{what}: {}", crate::error::io_text(&e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(crate::failed!("{what}: {s}")),
            Ok(None) => {}
            Err(e) => return Err(crate::failed!("{what}: wait: {}", crate::error::io_text(&e))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill(); // our own child
            let _ = child.wait();
            return Err(crate::failed!("{what}: timed out after {} s", h.timeout.unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
