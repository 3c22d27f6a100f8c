//! The PID-1 duties (models: tini src/tini.c, catatonit catatonit.c): block
//! signals and collect them with sigtimedwait, forward them to CMD, reap every
//! zombie, and exit with CMD's status.
//!
//! Phase rule: once CMD runs, init never bails out on an error. Its death ends
//! the container: when a pid namespace's PID 1 exits, the kernel SIGKILLs every
//! other process of the namespace.

use crate::exec::{self, Cmd};
use crate::msg::{self, fmt_i64, Error};
use crate::ready;
use crate::sys::{
    self, Errno, Pid, SigSet, O_CLOEXEC, PR_SET_CHILD_SUBREAPER, SIGABRT, SIGBUS, SIGCHLD, SIGFPE, SIGHUP, SIGILL,
    SIGINT, SIGSEGV, SIGSYS, SIGTERM, SIGTRAP, SIGTTIN, SIGTTOU, SIG_DFL, SIG_IGN, WNOHANG,
};

/// Exit code when init itself fails before CMD runs.
pub const EXIT_SETUP: i32 = 125;

const fn bit(sig: i32) -> SigSet {
    1 << (sig - 1)
}

/// The signals init blocks and collects: all of them except
/// - the synchronous ones (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS): blocking those
///   would hide init's own crashes;
/// - SIGTTIN and SIGTTOU, which init ignores instead (a background process
///   touching the terminal must not stop PID 1, and they are not forwarded).
///
/// Blocked signals stay pending until init takes them with sigtimedwait; this
/// also sidesteps the kernel's PID-1 rule (a signal to a namespace's PID 1 that
/// has no handler for it is dropped, which is why an exec'd `sleep` as PID 1
/// ignores SIGTERM): a blocked signal is never dropped.
pub const fn blocked_set() -> SigSet {
    let not = bit(SIGSEGV)
        | bit(SIGBUS)
        | bit(SIGFPE)
        | bit(SIGILL)
        | bit(SIGABRT)
        | bit(SIGTRAP)
        | bit(SIGSYS)
        | bit(SIGTTIN)
        | bit(SIGTTOU);
    !not
}

/// Blocks the signals init collects and ignores SIGTTIN/SIGTTOU; returns the
/// mask init was started with (CMD gets it back).
///
/// SIGCHLD goes back to default: a caller may have left it ignored, which
/// survives execve and makes the kernel reap children by itself, so init would
/// never see CMD's exit status (and CMD gets the default too).
pub fn block_signals() -> SigSet {
    let orig = sys::sigsetmask(blocked_set()).unwrap_or(0);
    let _ = sys::signal_disposition(SIGCHLD, SIG_DFL);
    let _ = sys::signal_disposition(SIGTTIN, SIG_IGN);
    let _ = sys::signal_disposition(SIGTTOU, SIG_IGN);
    orig
}

