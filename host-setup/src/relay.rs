//! What runs in a container never gets one of the host's fds: without a terminal
//! (`run` and `exec` with stdin or stdout redirected), its stdin, stdout and stderr
//! are pipes host-setup made, and host-setup copies between them and its own.
//!
//! Why not hand over our own fds 0-2, as a shell would: any process in the container
//! that can see the command reopens them through /proc/PID/fd/N — a path, not a
//! copy — and gets the host's file itself (the administrator's `< secret` or
//! `> /root/out`), with the mode it asks for, not the one it was given. A pipe
//! reopened that way is only that pipe. Docker does the same (its shim copies).
//!
//! The relay: one poll over our stdin (-> the container's stdin, closed at our
//! EOF), the container's stdout and stderr (-> ours) and a signalfd (signals
//! forwarded as forward.rs does; SIGCHLD: the child may have exited). Once it has, what is left
//! in the pipes is copied before host-setup goes on; a pipe some leftover process
//! in the container keeps open (a background job of `exec`) is given up once it has
//! been quiet for a second. stdin is never waited for: a command that does not read
//! it exits, and host-setup with it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};
use crate::{forward, sys};

/// How long output may be quiet, after the child exited, before we stop waiting for EOF.
const QUIET: Duration = Duration::from_secs(1);

/// What the child gets on fds 0, 1 and 2: a terminal (also made its controlling
/// terminal) or three pipe ends. Plain fd numbers: it is used between fork and exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStdio {
    Tty(RawFd),
    Fds([RawFd; 3]),
    /// fds 0-2 as Fds, and a socket connected to the engine's console socket
    /// that init gets on CONSOLE_FD (it makes the pty inside: init/src/console.rs).
    Console {
        fds: [RawFd; 3],
        sock: RawFd,
    },
}

impl ChildStdio {
    /// In a forked child, before exec: a new session (never our terminal as its
    /// controlling one) and these fds on 0, 1 and 2, replacing ours. Async-signal-safe.
    pub fn install_in_child(stdio: Option<ChildStdio>) {
        match stdio {
            Some(ChildStdio::Tty(t)) => sys::new_session_in_child(Some(t)),
            Some(ChildStdio::Fds(fds) | ChildStdio::Console { fds, .. }) => {
                sys::new_session_in_child(None);
                for (to, from) in fds.into_iter().enumerate() {
                    if sys::place_fd(from, to as RawFd, false).is_err() {
                        sys::exit_child(125);
                    }
                }
            }
            None => sys::new_session_in_child(None),
        }
    }
}

/// Three pipes: the child's ends (close-on-exec here; dup2 onto 0-2 clears that in
/// the child) and ours.
pub struct Pipes {
    child: [OwnedFd; 3],
    stdin_w: OwnedFd,
    out_r: OwnedFd,
    err_r: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).sys(|| "pipe2(O_CLOEXEC) for the container's stdio".into())
}

