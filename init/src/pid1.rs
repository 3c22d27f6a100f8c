//! The PID-1 duties (models: tini src/tini.c, catatonit catatonit.c): collect
//! signals with sigtimedwait (src/signals.rs blocks them), forward them to CMD,
//! reap every zombie, and exit with CMD's status; and tini's -s, -p, -w, -e.
//!
//! Phase rule: once CMD runs, init never bails out on an error. Its death ends
//! the container: when a pid namespace's PID 1 exits, the kernel SIGKILLs every
//! other process of the namespace.

use crate::args::ExitCodes;
use crate::exec::{self, Cmd};
use crate::msg::{self, fmt_i64, Error, Line};
use crate::ready;
use crate::signals::{self, Inherited};
use crate::sys::{
    self, Errno, Pid, O_CLOEXEC, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, SIGCHLD, SIGHUP, SIGINT, SIGTERM, WNOHANG,
};

/// Exit code when init itself fails before CMD runs.
pub const EXIT_SETUP: i32 = 125;

/// How init looks after CMD (from the command line and tini's environment).
#[derive(Debug, Default, Clone, Copy)]
pub struct Duties {
    /// -g: forward signals to CMD's process group.
    pub pgroup: bool,
    /// -w: a warning line for each reaped zombie other than CMD.
    pub warn_reap: bool,
    /// -e: CMD's exit codes reported as 0.
    pub remap: ExitCodes,
    /// -s: failing to become a child subreaper is an error, not a warning.
    pub subreaper: bool,
}

/// -p: `sig` is sent to init when its parent dies (PR_SET_PDEATHSIG). A
/// blocked signal is then collected and forwarded to CMD like any other;
/// SIGKILL ends init (and, as PID 1, the container).
pub fn parent_death_signal(sig: i32) -> Result<(), Error<'static>> {
    let mut n = [0; 20];
    msg::debug(&[b"parent-death signal ", fmt_i64(sig as i64, &mut n)]);
    sys::prctl(PR_SET_PDEATHSIG, sig as usize)
        .map_err(|e| Error::new(e, &[b"failed to set up parent death signal: prctl(PR_SET_PDEATHSIG)"]))
}

/// The wait status as a shell reports it: the exit code, or 128+N for a death
/// by signal N.
pub fn exit_code(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff // WIFEXITED: WEXITSTATUS
    } else if sig == 0x7f {
        128 + ((status >> 8) & 0xff) // WIFSTOPPED (never asked for): the stop signal
    } else {
        128 + sig // WIFSIGNALED: WTERMSIG
    }
}

/// What init exits with when CMD ended with wait status `status`: its exit
/// code, or 0 if -e named that code (as tini, also for 128+N).
pub fn final_code(status: i32, remap: &ExitCodes) -> i32 {
    let code = exit_code(status);
    if remap.contains(code) {
        0
    } else {
        code
    }
}

/// When init is not PID 1 (no new pid namespace), orphans would go to the host's
/// init; as a child subreaper they come to init instead, as they would to PID 1
/// (catatonit does so by itself, tini with -s). If that fails (Linux < 3.4, a
/// seccomp filter), init warns as tini does, unless -s makes it an error.
fn become_subreaper(required: bool) -> Result<(), Error<'static>> {
    if sys::getpid() == 1 && !required {
        return Ok(());
    }
    msg::debug(&[b"prctl(PR_SET_CHILD_SUBREAPER)"]);
    let Err(e) = sys::prctl(PR_SET_CHILD_SUBREAPER, 1) else { return Ok(()) };
    if required {
        // tini's words (src/tini.c register_subreaper), in the format of init's errors.
        let err = Error::new(e, &[b"failed to register as child subreaper: prctl(PR_SET_CHILD_SUBREAPER)"]);
        return Err(if e == Errno::EINVAL {
            err.hint("PR_SET_CHILD_SUBREAPER is unavailable on this platform: are you using Linux >= 3.4?")
        } else {
            err
        });
    }
    // The flag survives execve: a parent may have set it before exec'ing init.
    if sys::getpid() != 1 && sys::is_child_subreaper() != Ok(true) {
        // tini's reaper_warning, three lines, with init's name; init already tried
        // to become a subreaper by itself (tini's -s), so what failed is named.
        let mut line = Line::new();
        Error::new(e, &[b"prctl(PR_SET_CHILD_SUBREAPER)"]).write_to(&mut line);
        msg::warn(&[
            b"init is not running as PID 1 and isn't registered as a child subreaper (",
            line.as_bytes(),
            b").\nZombie processes will not be re-parented to init, so zombie reaping won't work.\n\
              To fix the problem, run init as PID 1.",
        ]);
    }
    Ok(())
}

