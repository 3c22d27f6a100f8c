//! CONSOLE: the process's terminal, made inside the container as runc's
//! setupConsole does. Right after the pivot (the container's devpts is mounted
//! on /dev/pts, and read-only paths are not yet applied), init opens
//! /dev/ptmx, which the kernel resolves to the devpts instance mounted at
//! `pts` beside it: the container's own, so the slave is /dev/pts/N *there*
//! (a pty of the host's devpts would show inside as a tty with no name, and
//! `tty` says "not a tty"). init unlocks it, puts the slave on fds 0-2 as the
//! session's controlling terminal, and sends the master over the socket
//! host-setup connected to `--console-socket` (SCM_RIGHTS with "/dev/ptmx" as
//! the data, runc's utils.SendFd: containerd's shim and conmon take the one fd
//! of the message and ignore the name).

use crate::msg::{fmt_u64, Error};
use crate::specrun::{Item, Spec};
use crate::sys::files::dup2;
use crate::sys::tty::{self, O_NOCTTY, O_RDWR};
use crate::sys::{self, O_CLOEXEC};

/// Runs the spec's CONSOLE record, if any; closes the socket.
pub fn setup(spec: &Spec) -> Result<(), Error<'static>> {
    let Some(Item::Console(sock)) = spec.find(crate::spec::CONSOLE) else {
        return Ok(());
    };
    let r = pty(sock);
    let _ = sys::close(sock);
    r
}

fn pty(sock: i32) -> Result<(), Error<'static>> {
    crate::msg::debug(&[b"console: open /dev/ptmx in the container"]);
    let master = sys::open(c"/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        .map_err(|e| Error::new(e, &[b"open(/dev/ptmx)"]).hint("the container needs a devpts on /dev/pts"))?;
    let r = slave(master, sock);
    let _ = sys::close(master);
    r
}

fn slave(master: i32, sock: i32) -> Result<(), Error<'static>> {
    let n = tty::unlock_pty(master).map_err(|e| Error::new(e, &[b"ioctl(/dev/ptmx, TIOCSPTLCK/TIOCGPTN)"]))?;
    let mut path = [0u8; 32];
    let mut digits = [0u8; 20];
    let d = fmt_u64(n as u64, &mut digits);
    path[..9].copy_from_slice(b"/dev/pts/");
    path[9..9 + d.len()].copy_from_slice(d);
    let path = core::ffi::CStr::from_bytes_until_nul(&path).unwrap_or(c"/dev/pts/0");
    let fd = sys::open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        .map_err(|e| Error::new(e, &[b"open(the pty's slave /dev/pts/N)"]))?;
    // The master goes to the engine first: if that fails, stdio is still ours.
    tty::send_fd(sock, c"/dev/ptmx", master)
        .map_err(|e| Error::new(e, &[b"sendmsg(SCM_RIGHTS) the pty master to the console socket"]))?;
    let mut r = Ok(());
    for to in 0..3 {
        r = r.and_then(|()| dup2(fd, to));
    }
    let _ = sys::close(fd);
    r.map_err(|e| Error::new(e, &[b"dup2(the pty's slave, 0-2)"]))?;
    // The kernel gives a session one controlling terminal, taken by its leader:
    // setsid (init already leads its session: EPERM is fine), then TIOCSCTTY.
    tty::setsid().map_err(|e| Error::new(e, &[b"setsid"]))?;
    tty::set_controlling_tty(0).map_err(|e| Error::new(e, &[b"ioctl(TIOCSCTTY)"]))
}
