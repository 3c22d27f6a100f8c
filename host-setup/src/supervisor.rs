//! Starting init, and the process that stays behind as its parent.
//!
//! In the foreground (`run`) host-setup itself is init's parent: it spawns init,
//! waits for its ready report, and later waits for it, forwarding signals.
//!
//! In the background (`up`) host-setup forks a supervisor: it detaches (a new
//! session, its own stdio to console.log), starts init with stdout and stderr on
//! a pipe (stdin: an empty one), reports init's readiness back through a pipe,
//! and then stays as init's parent until init exits, copying the pipe into the
//! log with its size limit (logs.rs) and journalling the exit status and the
//! cgroup's OOM kills (`status` shows them). No fd of the host's reaches init.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::unistd::Pid;

use crate::contract::{self, InitArgs};
use crate::ctx::{Ctx, Mode};
use crate::error::{Result, SysContext};
use crate::relay::ChildStdio;
use crate::state::{Journal, Proc, Record, Role};
use crate::{forward, logs, spawn, sys};

/// Start init as `args` says; returns it once it reported ready.
pub fn start(ctx: &mut Ctx, args: &InitArgs) -> Result<Proc> {
    match ctx.mode {
        Mode::Foreground => {
            // Block the signals we forward before the child exists, so none is lost.
            forward::block()?;
            let init = spawn_ready(ctx, args, ctx.console)?;
            Ok(init)
        }
        Mode::Background => start_supervised(ctx, args),
        Mode::Detached => {
            // The wait for `start`: init opens this fifo for writing, which blocks
            // until `start` opens it for reading.
            if let Some(fifo) = ctx.spec.explicit.as_ref().and_then(|e| e.inside.start_fifo.as_ref()) {
                // 0622 as runc makes it: init opens it (reopening an O_PATH fd it took
                // before the pivot) after it became the process's user, who may not be
                // root. Only through that fd: the container's dir is root's, 0700.
                let mode = nix::sys::stat::Mode::from_bits_truncate(0o622);
                nix::unistd::mkfifo(fifo, mode).sys(|| format!("mkfifo {}", fifo.display()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(fifo, std::fs::Permissions::from_mode(0o622))
                    .sys(|| format!("chmod 622 {}", fifo.display()))?;
            }
            spawn_ready(ctx, args, ctx.console)
        }
    }
}

fn record(ctx: &mut Ctx, r: Record) -> Result<()> {
    match ctx.journal.as_mut() {
        Some(j) => j.append(&r),
        None => Ok(()),
    }
}

fn oom_kills(ctx: &Ctx) -> u64 {
    ctx.cgroups.usage(&ctx.cgroup_dirs).oom_kills
}

/// Spawn init, journal it, and wait for its ready report. If it fails, init has
/// exited: its exit code is journalled, and a command that could not start is
/// reported as the shell would (126/127).
fn spawn_ready(ctx: &mut Ctx, args: &InitArgs, console: Option<ChildStdio>) -> Result<Proc> {
    let unit = ctx.unit.clone();
    let gate = unit.as_ref().map(|t| move |pid: i32| t.start(pid));
    let (pid, ready) = spawn::spawn(args, console, gate.as_ref().map(|g| g as &dyn Fn(i32) -> Result<()>))?;
    let init = Proc::of(pid.as_raw())?;
    record(ctx, Record::Started { role: Role::Init, proc: init })?;
    let mut asked = std::time::Instant::now();
    // PIVOT_SYNC: the runtime's hooks while init waits before its pivot; their
    // time is not init's (each hook has its own timeout).
    let explicit = ctx.spec.explicit.as_deref().filter(|e| e.inside.pivot_sync);
    let mut at_pivot = |e: &crate::spec::Explicit| {
        let t = std::time::Instant::now();
        let r = crate::hooks::at_pivot(e, pid.as_raw());
        asked += t.elapsed();
        r
    };
    let mut hooks = explicit.map(|e| move || at_pivot(e));
    let hooks = hooks.as_mut().map(|f| f as &mut spawn::AtPivot);
    if let Err(e) = spawn::wait_ready_at(ready, spawn::READY_TIMEOUT, hooks) {
        // Silent past the timeout: init may be stuck (a createContainer hook
        // without a timeout, or one longer than ours) and would then wait on the
        // exec fifo for ever. Our unreaped child: its pid cannot be another's.
        if asked.elapsed() >= spawn::READY_TIMEOUT {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let code = sys::wait_exit(pid).unwrap_or(-1);
        let oom_kills = oom_kills(ctx);
        record(ctx, Record::Exited { code, oom_kills })?;
        // init wrote the reason on its stderr too, but that is a pipe or a pty no
        // one relays yet (relay.rs, tty.rs): host-setup says it.
        return Err(contract::not_ready(e, code, false));
    }
    record(ctx, Record::Ready)?;
    Ok(init)
}

/// Exec `init --wait-child PID FD OOM_FILE LOG_PIPE DIR_FD NAME MAX_SIZE MAX_FILES`
/// (init/src/waiter.rs): the same process, so still init's parent, which waits for
/// init and appends the same `exited` record to the journal (FD, kept open across
/// the exec), and meanwhile copies LOG_PIPE into the log (its stdout, the file
/// NAME in DIR_FD, rotated there) — as a few pages of init (~80 KB resident)
/// instead of a forked host-setup (1.6 MB, of which ~250 KB its own). Returns only
/// if the exec failed.
fn become_waiter(ctx: &Ctx, args: &InitArgs, init: Proc, log: &LogPipe) -> Result<std::convert::Infallible> {
    let journal = ctx.journal.as_ref().ok_or_else(|| crate::failed!("no journal to record init's exit in"))?;
    let oom = ctx.cgroups.oom_file(&ctx.cgroup_dirs).unwrap_or_else(|| "/dev/null".into());
    let argv = [
        args.init_bin.display().to_string(),
        init::flag::WAIT_CHILD.to_string(),
        init.pid.to_string(),
        journal.raw_fd().to_string(),
        oom.display().to_string(),
        log.read.as_raw_fd().to_string(),
        log.dir.as_raw_fd().to_string(),
        logs::FILE.to_string(),
        ctx.spec.log.max_size.to_string(),
        ctx.spec.log.max_files.to_string(),
    ];
    let what = || format!("exec {} {} {}", argv[0], argv[1], argv[2..].join(" "));
    let c_argv = sys::cstrings(&argv)?;
    for fd in [journal.raw_fd(), log.read.as_raw_fd(), log.dir.as_raw_fd()] {
        sys::keep_on_exec(fd).map_err(|e| crate::error::Error::sys(format!("fcntl({fd}, F_SETFD, 0)"), e))?;
    }
    let e = nix::unistd::execv(&c_argv[0], &c_argv).unwrap_err();
    Err(crate::error::Error::sys(what(), e))
}

/// The supervisor's side of the main process's output: the pipe's read end, and
/// the container's directory, where the log is (root's; no process inside holds it).
struct LogPipe {
    read: OwnedFd,
    dir: OwnedFd,
}

/// In the supervisor: its own stdin /dev/null and stdout/stderr the log file
/// (0600, opened here, appended to), and for init three pipe ends: an empty
/// stdin (EOF at once, as /dev/null) and one pipe for stdout and stderr.
fn log_pipe(ctx: &Ctx) -> Result<(LogPipe, [OwnedFd; 2])> {
    let dir_path = ctx.paths.container(&ctx.spec.name);
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let dir = nix::fcntl::open(&dir_path, flags, nix::sys::stat::Mode::empty())
        .sys(|| format!("open {}", dir_path.display()))?;
    let path = dir_path.join(logs::FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .sys(|| format!("open {}", path.display()))?;
    let null = std::fs::File::open("/dev/null").sys(|| "open /dev/null".into())?;
    for (from, to) in [(null.as_raw_fd(), 0), (file.as_raw_fd(), 1), (file.as_raw_fd(), 2)] {
        sys::place_fd(from, to, false).map_err(|e| crate::error::Error::sys(format!("dup2 {from} {to}"), e))?;
    }
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).sys(|| "pipe2 for the container's log".into())?;
    let (stdin, _closed) = nix::unistd::pipe2(OFlag::O_CLOEXEC).sys(|| "pipe2 for the container's stdin".into())?;
    Ok((LogPipe { read, dir }, [stdin, write]))
}

fn start_supervised(ctx: &mut Ctx, args: &InitArgs) -> Result<Proc> {
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?;
    let console = ctx.paths.console(&ctx.spec.name);
    let Some(_supervisor) = sys::fork("fork the supervisor")? else {
        drop(report_r);
        // A daemon now: none of the parent's held signals, no fault points.
        sys::reset_signals_in_child();
        std::env::remove_var("HOST_SETUP_FAULT");
        // The supervisor must not hold the container's lock for its whole life.
        if let Some(lock) = ctx.lock.as_mut() {
            lock.release_in_child();
        }
        let mut report = std::fs::File::from(report_w);
        let result = (|| -> Result<(Proc, LogPipe)> {
            nix::unistd::setsid().sys(|| "setsid".into())?;
            let (log, [stdin, out]) = log_pipe(ctx)?;
            // Keep only the journal, the report pipe and the log's of whatever we inherited.
            let journal_fd = ctx.journal.as_ref().map(|j| j.raw_fd()).unwrap_or(-1);
            let ours = [journal_fd, report.as_raw_fd(), log.read.as_raw_fd(), log.dir.as_raw_fd()];
            sys::close_fds_except(&[&ours[..], &[stdin.as_raw_fd(), out.as_raw_fd()]].concat());
            // Out of the caller's cgroup (a systemd unit kills what is left in its own).
            crate::supervisor_cgroup::enter(ctx)?;
            record(ctx, Record::Started { role: Role::Supervisor, proc: Proc::of(std::process::id() as i32)? })?;
            let stdio = ChildStdio::Fds([stdin.as_raw_fd(), out.as_raw_fd(), out.as_raw_fd()]);
            // init has them now; ours close here: our write end open would keep the pipe from EOF.
            spawn_ready(ctx, args, Some(stdio)).map(|init| (init, log))
        })();
        let code = match result {
            Ok((init, log)) => {
                let _ = writeln!(report, "ok {}", init.pid);
                drop(report);
                let Err(e) = become_waiter(ctx, args, init, &log);
                // No one copies the pipe now: let the container's writes fail (EPIPE)
                // rather than block once it is full.
                drop(log);
                log::info!("{e}: waiting for init as host-setup instead");
                sys::release_free_heap();
                let code = sys::wait_exit(Pid::from_raw(init.pid)).unwrap_or(-1);
                log::info!("{}: init exited with {code}", ctx.spec.name);
                let oom_kills = oom_kills(ctx);
                let _ = record(ctx, Record::Exited { code, oom_kills });
                0
            }
            Err(e) => {
                let _ = writeln!(report, "code {}", e.exit_code());
                let _ = report.write_all(contract::error_line(&e).as_bytes());
                1
            }
        };
        std::process::exit(code);
    };
    drop(report_w);
    let mut text = String::new();
    let _ = std::fs::File::from(report_r).read_to_string(&mut text);
    if text.lines().any(|l| l.starts_with("error\t")) {
        let code = text.lines().find_map(|l| l.strip_prefix("code ")?.parse().ok()).unwrap_or(1);
        let err = contract::parse_ready(&text).expect_err("an error line");
        return Err(contract::not_ready(err, code, false));
    }
    let pid: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("ok ")?.trim().parse().ok())
        .ok_or_else(|| crate::failed!("the supervisor died before init was ready; see {}", console.display()))?;
    // Re-read the journal for the start time the supervisor recorded.
    let j = Journal::read(ctx.paths, &ctx.spec.name)?.unwrap_or_default();
    Ok(j.proc(Role::Init).filter(|p| p.pid == pid).unwrap_or(Proc { pid, start: 0 }))
}
