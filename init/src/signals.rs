//! The signal state: what init blocks and ignores for itself, and what CMD gets
//! back. Used by both ways of starting CMD (pid1's fork, exec's --exec).
//!
//! CMD must start with exactly the signal mask and dispositions init itself was
//! started with (tini's rule): init's own blocking and ignoring must not leak
//! into it. The mask is per thread and inherited across fork and execve. Of the
//! dispositions, a handler is reset to default by execve, but SIG_IGN survives
//! it: whatever init ignores, CMD would ignore too unless it is put back.

use crate::sys::{
    self, SigSet, SIGABRT, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP, SIGTTIN, SIGTTOU, SIG_DFL,
    SIG_IGN,
};

pub const fn bit(sig: i32) -> SigSet {
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
/// ignores SIGTERM): a blocked signal is never dropped, even an ignored one.
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

/// The dispositions init changes for itself, and to what:
/// - SIGCHLD to default: a caller may have left it ignored, which makes the
///   kernel reap children by itself, so init would never see CMD's status;
/// - SIGTTIN, SIGTTOU ignored (see [`blocked_set`]).
const CHANGED: [(i32, usize); 3] = [(SIGCHLD, SIG_DFL), (SIGTTIN, SIG_IGN), (SIGTTOU, SIG_IGN)];

/// What init was started with, for CMD: the mask, and which of the signals
/// init changes were ignored (at execve every disposition is SIG_DFL or SIG_IGN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inherited {
    pub mask: SigSet,
    pub ignored: SigSet,
}

/// Blocks the signals init collects and sets its own dispositions; returns
/// what it was started with.
pub fn take_over() -> Inherited {
    let mask = sys::sigsetmask(blocked_set()).unwrap_or(0);
    let mut ignored = 0;
    for (sig, disposition) in CHANGED {
        if sys::signal_disposition(sig, disposition) == Ok(SIG_IGN) {
            ignored |= bit(sig);
        }
    }
    Inherited { mask, ignored }
}

/// In the child, right before execve: undo [`take_over`], dispositions first
/// (while everything is still blocked), then the mask.
pub fn restore(inherited: Inherited) {
    for (sig, _) in CHANGED {
        let was = if inherited.ignored & bit(sig) != 0 { SIG_IGN } else { SIG_DFL };
        let _ = sys::signal_disposition(sig, was);
    }
    let _ = sys::sigsetmask(inherited.mask);
}

/// The kernel's signal names on x86_64 without "SIG", by number (1..=31).
const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
    "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO",
    "PWR", "SYS",
];

/// `-p`'s argument: a name as tini takes it (`SIGKILL`), the same without
/// "SIG" (`KILL`), or a number from 1 to 64.
pub fn by_name(s: &[u8]) -> Option<i32> {
    if !s.is_empty() && s.len() <= 2 && s.iter().all(u8::is_ascii_digit) {
        let n = s.iter().fold(0, |n, d| n * 10 + (d - b'0') as i32);
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.strip_prefix(b"SIG").unwrap_or(s);
    NAMES.iter().position(|n| n.as_bytes() == name).map(|i| i as i32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{SIGHUP, SIGINT, SIGKILL, SIGTERM, SIGUSR1, SIGUSR2};

    #[test]
    fn blocked_set_spares_synchronous_and_tty_signals() {
        let set = blocked_set();
        let has = |s: i32| set & bit(s) != 0;
        for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU] {
            assert!(!has(s), "signal {s} must not be blocked");
        }
        for s in [SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, 28 /* WINCH */, 34, 64] {
            assert!(has(s), "signal {s} must be blocked");
        }
    }

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(by_name(b"SIGKILL"), Some(SIGKILL));
        assert_eq!(by_name(b"KILL"), Some(SIGKILL));
        assert_eq!(by_name(b"SIGHUP"), Some(SIGHUP));
        assert_eq!(by_name(b"SIGUSR1"), Some(SIGUSR1));
        assert_eq!(by_name(b"SIGSYS"), Some(SIGSYS));
        assert_eq!(by_name(b"SIGWINCH"), Some(28));
        assert_eq!(by_name(b"15"), Some(SIGTERM));
        assert_eq!(by_name(b"64"), Some(64));
        for bad in [&b""[..], b"0", b"65", b"100", b"SIG", b"sigkill", b"SIGKILLX", b"SIGRTMIN", b"-9"] {
            assert_eq!(by_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn take_over_and_restore_round_trip() {
        // In this (test) process: ignore SIGTTOU, block SIGUSR2, then take over and restore.
        let before_mask = sys::sigsetmask(bit(SIGUSR2)).unwrap();
        let before_ttou = sys::signal_disposition(SIGTTOU, SIG_IGN).unwrap();
        let before_chld = sys::signal_disposition(SIGCHLD, SIG_DFL).unwrap();
        let got = take_over();
        assert_eq!(got, Inherited { mask: bit(SIGUSR2), ignored: bit(SIGTTOU) });
        let unblockable = bit(crate::sys::SIGKILL) | bit(crate::sys::SIGSTOP);
        assert_eq!(sys::sigsetmask(blocked_set()).unwrap(), blocked_set() & !unblockable);
        restore(got);
        assert_eq!(sys::signal_disposition(SIGTTOU, SIG_DFL), Ok(SIG_IGN), "SIGTTOU stays ignored");
        assert_eq!(sys::signal_disposition(SIGTTIN, SIG_DFL), Ok(SIG_DFL), "SIGTTIN back to default");
        assert_eq!(sys::sigsetmask(before_mask), Ok(bit(SIGUSR2)));
        let _ = sys::signal_disposition(SIGTTOU, before_ttou);
        let _ = sys::signal_disposition(SIGCHLD, before_chld);
    }
}
