//! `--console-socket SOCK`: with `process.terminal`, the container's process
//! gets the slave of a new pty, and the master goes to the engine over the unix
//! socket SOCK as SCM_RIGHTS (runc's protocol; conmon and containerd's shim listen).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result, SysContext};

pub struct Console {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    sock: UnixStream,
}

/// Connect to SOCK first (a wrong path fails before anything is made), then open the pty.
pub fn open(sock: &Path) -> Result<Console> {
    let sock = UnixStream::connect(sock).sys(|| format!("connect to --console-socket {}", sock.display()))?;
    let pty = nix::pty::openpty(None, None).map_err(|e| Error::sys("openpty", e))?;
    for fd in [pty.master.as_fd(), pty.slave.as_fd()] {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
    Ok(Console { master: pty.master, slave: pty.slave, sock })
}

impl Console {
    /// Send the master (with the pty's name as the data, as runc does) and close ours.
    pub fn send(self) -> Result<()> {
        let name = nix::unistd::ttyname(self.slave.as_fd()).map(|p| p.display().to_string()).unwrap_or_default();
        let fds = [self.master.as_raw_fd()];
        let iov = [std::io::IoSlice::new(name.as_bytes())];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(self.sock.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
            .map_err(|e| Error::sys("sendmsg(SCM_RIGHTS) the pty master to --console-socket", e))?;
        Ok(())
    }
}
