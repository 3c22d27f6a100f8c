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
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::launch;

/// The container's side (slave) and ours (master) of a new pseudo-terminal.
pub struct Terminal {
    pub master: File,
    pub slave: OwnedFd,
}

/// A new pseudo-terminal the size of ours, if stdin is a terminal; else None (the
/// command then gets host-setup's stdin, stdout and stderr as they are, and
/// `attach_in_child(None)` takes it out of our session, so that our terminal, if
/// any, is not its controlling terminal).
pub fn new_if_interactive() -> Result<Option<Terminal>> {
    if unsafe { libc::isatty(0) } != 1 {
        return Ok(None);
    }
    let size = window_size(0);
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
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(Some(Terminal { master: File::from(pty.master), slave: pty.slave }))
}

/// In the forked child, before exec: a new session — out of host-setup's, so that
/// the user's terminal is never its controlling terminal — and, given a slave, that
/// terminal as its controlling terminal on fds 0, 1 and 2. Async-signal-safe.
pub fn attach_in_child(slave: Option<RawFd>) {
    unsafe {
        libc::setsid();
        if let Some(slave) = slave {
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            for fd in 0..3 {
                libc::dup2(slave, fd);
            }
        }
    }
}

fn window_size(fd: RawFd) -> Option<nix::pty::Winsize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(nix::pty::Winsize {
        ws_row: ws.ws_row,
        ws_col: ws.ws_col,
        ws_xpixel: 0,
        ws_ypixel: 0,
    })
}

fn copy_window_size(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) } == 0 {
        unsafe { libc::ioctl(to, libc::TIOCSWINSZ, &ws) };
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
/// `launch::forwarded_signals()` to `child` (the caller has blocked them). Returns
/// the child's exit code (128+N for a signal).
pub fn relay(master: &File, child: Pid) -> Result<i32> {
    let _raw = RawMode::enter();
    let (m, stdin) = (master.as_raw_fd(), 0);
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let signals = launch::forwarded_signals();
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st) => {
                if let Some(code) = launch::exit_code(st) {
                    drain(master);
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(format!("waitpid {child}"), e)),
        }
        while let Some(sig) = take_signal(&signals) {
            match sig {
                Signal::SIGWINCH => copy_window_size(stdin, m), // the kernel tells the container's job
                Signal::SIGCHLD => {}
                sig => {
                    let _ = nix::sys::signal::kill(child, sig);
                }
            }
        }
        let mut fds = [
            libc::pollfd { fd: if stdin_open { stdin } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: m, events: libc::POLLIN, revents: 0 },
        ];
        // A short timeout: signals and the child's exit are looked at between polls.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 50) };
        if n <= 0 {
            continue;
        }
        if fds[0].revents != 0 {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(k) => {
                    let _ = (&*master).write_all(&buf[..k]);
                }
            }
        }
        if fds[1].revents != 0 {
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
        let mut p = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
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

/// One pending signal of `set`, without waiting.
fn take_signal(set: &SigSet) -> Option<Signal> {
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
    Signal::try_from(n).ok()
}
