//! `--console-socket SOCK`: with `process.terminal`, the engine (containerd's
//! shim, conmon) listens on the unix socket SOCK for the pty master, sent as
//! SCM_RIGHTS (runc's protocol). hsrun only connects: init makes the pty inside
//! the container, from the container's own devpts after its mounts, and sends
//! the master itself (init/src/console.rs), as runc init does. A pty opened
//! here would belong to the host's devpts: the container would see a terminal
//! with no name under its /dev/pts (`tty`: "not a tty").

use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Result, SysContext};

/// Connects to SOCK (a wrong path fails before anything is made); the stream is
/// close-on-exec here, and spawn places it on init's CONSOLE_FD.
pub fn connect(sock: &Path) -> Result<UnixStream> {
    UnixStream::connect(sock).sys(|| format!("connect to --console-socket {}", sock.display()))
}
