//! `init --wait-child PID FD OOM_FILE`: what a background container's supervisor
//! turns into once the container runs. host-setup forks the supervisor, which
//! starts init (its child) and then execs this: the same process, so still init's
//! parent, but a few pages of a static no-libc binary instead of a copy of
//! host-setup (about 80 KB resident instead of 1.6 MB, of which ~250 KB private).
//!
//! It waits for PID, reads the cgroup's OOM kills from OOM_FILE ("oom_kill N" in
//! memory.oom_control on v1, memory.events on v2; 0 if unreadable) and appends
//! the container journal's `exited` record to FD (the journal, open O_APPEND), in
//! the exact JSON line host-setup writes: `{"exited":{"code":C,"oom_kills":N}}`.
//! host-setup's state/journal.rs has a test that parses what `exited_line` makes.

use core::ffi::CStr;

use crate::msg::{self, fmt_i64, fmt_u64, Error, Line};
use crate::sys::{self, Errno, Pid, O_CLOEXEC, O_RDONLY};
use crate::{args, pid1};

/// The journal's `exited` record, with its newline, written into `out`.
pub fn exited_line(code: i32, oom_kills: u64, out: &mut [u8; 96]) -> &[u8] {
    let (mut a, mut b) = ([0; 20], [0; 20]);
    let parts: [&[u8]; 5] = [
        b"{\"exited\":{\"code\":",
        fmt_i64(code as i64, &mut a),
        b",\"oom_kills\":",
        fmt_u64(oom_kills, &mut b),
        b"}}\n",
    ];
    let mut n = 0;
    for p in parts {
        out[n..n + p.len()].copy_from_slice(p);
        n += p.len();
    }
    &out[..n]
}

/// The value of the "oom_kill" line of a `key value` file's text; 0 if none.
pub fn oom_kills(text: &[u8]) -> u64 {
    for line in text.split(|&c| c == b'\n') {
        if let Some(v) = line.strip_prefix(b"oom_kill ") {
            return v.iter().take_while(|c| c.is_ascii_digit()).fold(0u64, |n, &d| n * 10 + (d - b'0') as u64);
        }
    }
    0
}

fn read_oom_kills(file: &CStr) -> u64 {
    let Ok(fd) = sys::open(file, O_RDONLY | O_CLOEXEC) else { return 0 };
    let mut buf = [0u8; 1024];
    let n = sys::read(fd, &mut buf).unwrap_or(0);
    let _ = sys::close(fd);
    oom_kills(&buf[..n])
}

/// Wait for `pid`, journal its exit, exit 0 (2: a bad command line).
pub fn run(pid: &CStr, fd: &CStr, oom_file: &CStr) -> ! {
    let (Some(pid), Some(fd)) = (args::parse_fd(pid.to_bytes()), args::parse_fd(fd.to_bytes())) else {
        msg::eprint(&[b"usage: init --wait-child PID FD OOM_FILE"]);
        sys::exit(2)
    };
    let status = loop {
        match sys::wait4(pid as Pid, 0) {
            Ok((_, status)) => break status,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                let mut n = [0; 20];
                fail(&Error::new(e, &[b"wait4(", fmt_i64(pid as i64, &mut n), b")"]))
            }
        }
    };
    let code = pid1::exit_code(status);
    let mut line = [0u8; 96];
    let line = exited_line(code, read_oom_kills(oom_file), &mut line);
    let (mut n, mut c) = ([0; 20], [0; 20]);
    msg::eprint(&[b"wait-child: pid ", fmt_i64(pid as i64, &mut c), b" exited with ", fmt_i64(code as i64, &mut n)]);
    if let Err(e) = sys::write_all(fd, line) {
        fail(&Error::new(e, &[b"write the journal's exited record (fd ", fmt_i64(fd as i64, &mut n), b")"]))
    }
    sys::exit(0)
}

fn fail(e: &Error) -> ! {
    let mut line = Line::new();
    e.write_to(&mut line);
    msg::eprint(&[line.as_bytes()]);
    sys::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exited_record() {
        let mut out = [0; 96];
        assert_eq!(exited_line(137, 2, &mut out), b"{\"exited\":{\"code\":137,\"oom_kills\":2}}\n");
        assert_eq!(
            exited_line(-1, u64::MAX, &mut out),
            b"{\"exited\":{\"code\":-1,\"oom_kills\":18446744073709551615}}\n"
        );
    }

    #[test]
    fn oom_kills_of_v1_and_v2_files() {
        assert_eq!(oom_kills(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3);
        assert_eq!(oom_kills(b"low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n"), 1);
        assert_eq!(oom_kills(b"low 0\n"), 0);
    }
}
