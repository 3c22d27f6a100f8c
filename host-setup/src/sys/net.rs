//! Socket options nix does not wrap for a netlink socket of another crate. Part of
//! sys: the unsafe of host-setup stays in this one module.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// setsockopt(SOL_SOCKET, SO_SNDBUFFORCE, size): a send buffer of `size` bytes
/// even past net.core.wmem_max (CAP_NET_ADMIN).
pub fn set_send_buffer_force(fd: RawFd, size: libc::c_int) -> std::result::Result<(), Errno> {
    // SAFETY: setsockopt on an fd the caller owns, with a pointer to a c_int that lives
    // across the call and that value's size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
