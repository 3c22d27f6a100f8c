//! The ready protocol on `--ready-fd N` (host-setup reads the fd until EOF and
//! parses it in host-setup/src/launch.rs, `parse_ready`). One line, then EOF:
//!
//! - `ok\n`: CMD was exec'd successfully (or, with --pause, setup is done);
//! - `error\t<errno>\t<what>\t<hint>\n`: setup or exec failed, and init exits
//!   125, 126 or 127. `<errno>` is the errno as a decimal number, 0 if none;
//!   `<what>` the step and its path, e.g. `pivot_root(/x/merge, put_old)`;
//!   `<hint>` the usual cause, possibly empty. Tabs and newlines inside a field
//!   are sent as spaces; a line longer than 8448 bytes is cut (still ending in
//!   a newline). host-setup prints it as its own errors:
//!   `<what>: <ERRNO>: <description>; <hint>`, the same text init writes to
//!   stderr after `init: `;
//! - EOF alone: init died before it could say anything (e.g. a usage error, exit 2).
//!
//! With --exec, `ok\n` is written just before execve and the fd closes on exec
//! (it is CLOEXEC); a failed execve then adds an `error` line after the `ok`.
//! The fd never reaches CMD: it is made CLOEXEC at startup and closed before exec.

use crate::msg::{self, fmt_i64, Error, Line};
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

/// The `error` line for `err`.
pub fn error_line(err: &Error, line: &mut Line) {
    let mut n = [0; 20];
    line.push(b"error\t").push(fmt_i64(err.errno.into_raw() as i64, &mut n)).push(b"\t");
    for piece in err.what {
        line.field(piece);
    }
    line.push(b"\t").field(err.hint.as_bytes()).end();
}

/// Reports `err`: `init: <what>: <ERRNO>: <description>[; <hint>]` on stderr,
/// the `error` line on the ready fd, which is then closed.
pub fn error(fd: Option<i32>, err: &Error) {
    let mut line = Line::new();
    err.write_to(&mut line);
    msg::eprint(&[line.as_bytes()]);
    if let Some(fd) = fd {
        let mut out = Line::new();
        error_line(err, &mut out);
        let _ = sys::write_all(fd, out.as_bytes());
        let _ = sys::close(fd);
    }
}

/// Reports `err` as above and exits with `code`.
pub fn fail(fd: Option<i32>, err: &Error, code: i32) -> ! {
    error(fd, err);
    sys::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Errno;

    fn line(err: Error) -> String {
        let mut l = Line::new();
        error_line(&err, &mut l);
        String::from_utf8(l.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn error_lines() {
        let e = Error::new(Errno::EINVAL, &[b"pivot_root(", b"/x/merge", b", put_old)"]).hint("\"/\" is shared");
        assert_eq!(line(e), "error\t22\tpivot_root(/x/merge, put_old)\t\"/\" is shared\n");
        let e = Error::new(Errno::ENOENT, &[b"exec ", b"/bin/nope"]);
        assert_eq!(line(e), "error\t2\texec /bin/nope\t\n");
        let e = Error::new(Errno::new(0), &[b"no errno"]);
        assert_eq!(line(e), "error\t0\tno errno\t\n");
        // A path with a tab or a newline cannot break the fields or the line.
        let e = Error::new(Errno::ENOENT, &[b"open(", b"/a\tb\nc", b")"]);
        assert_eq!(line(e), "error\t2\topen(/a b c)\t\n");
    }

    #[test]
    fn error_reaches_the_fd_and_closes_it() {
        let [r, w] = sys::pipe2(sys::O_CLOEXEC).unwrap();
        error(Some(w), &Error::new(Errno::EACCES, &[b"exec ", b"/x"]));
        let mut buf = [0u8; 64];
        let n = sys::read(r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"error\t13\texec /x\t\n");
        assert_eq!(sys::read(r, &mut buf), Ok(0), "EOF: init closed its end");
        sys::close(r).unwrap();
    }
}
