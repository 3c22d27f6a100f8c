//! The calls of the console (src/console.rs): a pty of the container's own
//! devpts, its controlling terminal, and the master sent over a unix socket.

use core::ffi::CStr;

use syscalls::{syscall, Sysno};

use super::Result;

pub const O_RDWR: usize = 2;
pub const O_NOCTTY: usize = 0o400;
const TIOCSCTTY: usize = 0x540E;
const TIOCGPTN: usize = 0x8004_5430;
const TIOCSPTLCK: usize = 0x4004_5431;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;

/// The pty's number (its slave is /dev/pts/N), after unlocking it.
pub fn unlock_pty(master: i32) -> Result<u32> {
    let (unlock, mut n) = (0i32, 0u32);
    // SAFETY: TIOCSPTLCK reads one int, TIOCGPTN writes one unsigned int, both
    // through pointers to locals alive during the calls.
    unsafe {
        syscall!(Sysno::ioctl, master, TIOCSPTLCK, &unlock as *const i32)?;
        syscall!(Sysno::ioctl, master, TIOCGPTN, &mut n as *mut u32)?;
    }
    Ok(n)
}

/// A new session (EPERM: already a session's leader, which is fine).
pub fn setsid() -> Result<()> {
    // SAFETY: no arguments.
    match unsafe { syscall!(Sysno::setsid) } {
        Ok(_) | Err(super::Errno::EPERM) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `fd` (a terminal) becomes the session's controlling terminal.
pub fn set_controlling_tty(fd: i32) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal), no pointer.
    unsafe { syscall!(Sysno::ioctl, fd, TIOCSCTTY, 0) }.map(drop)
}

/// sendmsg(2) of `fd` as SCM_RIGHTS with `name` as the data (runc's utils.SendFd).
pub fn send_fd(sock: i32, name: &CStr, fd: i32) -> Result<()> {
    #[repr(C)]
    struct Iovec {
        base: *const u8,
        len: usize,
    }
    #[repr(C)]
    struct Msghdr {
        name: usize,
        namelen: u32,
        iov: *const Iovec,
        iovlen: usize,
        control: *const u8,
        controllen: usize,
        flags: i32,
    }
    // struct cmsghdr (len, level, type) then one int: CMSG_LEN(4) = 20, CMSG_SPACE(4) = 24.
    #[repr(C, align(8))]
    struct Cmsg {
        len: usize,
        level: i32,
        kind: i32,
        fd: i32,
        pad: i32,
    }
    let data = name.to_bytes();
    let iov = Iovec { base: data.as_ptr(), len: data.len() };
    let cmsg = Cmsg { len: 20, level: SOL_SOCKET, kind: SCM_RIGHTS, fd, pad: 0 };
    let msg = Msghdr {
        name: 0,
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: &cmsg as *const Cmsg as *const u8,
        controllen: core::mem::size_of::<Cmsg>(),
        flags: 0,
    };
    // SAFETY: msg, iov, cmsg and name's bytes are alive during the call; the
    // kernel only reads them.
    unsafe { syscall!(Sysno::sendmsg, sock, &msg as *const Msghdr, 0) }.map(drop)
}
