//! Terminal ioctls (tty.rs relays a container's terminal). Part of sys: the
//! unsafe of host-setup stays in this one module.

use std::os::fd::RawFd;

/// The window size of terminal `fd`.
pub fn window_size(fd: RawFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

/// Give terminal `fd` the window size `ws` (its foreground job gets SIGWINCH).
pub fn set_window_size(fd: RawFd, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws) };
}

/// Unlock pty master `master` and open its slave through it (TIOCGPTPEER, Linux
/// 4.13): the slave of the master's own devpts instance, whichever mount
/// namespace we are in (a container's /dev/pts, not the host's).
pub fn pty_peer(master: RawFd) -> Result<std::os::fd::OwnedFd, nix::errno::Errno> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, live for the call.
    if unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: TIOCGPTPEER takes open(2) flags by value and returns a new fd we own.
    let fd = unsafe { libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(super::owned(fd))
}
