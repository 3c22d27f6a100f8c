//! PIVOT_SYNC (runtime-spec "Lifecycle": prestart and createRuntime hooks run
//! after the namespaces exist and before pivot_root, createContainer hooks
//! after them). The ready fd is then a socket (host-setup/src/spawn.rs): init
//! writes `pivot\n` on it and blocks until the runtime, having run its hooks on
//! the host, answers `go\n`; anything else (`abort\n` after a failed hook, or
//! EOF: the runtime died) makes init fail here, before the pivot.
//! init has no timeout of its own here: the runtime kills its hooks at their
//! timeouts, and init when it gives up (host-setup/src/supervisor.rs).

use crate::msg::Error;
use crate::sys::{self, Errno};

pub fn wait(fd: Option<i32>) -> Result<(), Error<'static>> {
    let fd = fd.ok_or_else(|| Error::new(Errno::EINVAL, &[b"PIVOT_SYNC without --ready-fd"]))?;
    sys::write_all(fd, b"pivot\n").map_err(|e| Error::new(e, &[b"write(--ready-fd, pivot)"]))?;
    let mut buf = [0u8; 3];
    let n = sys::read_full(fd, &mut buf).map_err(|e| Error::new(e, &[b"read(--ready-fd) for the runtime's hooks"]))?;
    if &buf[..n] == b"go\n" {
        return Ok(());
    }
    Err(Error::new(Errno::new(0), &[b"the runtime's prestart or createRuntime hooks failed"]))
}
