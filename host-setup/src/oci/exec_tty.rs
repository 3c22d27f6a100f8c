//! `exec --tty`: the process's terminal. A pty of the container's own devpts
//! (`/proc/PID/root/dev/ptmx`, which the container's /dev/ptmx -> pts/ptmx
//! resolves inside its root), so that `tty` and ttyname(3) inside see
//! /dev/pts/N; the host's devpts only when the container has none. The master
//! goes to the engine over --console-socket (SCM_RIGHTS, with the pty's name as
//! the data, as runc sends it).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;

use crate::error::{Error, Result, SysContext};

/// A pty: our side and the process's.
pub struct Pty {
    pub master: File,
    pub slave: OwnedFd,
    /// The slave's name as the container sees it (`/dev/pts/0`).
    pub name: String,
}

/// A new pty in the devpts of the container whose PID 1 is `pid`, or the host's.
pub fn open(pid: i32) -> Result<Pty> {
    let ptmx = format!("/proc/{pid}/root/dev/ptmx");
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(Path::new(&ptmx), flags, nix::sys::stat::Mode::empty()) {
        Ok(fd) => {
            let master = File::from(fd);
            let slave = crate::sys::pty_peer(master.as_raw_fd())
                .map_err(|e| Error::sys(format!("ioctl({ptmx}, TIOCGPTPEER)"), e))?;
            // /proc/self/fd/N of the peer reads /dev/pts/N in the container's namespace.
            let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Ok(Pty { master, slave, name })
        }
        Err(e) => {
            // Not an error: a terminal that `tty` inside cannot name beats none
            // (tests/oci_verbs/tty.rs checks this way and the line that says so).
            log::debug!("open {ptmx}: {e}: the container has no devpts, a pty of the host's");
            let pty = nix::pty::openpty(None, None).map_err(|e2| {
                Error::sys("openpty (/dev/ptmx of the host)", e2)
                    .hint(format!("and the container has no devpts of its own (open {ptmx}: {e})"))
            })?;
            for fd in [&pty.master, &pty.slave] {
                let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
            }
            let name = nix::unistd::ttyname(&pty.slave).map(|p| p.display().to_string()).unwrap_or_default();
            Ok(Pty { master: File::from(pty.master), slave: pty.slave, name })
        }
    }
}

/// Send `pty`'s master to the engine listening on `sock`; ours is closed after.
pub fn send(sock: &Path, pty: &Pty) -> Result<()> {
    let s = UnixStream::connect(sock).sys(|| format!("connect to --console-socket {}", sock.display()))?;
    let fds = [pty.master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(pty.name.as_bytes())];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(s.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
        .map(drop)
        .map_err(|e| Error::sys(format!("sendmsg(SCM_RIGHTS) the pty master to {}", sock.display()), e))
}
