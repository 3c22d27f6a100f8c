//! The hooks init runs (runtime-spec config.md "POSIX-platform Hooks"):
//! createContainer (CREATE_HOOK) in the container's namespaces after its mounts
//! and before the pivot (src/rootfs.rs: "/" is still the runtime's root, so the
//! hook's path resolves there, as the spec says), startContainer (HOOK) after
//! `start`, before the exec (src/start.rs). Each one, in order:
//! - stdin: the state JSON (STATE: status `creating` or `created`, as runc
//!   gives them, and init's pid as the host sees it), in a pipe before the fork;
//! - stdout: /dev/null; stderr: a pipe, the first STDERR_MAX bytes kept;
//! - SIGKILL at its timeout;
//!
//! and anything but exit status 0 fails the step with runc's details:
//! `createContainer hook PATH: exit status 1, stderr: TEXT`.

use core::cell::UnsafeCell;
use core::ffi::c_char;
use core::ptr::null;

use crate::msg::{fmt_u64, Error, Line};
use crate::pid1::exit_code;
use crate::signals::{self, Inherited};
use crate::spec::{CREATE_HOOK, STATE};
use crate::specrun::{cstr, Hook, Item, Spec, PATH_MAX};
use crate::sys::files::{dup2, pidfd_open, poll, PollFd, POLLIN};
use crate::sys::spec::monotonic_ms;
use crate::sys::{self, Errno, O_CLOEXEC, O_WRONLY, SIGKILL};

/// Room for one hook's argv and environment (with their NULs), and their count.
const ARGS_MAX: usize = 32 << 10;
const ARGV_MAX: usize = 512;
/// What init keeps of a hook's stderr for its error.
const STDERR_MAX: usize = 2048;
const O_NONBLOCK: usize = 0o4000;

/// The failed hook's details: an `Error` borrows its pieces, and init reports
/// it after the hook's frame is gone. In .bss: no stack cost on the hot path.
struct Detail(UnsafeCell<Line>);

// SAFETY: init is single-threaded; DETAIL is written once, by the hook that
// fails (no hook runs after it), before the Error that borrows it exists.
unsafe impl Sync for Detail {}

static DETAIL: Detail = Detail(UnsafeCell::new(Line::new()));

/// Runs the hooks of `tag` (CREATE_HOOK or HOOK) in order; stops at the first failure.
pub fn run_all(spec: &Spec, tag: u8, inherited: Inherited) -> Result<(), Error<'static>> {
    spec.each(tag, &mut |item| match item {
        Item::Hook(h) => run(spec, tag, &h, inherited),
        _ => Ok(()),
    })
}

