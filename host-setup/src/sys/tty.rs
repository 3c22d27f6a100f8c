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
