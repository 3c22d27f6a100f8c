//! `init --wait-child PID FD OOM_FILE [PIPE DIR NAME MAX_SIZE MAX_FILES]`: what a
//! background container's supervisor turns into once the container runs. host-setup forks the supervisor, which
//! starts init (its child) and then execs this: the same process, so still init's
//! parent, but a few pages of a static no-libc binary instead of a copy of
//! host-setup (about 80 KB resident instead of 1.6 MB, of which ~250 KB private).
//!
//! It waits for PID, reads the cgroup's OOM kills from OOM_FILE ("oom_kill N" in
//! memory.oom_control on v1, memory.events on v2; 0 if unreadable) and appends
//! the container journal's `exited` record to FD (the journal, open O_APPEND), in
//! the exact JSON line host-setup writes: `{"exited":{"code":C,"oom_kills":N}}`.
//! host-setup's state/journal.rs has a test that parses what `exited_line` makes.
//! Meanwhile it copies PIPE (the main process's stdout and stderr) into the log
//! (src/logpipe.rs): poll on the pipe and on a pidfd of PID.

use core::ffi::CStr;

use crate::logpipe::Log;
use crate::msg::{self, fmt_i64, fmt_u64, Error, Line};
use crate::sys::files::{self, PollFd, POLLIN};
use crate::sys::{self, Errno, Pid, O_CLOEXEC, O_RDONLY, WNOHANG};
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

/// `PIPE DIR NAME MAX_SIZE MAX_FILES`: the log's part of the command line.
fn log_args<'a>(mut rest: impl Iterator<Item = &'a CStr>) -> Option<(i32, Log<'a>)> {
    let (pipe, dir, name) = (args::parse_fd(rest.next()?.to_bytes())?, rest.next()?, rest.next()?);
    let (size, files) = (number(rest.next()?.to_bytes())?, number(rest.next()?.to_bytes())?);
    Some((pipe, Log::new(args::parse_fd(dir.to_bytes())?, name, size, files)))
}

fn number(s: &[u8]) -> Option<u64> {
    let ok = !s.is_empty() && s.len() < 20 && s.iter().all(u8::is_ascii_digit);
    ok.then(|| s.iter().fold(0u64, |n, &d| n * 10 + (d - b'0') as u64))
}

/// Wait for `pid` while copying the log pipe (if any) into the log; journal its
/// exit, exit 0 (2: a bad command line). Arguments: PID FD OOM_FILE [PIPE DIR
/// NAME MAX_SIZE MAX_FILES].
pub fn run<'a>(mut argv: impl Iterator<Item = &'a CStr>) -> ! {
    let (pid, fd, oom_file) = (argv.next(), argv.next(), argv.next());
    let (Some(pid), Some(fd), Some(oom_file)) = (pid, fd, oom_file) else { usage() };
    let (Some(pid), Some(fd)) = (args::parse_fd(pid.to_bytes()), args::parse_fd(fd.to_bytes())) else { usage() };
    let mut log = argv.next().map(|first| log_args(core::iter::once(first).chain(argv)).unwrap_or_else(|| usage()));
    let status = match log.as_mut() {
        Some((pipe, log)) => relay_until_exit(pid as Pid, *pipe, log),
        None => wait(pid as Pid),
    };
    let code = pid1::exit_code(status);
    let mut line = [0u8; 96];
    let line = exited_line(code, read_oom_kills(oom_file), &mut line);
    let (mut n, mut c) = ([0; 20], [0; 20]);
    let said: [&[u8]; 5] =
        [b"wait-child: pid ", fmt_i64(pid as i64, &mut c), b" exited with ", fmt_i64(code as i64, &mut n), b"\n"];
    match log.as_mut() {
        Some((_, log)) => said.iter().for_each(|p| {
            let _ = log.write(p);
        }),
        None => msg::eprint(&said[..4]),
    }
    if let Err(e) = sys::write_all(fd, line) {
        fail(&Error::new(e, &[b"write the journal's exited record (fd ", fmt_i64(fd as i64, &mut n), b")"]))
    }
    sys::exit(0)
}

fn usage() -> ! {
    msg::eprint(&[b"usage: init --wait-child PID FD OOM_FILE [PIPE DIR NAME MAX_SIZE MAX_FILES]"]);
    sys::exit(2)
}

/// wait4 until `pid` is reaped; its status.
fn wait(pid: Pid) -> i32 {
    loop {
        match sys::wait4(pid, 0) {
            Ok((_, status)) => return status,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                let mut n = [0; 20];
                fail(&Error::new(e, &[b"wait4(", fmt_i64(pid as i64, &mut n), b")"]))
            }
        }
    }
}

/// Copy `pipe` into `log` until `pid` has exited (a pidfd polls readable then;
/// without one, Linux < 5.3, look every second), then what is left in the pipe:
/// by the time PID 1 of a pid namespace is reaped every process of it has gone,
/// and with them every write end. Returns the status.
fn relay_until_exit(pid: Pid, pipe: i32, log: &mut Log) -> i32 {
    let pidfd = files::pidfd_open(pid).unwrap_or(-1);
    let mut buf = [0u8; 16384];
    let mut fds = [PollFd { fd: pipe, events: POLLIN, revents: 0 }, PollFd { fd: pidfd, events: POLLIN, revents: 0 }];
    let status = loop {
        let ms = if pidfd < 0 { 1000 } else { -1 };
        if let Err(e) = files::poll(&mut fds, ms) {
            if e == Errno::EINTR {
                continue;
            }
            break wait(pid); // cannot poll: the exit is what matters
        }
        if fds[0].revents != 0 {
            match sys::read(pipe, &mut buf) {
                Ok(0) | Err(_) => fds[0].fd = -1, // EOF: poll ignores a negative fd
                Ok(n) => {
                    let _ = log.write(&buf[..n]);
                }
            }
        }
        if let Ok((p, status)) = sys::wait4(pid, WNOHANG) {
            if p == pid {
                break status;
            }
        }
    };
    let mut rest = [PollFd { fd: pipe, events: POLLIN, revents: 0 }];
    while matches!(files::poll(&mut rest, 1000), Ok(1)) {
        match sys::read(pipe, &mut buf) {
            Ok(n) if n > 0 => {
                let _ = log.write(&buf[..n]);
            }
            _ => break,
        }
    }
    status
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
