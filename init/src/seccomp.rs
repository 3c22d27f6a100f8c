//! `--seccomp-fd N`: the container's system call filter. host-setup compiles it
//! (host-setup/src/seccomp/) and hands over the finished BPF program on fd N;
//! init only reads it (before the fds above 2 are closed) and installs it, after
//! --restrict's no_new_privs, as the very last step before CMD starts.
//!
//! init installs it on itself, before it forks (or execs) CMD, so CMD inherits
//! it. init then runs under the same filter as everything else in the container
//! (as docker-init/tini under Docker, where runc filters the container's first
//! process): a process of the container that took over init could not reach a
//! call the filter refuses, and there is one place where the filter goes on, the
//! same for the supervised CMD, --exec and --pause. What init itself calls after
//! that (wait4, kill, rt_sigtimedwait, clone without namespace flags, setpgid,
//! ioctl, prctl, close_range, execve) is allowed by Docker's default profile.

use crate::msg::Error;
use crate::sys::{self, Errno};

/// BPF_MAXINSNS: the kernel's limit on one program.
pub const MAX_INSNS: usize = 4096;

/// Where the program is read to: in .bss, not on the stack, so that only the pages
/// the program fills (a default filter is ~8 KB of 32) ever become resident; a
/// stack array would be zeroed (and moved) whole and stay in init's RSS for good.
struct Buf(core::cell::UnsafeCell<[u64; MAX_INSNS]>);

// SAFETY: init is single-threaded; BUF is written once, by `read`, before any reader.
unsafe impl Sync for Buf {}

static BUF: Buf = Buf(core::cell::UnsafeCell::new([0; MAX_INSNS]));

/// A BPF program as read from the fd (one struct sock_filter per u64, in BUF).
pub struct Filter {
    len: usize,
}

impl Filter {
    pub fn insns(&self) -> &'static [u64] {
        // SAFETY: `read` filled the first `len` entries and nothing writes BUF again.
        unsafe { &(&*BUF.0.get())[..self.len] }
    }
}

/// Reads the whole program from `fd` (until EOF), then closes `fd`. Once per process.
pub fn read(fd: i32) -> Result<Filter, Error<'static>> {
    let r = read_into(fd);
    let _ = sys::close(fd);
    r.map(|len| Filter { len })
}

fn read_into(fd: i32) -> Result<usize, Error<'static>> {
    // SAFETY: the only access to BUF before `Filter::insns` (single-threaded); u64 has
    // no invalid bit patterns and the byte view covers exactly the array.
    let bytes = unsafe { core::slice::from_raw_parts_mut(BUF.0.get() as *mut u8, MAX_INSNS * 8) };
    let read = |buf: &mut [u8]| sys::read_full(fd, buf).map_err(|e| Error::new(e, &[b"read --seccomp-fd"]));
    let n = read(bytes)?;
    // Full: there must be nothing more.
    if n == bytes.len() && read(&mut [0u8; 1])? != 0 {
        return Err(Error::new(Errno::E2BIG, &[b"read --seccomp-fd"]).hint("more than 4096 instructions"));
    }
    if n == 0 || n % 8 != 0 {
        return Err(Error::new(Errno::EINVAL, &[b"read --seccomp-fd"]).hint("not a BPF program (8-byte records)"));
    }
    Ok(n / 8)
}

/// Installs the filter on this process (and so on everything it starts).
pub fn install(f: &Filter) -> Result<(), Error<'static>> {
    crate::msg::debug(&[b"seccomp(SECCOMP_SET_MODE_FILTER)"]);
    sys::seccomp_set_filter(f.insns()).map_err(|e| {
        let err = Error::new(e, &[b"seccomp(SECCOMP_SET_MODE_FILTER)"]);
        match e {
            Errno::EACCES => err.hint("needs no_new_privs (--restrict) or CAP_SYS_ADMIN"),
            Errno::EINVAL => err.hint("the kernel refused the BPF program"),
            _ => err,
        }
    })
}
