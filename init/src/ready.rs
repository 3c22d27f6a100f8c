//! The ready protocol on `--ready-fd N` (host-setup reads the fd until EOF):
//!
//! - `ok\n`, then EOF: CMD was exec'd successfully (or, with --pause, setup is done);
//! - `error: <message>\n`, then EOF: setup or exec failed; init exits 125, 126 or 127;
//! - EOF alone: init died before it could say anything (e.g. a usage error, exit 2).
//!
//! With --exec, `ok\n` is written just before execve and the fd closes on exec
//! (it is CLOEXEC); a failed execve then adds `error: ...\n` after the `ok`.
//! The fd never reaches CMD: it is made CLOEXEC at startup and closed before exec.

use crate::msg::{self, Error, Line};
use crate::sys;

/// Writes `ok\n` and closes the fd: EOF tells the reader there is nothing more.
pub fn ok(fd: Option<i32>) {
    if let Some(fd) = fd {
        let _ = sys::write_all(fd, b"ok\n");
        let _ = sys::close(fd);
    }
}

/// Writes `ok\n` and leaves the fd open (--exec: execve will close it).
pub fn ok_before_exec(fd: Option<i32>) {
    if let Some(fd) = fd {
        let _ = sys::write_all(fd, b"ok\n");
    }
}

/// Reports `err`: `init: <message>` on stderr, `error: <message>\n` on the ready
/// fd, which is then closed.
pub fn error(fd: Option<i32>, err: &Error) {
    let mut line = Line::new();
    err.write_to(&mut line);
    msg::eprint(&[line.as_bytes()]);
    if let Some(fd) = fd {
        let mut out = Line::new();
        out.push(b"error: ").push(line.as_bytes()).push(b"\n");
        let _ = sys::write_all(fd, out.as_bytes());
        let _ = sys::close(fd);
    }
}

/// Reports `err` as above and exits with `code`.
pub fn fail(fd: Option<i32>, err: &Error, code: i32) -> ! {
    error(fd, err);
    sys::exit(code)
}
