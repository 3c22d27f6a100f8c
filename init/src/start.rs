//! The spec's start phase: the wait for `start` (START_FIFO), then the
//! startContainer hooks (HOOK), right before the seccomp filter and CMD.
//!
//! The wait is runc's exec fifo: `create` made a fifo on the host; init opened
//! it O_PATH before the pivot (its path is gone after it) and now opens it for
//! writing through /proc/self/fd/N, which blocks until `hsrun start` opens it
//! for reading; one byte, then close. The ready fd says `ok` (and closes)
//! right before that open, which is when `create` may return.

use core::ffi::c_char;
use core::ptr::null;

use crate::inroot::fd_path;
use crate::msg::{self, Error};
use crate::pid1::exit_code;
use crate::ready;
use crate::signals::{self, Inherited};
use crate::specrun::{cstr, Hook, Item, Spec, PATH_MAX};
use crate::sys::files::{dup2, pidfd_open, poll, PollFd, POLLIN};
use crate::sys::{self, Errno, O_CLOEXEC, O_RDONLY, O_WRONLY, SIGKILL};

/// Room for one hook's argv and environment (with their NULs), and their count.
const ARGS_MAX: usize = 32 << 10;
const ARGV_MAX: usize = 512;

/// START_FIFO and the hooks. Returns whether the ready fd was used (closed).
pub fn run(spec: &Spec, ready_fd: Option<i32>, inherited: Inherited) -> Result<bool, Error<'static>> {
    let waited = spec.fifo >= 0;
    if waited {
        ready::ok(ready_fd);
        let mut b = [0u8; 32];
        msg::debug(&[b"wait for start: open the exec fifo for writing"]);
        let fd = sys::open(fd_path(spec.fifo, &mut b), O_WRONLY | O_CLOEXEC)
            .map_err(|e| Error::new(e, &[b"open(the start fifo, O_WRONLY)"]).hint("/proc must be mounted"))?;
        let w = sys::write_all(fd, b"0");
        let _ = sys::close(fd);
        let _ = sys::close(spec.fifo);
        w.map_err(|e| Error::new(e, &[b"write(the start fifo)"]))?;
    }
    for item in spec.items() {
        if let Item::Hook(h) = item {
            hook(&h, inherited)?;
        }
    }
    Ok(waited)
}

/// Runs one startContainer hook in the container (as its user, with its
/// capabilities) and waits for it, at most `timeout` seconds; anything but
/// exit status 0 is an error. Its stdin is /dev/null (the record carries no
/// state JSON), stdout and stderr are init's.
fn hook(h: &Hook<'static>, inherited: Inherited) -> Result<(), Error<'static>> {
    let what: [&[u8]; 3] = [b"startContainer hook ", h.path, b""];
    let mut strings = [0u8; ARGS_MAX];
    let mut ptrs: [*const c_char; ARGV_MAX] = [null(); ARGV_MAX];
    let (mut used, mut n) = (0, 0);
    let mut fields = h.rest.clone();
    while fields.remaining() > 0 {
        let f = fields.bytes().map_err(|_| Error::new(Errno::EINVAL, &what))?;
        // argv: [0, argc) then NULL; envp: after it, then NULL.
        if n + 2 >= ARGV_MAX || used + f.len() + 1 > ARGS_MAX {
            return Err(Error::new(Errno::E2BIG, &what).hint("too many or too long arguments"));
        }
        strings[used..used + f.len()].copy_from_slice(f);
        strings[used + f.len()] = 0;
        ptrs[n] = strings[used..].as_ptr() as *const c_char;
        used += f.len() + 1;
        n += 1;
        if n == h.argc {
            n += 1; // the NULL that ends argv
        }
    }
    let envp = ptrs[h.argc + 1..].as_ptr();
    let mut pb = [0u8; PATH_MAX];
    let path = cstr(h.path, &mut pb);
    msg::debug(&[b"run the startContainer hook ", h.path]);
    let pid = sys::fork().map_err(|e| Error::new(e, &[b"fork (for the hook ", h.path, b")"]))?;
    if pid == 0 {
        signals::restore(inherited);
        if let Ok(fd) = sys::open(c"/dev/null", O_RDONLY) {
            let _ = dup2(fd, 0);
        }
        // SAFETY: ptrs holds argc C strings in `strings` then NULL, then the
        // environment's, then NULL (the array was zeroed: NULLs to its end).
        let e = unsafe { sys::execve(path, ptrs.as_ptr(), envp) };
        let mut l = msg::Line::new();
        l.push(b"exec of the hook ").push(h.path).push(b": ").errno(e);
        msg::eprint(&[l.as_bytes()]);
        sys::exit(127)
    }
    let timed_out = match (h.timeout, pidfd_open(pid)) {
        (0, _) | (_, Err(_)) => false,
        (t, Ok(fd)) => {
            let mut p = [PollFd { fd, events: POLLIN, revents: 0 }];
            let r = poll(&mut p, (t.min(1 << 30) * 1000) as i64);
            let _ = sys::close(fd);
            r == Ok(0)
        }
    };
    if timed_out {
        let _ = sys::kill(pid, SIGKILL);
    }
    let status = loop {
        match sys::wait4(pid, 0) {
            Err(Errno::EINTR) => {}
            Ok((_, status)) => break status,
            Err(e) => return Err(Error::new(e, &[b"wait4(the hook ", h.path, b")"])),
        }
    };
    match (timed_out, exit_code(status)) {
        (true, _) => Err(Error::new(Errno::ETIMEDOUT, &what).hint("killed after its timeout")),
        (false, 0) => Ok(()),
        (false, c) if c > 128 => Err(Error::new(Errno::new(0), &[b"startContainer hook ", h.path, b" was killed"])),
        (false, _) => {
            Err(Error::new(Errno::new(0), &[b"startContainer hook ", h.path, b" failed (exit status not 0)"]))
        }
    }
}