fn run(spec: &Spec, tag: u8, h: &Hook<'static>, inherited: Inherited) -> Result<(), Error<'static>> {
    let (kind, status): (&'static [u8], &[u8]) = if tag == CREATE_HOOK {
        (b"createContainer hook ", b"creating")
    } else {
        (b"startContainer hook ", b"created")
    };
    let fail = |e: Errno, step: &'static [u8]| Error::new(e, &[kind, h.path, step]);
    let mut strings = [0u8; ARGS_MAX];
    let mut ptrs: [*const c_char; ARGV_MAX] = [null(); ARGV_MAX];
    let (mut used, mut n) = (0, 0);
    let mut fields = h.rest.clone();
    while fields.remaining() > 0 {
        let f = fields.bytes().map_err(|_| fail(Errno::EINVAL, b""))?;
        // argv: [0, argc) then NULL; envp: after it, then NULL.
        if n + 2 >= ARGV_MAX || used + f.len() + 1 > ARGS_MAX {
            return Err(fail(Errno::E2BIG, b"").hint("too many or too long arguments"));
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
    crate::msg::debug(&[b"run the ", kind, h.path]);

    // The state goes into the pipe whole before the fork: O_NONBLOCK makes a
    // state bigger than the pipe (64 KiB) an error instead of a hang.
    let [stdin, w] = sys::pipe2(O_CLOEXEC | O_NONBLOCK).map_err(|e| fail(e, b": pipe2"))?;
    let wrote = write_state(spec, status, w);
    let _ = sys::close(w);
    let pipe = wrote.and_then(|()| sys::pipe2(O_CLOEXEC));
    let [err_r, err_w] = pipe.map_err(|e| {
        let _ = sys::close(stdin);
        fail(e, b": write the state to its stdin")
    })?;
    let pid = sys::fork();
    if pid == Ok(0) {
        signals::restore(inherited);
        // dup2 clears FD_CLOEXEC on the copy: these three reach the hook.
        let _ = dup2(stdin, 0);
        let _ = dup2(err_w, 2);
        if let Ok(fd) = sys::open(c"/dev/null", O_WRONLY) {
            let _ = dup2(fd, 1);
        }
        // SAFETY: ptrs holds argc C strings in `strings` then NULL, then the
        // environment's, then NULL (the array was zeroed: NULLs to its end).
        let e = unsafe { sys::execve(path, ptrs.as_ptr(), envp) };
        let mut l = Line::new();
        l.push(b"exec: ").errno(e); // on fd 2: the error shows it
        let _ = sys::write_all(2, l.as_bytes());
        sys::exit(127)
    }
    let _ = sys::close(stdin);
    let _ = sys::close(err_w);
    let pid = pid.map_err(|e| {
        let _ = sys::close(err_r);
        fail(e, b": fork")
    })?;
    let mut text = [0u8; STDERR_MAX];
    let (got, timed_out) = collect(pid, h.timeout, err_r, &mut text);
    let _ = sys::close(err_r);
    let status = loop {
        match sys::wait4(pid, 0) {
            Err(Errno::EINTR) => {}
            Ok((_, status)) => break status,
            Err(e) => return Err(fail(e, b": wait4")),
        }
    };
    let code = exit_code(status);
    if code == 0 && !timed_out {
        return Ok(());
    }
    // SAFETY: see Detail: the one write, then only the Error reads it.
    let d = unsafe { &mut *DETAIL.0.get() };
    if timed_out {
        d.push(b"killed after its timeout of ").num(h.timeout as i64).push(b" s");
    } else if code > 128 {
        d.push(b"killed by signal ").num(code as i64 - 128);
    } else {
        d.push(b"exit status ").num(code as i64);
    }
    let text = text[..got].trim_ascii_end();
    if !text.is_empty() {
        d.push(b", stderr: ").push(text);
    }
    Err(Error::new(Errno::new(0), &[kind, h.path, b": ", d.as_bytes()]))
}

/// The state JSON on `fd`: STATE's pieces around the status and the pid.
fn write_state(spec: &Spec, status: &[u8], fd: i32) -> sys::Result<()> {
    let Some(Item::State { head, middle, tail }) = spec.find(STATE) else { return Ok(()) };
    let mut n = [0u8; 20];
    for piece in [head, status, middle, fmt_u64(spec.host_pid as u64, &mut n), tail] {
        sys::write_all(fd, piece)?;
    }
    Ok(())
}

/// Reads the hook's stderr into `text` (the rest is drained and dropped) until
/// it has exited (its pidfd polls readable) and the pipe is empty, or until
/// EOF without a pidfd (Linux < 5.3); SIGKILL at `timeout` s (0: none).
/// Returns how much was kept and whether it timed out.
fn collect(pid: i32, timeout: u64, err: i32, text: &mut [u8; STDERR_MAX]) -> (usize, bool) {
    let pidfd = pidfd_open(pid).unwrap_or(-1);
    let deadline = monotonic_ms() + (timeout.min(1 << 30) * 1000) as i64;
    let mut fds = [PollFd { fd: err, events: POLLIN, revents: 0 }, PollFd { fd: pidfd, events: POLLIN, revents: 0 }];
    let (mut got, mut exited, mut timed_out) = (0, false, false);
    loop {
        // Once it has exited, only what its stderr already holds (a child
        // it left running may keep the pipe open).
        let ms = match (exited, timeout) {
            (true, _) => 0,
            (false, 0) => -1,
            (false, _) => (deadline - monotonic_ms()).max(0),
        };
        match poll(&mut fds, ms) {
            Err(Errno::EINTR) => continue,
            Ok(0) | Err(_) => {
                if !exited && ms >= 0 {
                    timed_out = true;
                    let _ = sys::kill(pid, SIGKILL); // our child, not yet reaped
                }
                break;
            }
            Ok(_) => {}
        }
        if fds[1].revents != 0 {
            exited = true;
            fds[1].fd = -1;
        }
        if fds[0].revents != 0 {
            let mut scratch = [0u8; 512];
            let buf = if got < STDERR_MAX { &mut text[got..] } else { &mut scratch[..] };
            match sys::read(err, buf) {
                Ok(n) if n > 0 => got = (got + n).min(STDERR_MAX),
                Err(Errno::EINTR) => {}
                _ if exited || pidfd < 0 => break,
                _ => fds[0].fd = -1, // EOF: wait for the exit alone
            }
        }
    }
    if pidfd >= 0 {
        let _ = sys::close(pidfd);
    }
    (got, timed_out)
}
