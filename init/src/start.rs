//! The spec's start phase: the wait for `start` (START_FIFO), then the
//! startContainer hooks (HOOK, src/hooks.rs), right before the seccomp filter
//! and CMD.
//!
//! The wait is runc's exec fifo: `create` made a fifo on the host; init opened
//! it O_PATH before the pivot (its path is gone after it) and now opens it for
//! writing through /proc/self/fd/N, which blocks until `hsrun start` opens it
//! for reading. The ready fd says `ok` (and closes) right before that open,
//! which is when `create` may return. init keeps the fifo open while the hooks
//! run and then writes `0` (all ran), or the failed hook's error line: `hsrun
//! start` reads until EOF, so a failing startContainer hook fails `start`.

use crate::inroot::fd_path;
use crate::msg::{self, Error, Line};
use crate::ready;
use crate::signals::Inherited;
use crate::specrun::Spec;
use crate::sys::{self, O_CLOEXEC, O_WRONLY};

/// START_FIFO and the hooks. Returns whether the ready fd was used (closed);
/// on an error it was whenever the spec has START_FIFO.
pub fn run(spec: &Spec, ready_fd: Option<i32>, inherited: Inherited) -> Result<bool, Error<'static>> {
    let waited = spec.fifo >= 0;
    let mut fd = -1;
    if waited {
        ready::ok(ready_fd);
        let mut b = [0u8; 32];
        msg::debug(&[b"wait for start: open the exec fifo for writing"]);
        fd = sys::open(fd_path(spec.fifo, &mut b), O_WRONLY | O_CLOEXEC)
            .map_err(|e| Error::new(e, &[b"open(the start fifo, O_WRONLY)"]).hint("/proc must be mounted"))?;
        let _ = sys::close(spec.fifo);
    }
    let r = crate::hooks::run_all(spec, crate::spec::HOOK, inherited);
    if fd >= 0 {
        let mut l = Line::new();
        match &r {
            Ok(()) => l.push(b"0"),
            Err(e) => {
                e.write_to(&mut l);
                &mut l
            }
        };
        let w = sys::write_all(fd, l.as_bytes());
        let _ = sys::close(fd);
        r?;
        w.map_err(|e| Error::new(e, &[b"write(the start fifo)"]))?;
    }
    r.map(|()| waited)
}
