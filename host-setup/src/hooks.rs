//! The hooks host-setup runs on the host (runtime-spec "POSIX-platform Hooks"):
//! each with the container's state as JSON on its stdin, its env and args as
//! given, killed at its timeout. A failing prestart or createRuntime hook fails
//! `create` (they run while init waits before its pivot: `at_pivot`); a failing
//! poststart or poststop one is reported only. Its stderr
//! is kept for the error, as runc's (init runs createContainer and
//! startContainer hooks the same way: init/src/hooks.rs).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::spec::{Explicit, Hook};

/// PIVOT_SYNC (init/src/pivotsync.rs): init, PID `pid` on the host, waits with
/// its mounts made, before its createContainer hooks and its pivot: the runtime
/// runs prestart, then createRuntime, in the runtime's namespaces (runtime-spec
/// "Lifecycle" step 5-6). prestart's state says `created` (runtime-tools'
/// hooks_stdin asserts it; runc says `creating`), createRuntime's `creating`.
pub fn at_pivot(e: &Explicit, pid: i32) -> Result<()> {
    let state = |status: &str| -> serde_json::Value {
        let Some([head, middle, tail]) = &e.inside.hook_state else { return serde_json::Value::Null };
        serde_json::from_str(&format!("{head}{status}{middle}{pid}{tail}")).unwrap_or_default()
    };
    run_all("prestart", &e.hooks.prestart, &state("created"))?;
    run_all("createRuntime", &e.hooks.create_runtime, &state("creating"))
}

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
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| crate::failed!("{what}: {}", crate::error::io_text(&e)))?;
    // The hook's stderr, read meanwhile so that a talkative hook never blocks
    // on a full pipe; the first STDERR_MAX bytes are kept.
    let stderr = child.stderr.take().map(|mut r| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut r).take(STDERR_MAX).read_to_end(&mut kept);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
            kept
        })
    });
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(crate::failed!("{what}: wait: {}", crate::error::io_text(&e))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill(); // our own child
            let _ = child.wait();
            return Err(crate::failed!("{what}: killed after its timeout of {} s", h.timeout.unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    // (A child the hook left running may hold its stderr open: the join waits
    // for it, as runc's Wait does.)
    let text = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let detail = match (status.code(), text.trim_end()) {
        (Some(c), "") => format!("exit status {c}"),
        (Some(c), t) => format!("exit status {c}, stderr: {t}"),
        (None, _) => status.to_string(),
    };
    Err(crate::failed!("{what}: {detail}"))
}

/// What is kept of a failed hook's stderr for its error.
const STDERR_MAX: u64 = 2048;