impl Pipes {
    pub fn new() -> Result<Pipes> {
        sys::ensure_std_fds();
        let (in_r, stdin_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        Ok(Pipes { child: [in_r, out_w, err_w], stdin_w, out_r, err_r })
    }

    pub fn child(&self) -> ChildStdio {
        ChildStdio::Fds(self.child.each_ref().map(|f| f.as_raw_fd()))
    }

    /// Copy between our stdio and the pipes until `child` has exited and its output
    /// is drained, forwarding signals to it meanwhile (the caller blocked them with
    /// forward::block before the child existed). Returns its exit code (128+N for
    /// signal N). One thread, one poll: `exec` has entered the container's pid
    /// namespace for its children, and a process whose children's pid namespace is
    /// not its own cannot start threads (clone(CLONE_THREAD) is EINVAL).
    pub fn relay(self, child: Pid) -> Result<i32> {
        let Pipes { child: ends, stdin_w, out_r, err_r } = self;
        // Our copies of the child's ends: while they are open no EOF ever comes.
        drop(ends);
        let signals = forward::signals();
        let sigfd =
            SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).sys(|| "signalfd".into())?;
        // Ours only (the container's read end is another open file): never block on it.
        nix::fcntl::fcntl(&stdin_w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .sys(|| "fcntl(O_NONBLOCK) on the container's stdin".into())?;
        let mut r = Relay {
            stdin_w: Some(File::from(stdin_w)),
            pending: vec![],
            stdin_eof: false,
            outs: [Some(File::from(out_r)), Some(File::from(err_r))],
            ours_ok: [true, true],
        };
        let mut code = None;
        let mut quiet_since = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if code.is_none() {
                code = sys::try_wait(child)?;
                if code.is_some() {
                    r.stdin_w = None; // no one reads it now
                    quiet_since = Instant::now();
                }
            }
            if let Some(c) = code {
                if r.outs.iter().all(Option::is_none) {
                    return Ok(c);
                }
                if quiet_since.elapsed() >= QUIET {
                    log::debug!("output still open {QUIET:?} after the command exited: not waiting for it");
                    return Ok(c);
                }
            }
            let want_stdin = r.stdin_w.is_some() && r.pending.is_empty() && !r.stdin_eof;
            let stdin = std::io::stdin();
            let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
            let mut kinds = vec![Kind::Signal];
            for (i, o) in r.outs.iter().enumerate() {
                if let Some(f) = o {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    kinds.push(Kind::Out(i));
                }
            }
            if want_stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                kinds.push(Kind::Stdin);
            }
            if let (Some(w), false) = (&r.stdin_w, r.pending.is_empty()) {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
                kinds.push(Kind::ToChild);
            }
            let timeout = if code.is_some() { 100u16 } else { 1000 };
            match nix::poll::poll(&mut fds, PollTimeout::from(timeout)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll the container's stdio", e)),
            }
            let ready: Vec<Kind> = fds
                .iter()
                .zip(kinds)
                .filter(|(f, _)| f.revents().is_some_and(|e| !e.is_empty()))
                .map(|(_, k)| k)
                .collect();
            drop(fds);
            for k in ready {
                match k {
                    Kind::Signal => {
                        while let Ok(Some(info)) = sigfd.read_signal() {
                            let sig = Signal::try_from(info.ssi_signo as i32);
                            if let (Ok(sig), None) = (sig, code) {
                                if sig != Signal::SIGCHLD {
                                    log::debug!("forward {sig} to {child}");
                                    let _ = nix::sys::signal::kill(child, sig);
                                }
                            }
                        }
                    }
                    Kind::Out(i) => {
                        if r.copy_out(i, &mut buf) {
                            quiet_since = Instant::now();
                        }
                    }
                    Kind::Stdin => r.read_stdin(&mut buf),
                    Kind::ToChild => r.feed(),
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Signal,
    Out(usize),
    Stdin,
    ToChild,
}

/// The relay's state: our end of the container's stdin (None once closed) with
/// what is read but not yet taken, and our ends of its stdout and stderr.
struct Relay {
    stdin_w: Option<File>,
    pending: Vec<u8>,
    stdin_eof: bool,
    outs: [Option<File>; 2],
    ours_ok: [bool; 2],
}

impl Relay {
    /// Our stdin, read once it is readable and what we read before is taken.
    fn read_stdin(&mut self, buf: &mut [u8]) {
        match std::io::stdin().lock().read(buf) {
            Ok(0) | Err(_) => self.stdin_eof = true,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
        }
        self.feed();
    }

    /// As much of `pending` as the container's stdin takes now; at our EOF, with
    /// nothing pending, close it (the container reads EOF); EPIPE: no reader left.
    fn feed(&mut self) {
        let Some(w) = self.stdin_w.as_mut() else { return };
        while !self.pending.is_empty() {
            match w.write(&self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.pending.clear();
                    self.stdin_w = None;
                    return;
                }
            }
        }
        if self.stdin_eof {
            self.stdin_w = None;
        }
    }

    /// One read of the container's stdout (0) or stderr (1) into ours; false at
    /// EOF (then it is closed). If ours is gone (its reader went away) the rest is
    /// read and dropped, so the container never blocks on a full pipe.
    fn copy_out(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let Some(f) = self.outs[i].as_mut() else { return false };
        let n = match f.read(buf) {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            _ => {
                self.outs[i] = None;
                return false;
            }
        };
        if self.ours_ok[i] {
            self.ours_ok[i] = match i {
                0 => std::io::stdout().lock().write_all(&buf[..n]).and_then(|()| std::io::stdout().flush()),
                _ => std::io::stderr().lock().write_all(&buf[..n]),
            }
            .is_ok();
        }
        true
    }
}