/// Reaps every zombie child (one SIGCHLD may stand for several deaths) and
/// returns the wait status of `main` if it was among them. The main child's exit
/// is detected here, inside the loop, not by a separate waitpid(main): that one
/// would miss it when an orphan's reaping consumed the only SIGCHLD (catatonit #4).
/// With `warn` (-w), one warning line per reaped process other than `main`.
fn reap(main: Pid, warn: bool) -> Option<i32> {
    let mut main_status = None;
    loop {
        match sys::wait4(-1, WNOHANG) {
            Ok((0, _)) | Err(Errno::ECHILD) => return main_status,
            Ok((pid, status)) => {
                let mut a = [0; 20];
                let pid_text = fmt_i64(pid as i64, &mut a);
                msg::debug(&[b"Reaped child with pid: '", pid_text, b"'"]);
                if pid == main {
                    main_status = Some(status);
                } else if warn {
                    // tini's -w line, word for word (tini's own tests look for it).
                    msg::warn(&[b"Reaped zombie process with pid=", pid_text]);
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return main_status,
        }
    }
}

/// Reads the child's exec report: EOF (the CLOEXEC write end closed by a
/// successful execve) is None; 4 bytes are the errno of a failed execve.
fn exec_result(fd: i32) -> Option<Errno> {
    let mut b = [0u8; 4];
    (sys::read_full(fd, &mut b) == Ok(4)).then(|| Errno::new(i32::from_ne_bytes(b)))
}

/// Starts CMD and supervises it until it exits; exits with its status.
pub fn supervise(cmd: &Cmd, inherited: Inherited, ready_fd: Option<i32>, duties: Duties) -> ! {
    if let Err(e) = become_subreaper(duties.subreaper) {
        ready::fail(ready_fd, &e, EXIT_SETUP)
    }
    let [status_r, status_w] = match sys::pipe2(O_CLOEXEC) {
        Ok(fds) => fds,
        Err(e) => ready::fail(ready_fd, &Error::new(e, &[b"pipe2(O_CLOEXEC)"]), EXIT_SETUP),
    };
    let child = match sys::fork() {
        Ok(pid) => pid,
        Err(e) => ready::fail(ready_fd, &Error::new(e, &[b"fork()"]), EXIT_SETUP),
    };
    if child == 0 {
        // The child: every signal is still blocked here, so nothing can
        // interrupt it before the mask is restored right before execve.
        let _ = sys::close(status_r);
        exec::become_foreground();
        signals::restore(inherited);
        exec::close_fds_except(3, status_w); // status_w is CLOEXEC: execve closes it
        let e = exec::execvp(cmd);
        let _ = sys::write_all(status_w, &e.into_raw().to_ne_bytes());
        sys::exit(exec::exec_exit_code(e));
    }
    let _ = sys::close(status_w);
    // As shells do, set the child's group from this side too, so that it exists
    // before the first forwarded signal whichever process runs first
    // (EACCES once the child has exec'd, ESRCH if it is gone: both fine).
    let _ = sys::setpgid(child, child);
    match exec_result(status_r) {
        None => {
            let mut a = [0; 20];
            let pid_text = fmt_i64(child as i64, &mut a);
            msg::info(&[b"Spawned child process '", cmd.name().to_bytes(), b"' with pid '", pid_text, b"'"]);
            ready::ok(ready_fd);
        }
        // The child exits 127/126 and is reaped below like any exit.
        // tini's "exec %s failed: %s", in the format of init's errors.
        Some(e) => ready::error(ready_fd, &Error::new(e, &[b"exec ", cmd.name().to_bytes(), b" failed"])),
    }
    let _ = sys::close(status_r);
    // init's own cwd must not keep a directory busy (catatonit #28); CMD keeps its cwd.
    let _ = sys::chdir(c"/");

    let target = if duties.pgroup { -child } else { child };
    loop {
        match sys::sigwait(signals::blocked_set()) {
            Ok(SIGCHLD) | Err(_) => {} // Err: EINTR, e.g. after init itself was stopped and continued
            Ok(sig) => forward(target, sig),
        }
        if let Some(status) = reap(child, duties.warn_reap) {
            main_exit_info(status);
            sys::exit(final_code(status, &duties.remap));
        }
    }
}

/// tini's INFO line for the main child's end (src/tini.c reap_zombies).
fn main_exit_info(status: i32) {
    let (sig, mut a, mut b) = (status & 0x7f, [0; 20], [0; 32]);
    if sig == 0 {
        let code = fmt_i64(((status >> 8) & 0xff) as i64, &mut a);
        msg::info(&[b"Main child exited normally (with status '", code, b"')"]);
    } else {
        msg::info(&[b"Main child exited with signal (with signal '", msg::signal_name(sig, &mut b), b"')"]);
    }
}

/// kill(2) to CMD (pid) or to its process group (-pid, with -g).
fn forward(target: Pid, sig: i32) {
    if msg::debug_enabled() {
        let mut a = [0; 32];
        msg::debug(&[b"Passing signal: '", msg::signal_name(sig, &mut a), b"'"]);
    }
    // ESRCH: CMD is already gone; its SIGCHLD is on the way.
    let _ = sys::kill(target, sig);
}

/// --pause: no CMD. Stay PID 1, reap whatever is re-parented to us (processes
/// that entered the namespaces later with setns), exit 0 on SIGTERM/SIGINT/SIGHUP.
pub fn pause(ready_fd: Option<i32>, duties: Duties) -> ! {
    if let Err(e) = become_subreaper(duties.subreaper) {
        ready::fail(ready_fd, &e, EXIT_SETUP)
    }
    let _ = sys::chdir(c"/");
    msg::debug(&[b"pause: waiting for SIGTERM, SIGINT or SIGHUP"]);
    ready::ok(ready_fd);
    loop {
        match sys::sigwait(signals::blocked_set()) {
            Ok(SIGTERM) | Ok(SIGINT) | Ok(SIGHUP) => {
                msg::debug(&[b"pause: stop signal, exit 0"]);
                sys::exit(0)
            }
            _ => {}
        }
        reap(0, duties.warn_reap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_mapping() {
        for code in [0, 1, 2, 42, 125, 126, 127, 128, 200, 255] {
            assert_eq!(exit_code(code << 8), code, "exit {code}");
        }
        assert_eq!(exit_code(9), 137); // SIGKILL
        assert_eq!(exit_code(15), 143); // SIGTERM
        assert_eq!(exit_code(11 | 0x80), 139); // SIGSEGV with a core dump
        assert_eq!(exit_code(0x137f), 147); // stopped by SIGSTOP (19)
    }

    #[test]
    fn remapped_exit_codes() {
        let mut remap = ExitCodes::default();
        remap.add(143);
        remap.add(3);
        assert_eq!(final_code(15, &remap), 0, "SIGTERM: 143 remapped");
        assert_eq!(final_code(3 << 8, &remap), 0);
        assert_eq!(final_code(4 << 8, &remap), 4);
        assert_eq!(final_code(9, &remap), 137);
        assert_eq!(final_code(143 << 8, &ExitCodes::default()), 143);
    }
}