/// In the child before exec: undo block_signals. An ignored disposition would
/// survive execve (a handled one would not), so SIGTTIN/SIGTTOU go back to default.
pub fn restore_signals(orig_mask: SigSet) {
    let _ = sys::signal_disposition(SIGTTIN, SIG_DFL);
    let _ = sys::signal_disposition(SIGTTOU, SIG_DFL);
    let _ = sys::sigsetmask(orig_mask);
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

/// When init is not PID 1 (no new pid namespace), orphans would go to the host's
/// init; as a child subreaper they come to us instead, as they would to PID 1.
fn become_subreaper() {
    if sys::getpid() != 1 {
        msg::debug(&[b"not PID 1: PR_SET_CHILD_SUBREAPER"]);
        let _ = sys::prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Reaps every zombie child (one SIGCHLD may stand for several deaths) and
/// returns the wait status of `main` if it was among them. The main child's exit
/// is detected here, inside the loop, not by a separate waitpid(main): that one
/// would miss it when an orphan's reaping consumed the only SIGCHLD (catatonit #4).
fn reap(main: Pid) -> Option<i32> {
    let mut main_status = None;
    loop {
        match sys::wait4(-1, WNOHANG) {
            Ok((0, _)) | Err(Errno::ECHILD) => return main_status,
            Ok((pid, status)) => {
                if msg::debug_enabled() {
                    let (mut a, mut b) = ([0; 20], [0; 20]);
                    msg::debug(&[
                        b"reaped pid ",
                        fmt_i64(pid as i64, &mut a),
                        b", exit code ",
                        fmt_i64(exit_code(status) as i64, &mut b),
                    ]);
                }
                if pid == main {
                    main_status = Some(status);
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
    let mut got = 0;
    while got < 4 {
        match sys::read(fd, &mut b[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    (got == 4).then(|| Errno::new(i32::from_ne_bytes(b)))
}

/// Starts CMD and supervises it until it exits; exits with its status.
pub fn supervise(cmd: &Cmd, orig_mask: SigSet, ready_fd: Option<i32>, pgroup: bool) -> ! {
    become_subreaper();
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
        restore_signals(orig_mask);
        exec::close_fds_except(status_w); // status_w is CLOEXEC: execve closes it
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
            if msg::debug_enabled() {
                let mut a = [0; 20];
                msg::debug(&[b"started ", cmd.name().to_bytes(), b" as pid ", fmt_i64(child as i64, &mut a)]);
            }
            ready::ok(ready_fd);
        }
        // The child exits 127/126 and is reaped below like any exit.
        Some(e) => ready::error(ready_fd, &Error::new(e, &[b"exec ", cmd.name().to_bytes()])),
    }
    let _ = sys::close(status_r);
    // init's own cwd must not keep a directory busy (catatonit #28); CMD keeps its cwd.
    let _ = sys::chdir(c"/");

    let target = if pgroup { -child } else { child };
    loop {
        match sys::sigwait(blocked_set()) {
            Ok(SIGCHLD) | Err(_) => {} // Err: EINTR, e.g. after init itself was stopped and continued
            Ok(sig) => forward(target, sig),
        }
        if let Some(status) = reap(child) {
            let code = exit_code(status);
            let mut a = [0; 20];
            msg::debug(&[b"CMD exited, exit code ", fmt_i64(code as i64, &mut a)]);
            sys::exit(code);
        }
    }
}

/// kill(2) to CMD (pid) or to its process group (-pid, with -g).
fn forward(target: Pid, sig: i32) {
    if msg::debug_enabled() {
        let (mut a, mut b) = ([0; 20], [0; 20]);
        msg::debug(&[b"forward signal ", fmt_i64(sig as i64, &mut a), b" to ", fmt_i64(target as i64, &mut b)]);
    }
    // ESRCH: CMD is already gone; its SIGCHLD is on the way.
    let _ = sys::kill(target, sig);
}

/// --pause: no CMD. Stay PID 1, reap whatever is re-parented to us (processes
/// that entered the namespaces later with setns), exit 0 on SIGTERM/SIGINT/SIGHUP.
pub fn pause(ready_fd: Option<i32>) -> ! {
    become_subreaper();
    let _ = sys::chdir(c"/");
    msg::debug(&[b"pause: waiting for SIGTERM, SIGINT or SIGHUP"]);
    ready::ok(ready_fd);
    loop {
        match sys::sigwait(blocked_set()) {
            Ok(SIGTERM) | Ok(SIGINT) | Ok(SIGHUP) => {
                msg::debug(&[b"pause: stop signal, exit 0"]);
                sys::exit(0)
            }
            _ => {}
        }
        reap(0);
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
    fn blocked_set_spares_synchronous_and_tty_signals() {
        let set = blocked_set();
        let has = |s: i32| set & bit(s) != 0;
        for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU] {
            assert!(!has(s), "signal {s} must not be blocked");
        }
        for s in [SIGHUP, SIGINT, SIGTERM, SIGCHLD, sys::SIGUSR1, sys::SIGUSR2, 28 /* WINCH */, 34, 64] {
            assert!(has(s), "signal {s} must be blocked");
        }
    }
}
