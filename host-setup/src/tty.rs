//! A terminal of its own for what runs in a container (`run` and `exec` when stdin
//! is a terminal), as `docker run -t` gives one.
//!
//! Why not hand over the user's terminal: a process whose controlling terminal it
//! is can push input into it with TIOCSTI (unless dev.tty.legacy_tiocsti is 0), and
//! that input is read by the user's shell once host-setup has exited — a way out
//! of the container. So the container gets a new pseudo-terminal; host-setup keeps
//! the master and copies bytes between it and the user's terminal (which it puts in
//! raw mode, so that Ctrl-C, Ctrl-Z and the rest reach the container's terminal as
//! keys and its line discipline signals the container's foreground job).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::{forward, sys};

/// The container's side (slave) and ours (master) of a new pseudo-terminal.
pub struct Terminal {
    pub master: File,
    pub slave: OwnedFd,
}

/// A new pseudo-terminal the size of ours, if stdin and stdout are terminals (as
/// for `docker run -it`: `$(host-setup exec red hostname)` captures plain output,
/// with no `\r` a terminal adds); else None (the
/// command then gets host-setup's stdin, stdout and stderr as they are, and
/// `sys::new_session_in_child(None)` takes it out of our session, so that our
/// terminal, if any, is not its controlling terminal).
pub fn new_if_interactive() -> Result<Option<Terminal>> {
    let tty = |fd: std::os::fd::BorrowedFd| nix::unistd::isatty(fd).unwrap_or(false);
    if !tty(std::io::stdin().as_fd()) || !tty(std::io::stdout().as_fd()) {
        return Ok(None);
    }
    let size = sys::window_size(0);
    let pty = match nix::pty::openpty(size.as_ref(), None) {
        Ok(p) => p,
        // No /dev/ptmx or devpts here (a bare initramfs, say): run without a
        // terminal rather than hand over ours.
        Err(e @ (Errno::ENOENT | Errno::ENODEV | Errno::ENXIO)) => {
            log::warn!("no pseudo-terminal for the container (openpty: {e:?}); it runs without a controlling terminal");
            return Ok(None);
        }
        Err(e) => return Err(Error::sys("openpty", e)),
    };
    for fd in [pty.master.as_fd(), pty.slave.as_fd()] {
        let _ = nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
    Ok(Some(Terminal { master: File::from(pty.master), slave: pty.slave }))
}

fn copy_window_size(from: RawFd, to: RawFd) {
    if let Some(ws) = sys::window_size(from) {
        sys::set_window_size(to, &ws);
    }
}
/// The user's terminal in raw mode until dropped.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else { return RawMode(None) };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Copy between the user's terminal and the container's until `child` exits, pass
/// on window size changes, and forward the other signals in
/// `forward::signals()` to `child` (the caller has blocked them). Returns
/// the child's exit code (128+N for a signal).
pub fn relay(master: &File, child: Pid) -> Result<i32> {
    let _raw = RawMode::enter();
    let (m, stdin) = (master.as_raw_fd(), 0);
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let signals = forward::signals();
    loop {
        if let Some(code) = sys::try_wait(child)? {
            drain(master);
            return Ok(code);
        }
        while let Some(sig) = sys::take_pending(&signals) {
            match sig {
                Signal::SIGWINCH => copy_window_size(stdin, m), // the kernel tells the container's job
                Signal::SIGCHLD => {}
                sig => {
                    let _ = nix::sys::signal::kill(child, sig);
                }
            }
        }
        // A short timeout: signals and the child's exit are looked at between polls.
        let (stdin_ready, master_ready) = {
            let input = std::io::stdin();
            let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            if stdin_open {
                fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
            }
            if nix::poll::poll(&mut fds, PollTimeout::from(50u16)).unwrap_or(0) <= 0 {
                continue;
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (fds.get(1).is_some_and(ready), ready(&fds[0]))
        };
        if stdin_ready {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(k) => {
                    let _ = (&*master).write_all(&buf[..k]);
                }
            }
        }
        if master_ready {
            match (&*master).read(&mut buf) {
                // EIO: every process has closed the slave; wait for the child's exit.
                Ok(0) | Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Ok(k) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..k]);
                    let _ = out.flush();
                }
            }
        }
    }
}

/// What the container wrote last, before its terminal goes.
fn drain(master: &File) {
    let mut buf = [0u8; 8192];
    let mut out = std::io::stdout().lock();
    loop {
        let mut p = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if nix::poll::poll(&mut p, PollTimeout::ZERO).unwrap_or(0) <= 0 {
            break;
        }
        match (&*master).read(&mut buf) {
            Ok(k) if k > 0 => {
                let _ = out.write_all(&buf[..k]);
            }
            _ => break,
        }
    }
    let _ = out.flush();
}
