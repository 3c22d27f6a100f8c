//! Messages without `core::fmt` (it would triple the binary): a fixed-size line
//! buffer, decimal numbers, errno text, the `Error` every setup step returns,
//! and the stderr output by verbosity level.
//!
//! Format of every error, the same as host-setup's own:
//! `init: <step>(<path>...): <ERRNO>: <description>[; <hint>]`, lower-case, no
//! trailing period, e.g.
//! `init: pivot_root(/merge, put_old): EINVAL: invalid argument; "/" is shared`.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::sys::{self, Errno};

/// Longest line init prints: room for two paths of PATH_MAX; longer text is cut.
const LINE_MAX: usize = 8192 + 256;

/// A line of output built on the stack, written with a single write(2) so that
/// lines from init and from CMD do not interleave mid-line.
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    pub const fn new() -> Self {
        Line { buf: [0; LINE_MAX], len: 0 }
    }

    /// Appends `s`, silently cutting what does not fit.
    pub fn push(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self
    }

    pub fn num(&mut self, n: i64) -> &mut Self {
        let mut b = [0u8; 20];
        self.push(fmt_i64(n, &mut b))
    }

    /// `ENOENT: no such file or directory` (the syscalls crate's names and texts).
    pub fn errno(&mut self, e: Errno) -> &mut Self {
        match e.name_and_description() {
            Some((name, desc)) => {
                self.push(name.as_bytes()).push(b": ");
                let d = desc.as_bytes();
                // "No such file" -> "no such file", but "I/O error" and "RFS ..." stay.
                if d.len() >= 2 && d[0].is_ascii_uppercase() && d[1].is_ascii_lowercase() {
                    self.push(&[d[0].to_ascii_lowercase()]).push(&d[1..])
                } else {
                    self.push(d)
                }
            }
            None => self.push(b"errno ").num(e.into_raw() as i64),
        }
    }

    /// Appends `s` as one field of a tab-separated line: tabs and newlines
    /// (possible in paths) become spaces, so they cannot end the field or the line.
    pub fn field(&mut self, s: &[u8]) -> &mut Self {
        for &b in s {
            self.push(&[if b == b'\t' || b == b'\n' { b' ' } else { b }]);
        }
        self
    }

    /// Ends the line with '\n', over its last byte if it is full (a cut line
    /// still ends with a newline).
    pub fn end(&mut self) -> &mut Self {
        if self.len == LINE_MAX {
            self.len -= 1;
        }
        self.push(b"\n")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Decimal text of `n` in `out`.
pub fn fmt_u64(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}

/// Decimal text of `n`, with a '-' when negative.
pub fn fmt_i64(n: i64, out: &mut [u8; 20]) -> &[u8] {
    let len = fmt_u64(n.unsigned_abs(), out).len();
    if n >= 0 {
        return &out[20 - len..];
    }
    // |i64::MIN| has 19 digits, so there is always room for the sign.
    out[19 - len] = b'-';
    &out[19 - len..]
}

/// A failed step: what was attempted (pieces joined, e.g. `["mkdir(", dir, "/put_old)"]`),
/// the errno, and a hint when the usual cause is known ("" otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error<'a> {
    pub what: [&'a [u8]; 5],
    pub errno: Errno,
    pub hint: &'static str,
}

impl<'a> Error<'a> {
    /// `what` holds at most 5 pieces; more are dropped.
    pub fn new(errno: Errno, what: &[&'a [u8]]) -> Self {
        let mut w: [&[u8]; 5] = [b""; 5];
        for (slot, piece) in w.iter_mut().zip(what) {
            *slot = piece;
        }
        Error { what: w, errno, hint: "" }
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    /// Appends `<what>: <ERRNO>: <description>[; <hint>]` to `line` (without
    /// the errno part for errno 0: a failure no system call reported).
    pub fn write_to(&self, line: &mut Line) {
        for piece in self.what {
            line.push(piece);
        }
        if self.errno.into_raw() != 0 {
            line.push(b": ").errno(self.errno);
        }
        if !self.hint.is_empty() {
            line.push(b"; ").push(self.hint.as_bytes());
        }
    }
}

// ---- output ----------------------------------------------------------------

/// Verbosity levels, as tini's (default 1, each -v one more); errors are
/// always printed.
pub const WARN: u8 = 1;
pub const INFO: u8 = 2;
pub const DEBUG: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(WARN);

/// Same switch as host-setup's env_logger: RUST_LOG mentioning debug or trace.
pub fn debug_wanted(rust_log: Option<&[u8]>) -> bool {
    rust_log.is_some_and(|v| v.windows(5).any(|w| w == b"debug" || w == b"trace"))
}

/// 0: errors only; 1 (WARN, the default): and warnings; 2 (INFO): and CMD's
/// start and end; 3 (DEBUG): and every step, signal and reaped process.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed)
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

pub fn debug_enabled() -> bool {
    enabled(DEBUG)
}

/// `init: <pieces>` on stderr. Errors writing to stderr are ignored: there is
/// nowhere left to report them.
pub fn eprint(pieces: &[&[u8]]) {
    let mut line = Line::new();
    line.push(b"init: ");
    for p in pieces {
        line.push(p);
    }
    line.end();
    let _ = sys::write_all(2, line.as_bytes());
}

/// `[<label> init (<pid>)] <pieces>` on stderr if the verbosity reaches `level`:
/// tini's layout (`[WARN  tini (PID)] `, src/tini.c PRINT_WARNING) with init's
/// name, so that what filters tini's lines filters init's; errors keep the
/// `init: <step>: <ERRNO>` format of eprint. tini writes INFO and DEBUG to
/// stdout, mixed with CMD's; init keeps all of its lines on stderr.
fn log(level: u8, label: &[u8; 5], pieces: &[&[u8]]) {
    if enabled(level) {
        let mut line = Line::new();
        line.push(b"[").push(label).push(b" init (").num(sys::getpid() as i64).push(b")] ");
        for p in pieces {
            line.push(p);
        }
        line.end();
        let _ = sys::write_all(2, line.as_bytes());
    }
}

/// `[WARN  init (PID)] <pieces>` (verbosity 1, the default, or more).
pub fn warn(pieces: &[&[u8]]) {
    log(WARN, b"WARN ", pieces)
}

/// `[INFO  init (PID)] <pieces>` (verbosity 2: -v, or more).
pub fn info(pieces: &[&[u8]]) {
    log(INFO, b"INFO ", pieces)
}

/// `[DEBUG init (PID)] <pieces>` (verbosity 3: -vv, or RUST_LOG=debug).
pub fn debug(pieces: &[&[u8]]) {
    log(DEBUG, b"DEBUG", pieces)
}

/// strsignal(3)'s text for `sig` as glibc words it (tini prints these), e.g.
/// `Terminated` for 15; `Real-time signal N` from SIGRTMIN (34, glibc's) on.
pub fn signal_name(sig: i32, buf: &mut [u8; 32]) -> &[u8] {
    const NAMES: [&str; 31] = [
        "Hangup",
        "Interrupt",
        "Quit",
        "Illegal instruction",
        "Trace/breakpoint trap",
        "Aborted",
        "Bus error",
        "Floating point exception",
        "Killed",
        "User defined signal 1",
        "Segmentation fault",
        "User defined signal 2",
        "Broken pipe",
        "Alarm clock",
        "Terminated",
        "Stack fault",
        "Child exited",
        "Continued",
        "Stopped (signal)",
        "Stopped",
        "Stopped (tty input)",
        "Stopped (tty output)",
        "Urgent I/O condition",
        "CPU time limit exceeded",
        "File size limit exceeded",
        "Virtual timer expired",
        "Profiling timer expired",
        "Window changed",
        "I/O possible",
        "Power failure",
        "Bad system call",
    ];
    if (1..=31).contains(&sig) {
        return NAMES[sig as usize - 1].as_bytes();
    }
    let (text, n): (&[u8], i32) =
        if (34..=64).contains(&sig) { (b"Real-time signal ", sig - 34) } else { (b"Unknown signal ", sig) };
    let mut d = [0u8; 20];
    let digits = fmt_i64(n as i64, &mut d);
    let len = text.len() + digits.len();
    buf[..text.len()].copy_from_slice(text);
    buf[text.len()..len].copy_from_slice(digits);
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Error) -> String {
        let mut l = Line::new();
        e.write_to(&mut l);
        String::from_utf8(l.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn numbers() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(42, &mut b), b"42");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
        assert_eq!(fmt_i64(-1, &mut b), b"-1");
        assert_eq!(fmt_i64(137, &mut b), b"137");
        assert_eq!(fmt_i64(i64::MIN, &mut b), b"-9223372036854775808");
        assert_eq!(fmt_i64(i64::MAX, &mut b), b"9223372036854775807");
    }

    #[test]
    fn errno_text_is_lower_case_but_keeps_acronyms() {
        let mut l = Line::new();
        l.errno(Errno::ENOENT);
        assert_eq!(l.as_bytes(), b"ENOENT: no such file or directory");
        let mut l = Line::new();
        l.errno(Errno::EIO);
        assert_eq!(l.as_bytes(), b"EIO: I/O error");
        let mut l = Line::new();
        l.errno(Errno::new(4000));
        assert_eq!(l.as_bytes(), b"errno 4000");
    }

    #[test]
    fn error_names_step_path_errno_and_hint() {
        let e = Error::new(Errno::EINVAL, &[b"pivot_root(", b"/var/lib/c/red/merge", b", put_old)"])
            .hint("\"/\" or new_root is shared");
        assert_eq!(
            text(e),
            "pivot_root(/var/lib/c/red/merge, put_old): EINVAL: invalid argument; \"/\" or new_root is shared"
        );
        let e = Error::new(Errno::ENOENT, &[b"exec ", b"/bin/nope"]);
        assert_eq!(text(e), "exec /bin/nope: ENOENT: no such file or directory");
        let e = Error::new(Errno::new(0), &[b"no errno"]).hint("a hint");
        assert_eq!(text(e), "no errno; a hint");
    }

    #[test]
    fn fields_and_line_ends() {
        let mut l = Line::new();
        l.field(b"a\tb\nc").push(b"\t").field(b"d").end();
        assert_eq!(l.as_bytes(), b"a b c\td\n");
        let mut full = Line::new();
        full.push(&[b'x'; LINE_MAX]).end();
        assert_eq!(full.as_bytes().len(), LINE_MAX);
        assert_eq!(full.as_bytes().last(), Some(&b'\n'));
    }

    #[test]
    fn long_lines_are_cut_not_overflowed() {
        let mut l = Line::new();
        let big = [b'x'; 5000];
        l.push(&big).push(&big).push(&big);
        assert_eq!(l.as_bytes().len(), LINE_MAX);
    }

    #[test]
    fn signal_names_are_glibcs_strsignal() {
        extern "C" {
            fn strsignal(sig: i32) -> *const core::ffi::c_char;
        }
        for sig in (1..=31).chain(34..=64) {
            // SAFETY: strsignal returns a NUL-terminated string (this test is single-threaded for it).
            let want = unsafe { core::ffi::CStr::from_ptr(strsignal(sig)) }.to_bytes().to_vec();
            let mut b = [0; 32];
            assert_eq!(signal_name(sig, &mut b), &want[..], "signal {sig}");
        }
        let mut b = [0; 32];
        assert_eq!(signal_name(65, &mut b), b"Unknown signal 65");
        assert_eq!(signal_name(i32::MIN, &mut b), b"Unknown signal -2147483648");
    }

    #[test]
    fn rust_log_switch() {
        assert!(debug_wanted(Some(b"debug")));
        assert!(debug_wanted(Some(b"host_setup=trace,info")));
        assert!(debug_wanted(Some(b"init=debug")));
        assert!(!debug_wanted(Some(b"info")));
        assert!(!debug_wanted(Some(b"")));
        assert!(!debug_wanted(None));
    }
}
