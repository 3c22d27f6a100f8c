//! `--userns`: what changes when init runs in a user namespace host-setup made.
//!
//! The container's root is an unprivileged uid on the host (uid_map
//! "0 HOST 65536"). Three things of the setup then need another way:
//! - the layers: their files belong to the host's root, which is no one in the
//!   namespace (nobody/65534: root inside could not even read a 0600 file of its
//!   own image). host-setup hands init each layer as a detached *idmapped*
//!   mount (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) with this namespace),
//!   where uid 0 on disk shows as the namespace's 0; init attaches them on the
//!   empty --lower dirs (move_mount) inside its own mount namespace, so nothing
//!   shows on the host and the layers stay shared and unchanged on disk. Only the
//!   host could make them: idmapping a mount needs CAP_SYS_ADMIN in the user
//!   namespace that mounted the filesystem (the host's).
//! - the overlay: trusted.overlay.* xattrs (whiteouts, opaque dirs) need
//!   CAP_SYS_ADMIN on the host; `userxattr` keeps them in user.overlay.*.
//! - /dev: a user namespace may not mknod (the device numbers would be the
//!   host's); the host's own nodes are bind-mounted instead, as rootless runc does.

use core::ffi::CStr;

use crate::flag::LOWER_FD;
use crate::msg::{self, Error};
use crate::sys::{self, Errno, MS_BIND};

/// The longest --lower dir name.
const PATH_MAX: usize = 4096;

/// Attach the layer mount on fd LOWER_FD+i onto the i-th dir of `lower`
/// ("A:B:C", topmost first), and close the fds.
pub fn attach_layers(lower: &CStr) -> Result<(), Error<'_>> {
    for (i, dir) in lower.to_bytes().split(|&b| b == b':').enumerate() {
        let fd = LOWER_FD + i as i32;
        let mut buf = [0u8; PATH_MAX];
        let what: [&[u8]; 3] = [b"move_mount(layer fd, ", dir, b")"];
        let target = nul_terminated(dir, &mut buf).ok_or(Error::new(Errno::ENAMETOOLONG, &what))?;
        msg::debug(&[b"attach the idmapped layer mount on ", dir]);
        let attached = sys::attach_mount(fd, target);
        let _ = sys::close(fd);
        attached.map_err(|e| {
            let err = Error::new(e, &what);
            match e {
                Errno::EBADF | Errno::EINVAL => err.hint("--userns: one layer fd per --lower dir from fd 6 on"),
                _ => err,
            }
        })?;
    }
    Ok(())
}

/// `bytes` + NUL in `buf`, as a CStr; None if it does not fit or holds a NUL.
pub fn nul_terminated<'b>(bytes: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    if bytes.len() >= buf.len() {
        return None;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=bytes.len()]).ok()
}

/// The device node `node` ("dev/null", under the cwd: the new root) as a bind
/// mount of the host's ("/dev/null": before pivot_root "/" is still the host's).
pub fn bind_node<'a>(root: &'a [u8], node: &'a CStr) -> Result<(), Error<'a>> {
    let n = node.to_bytes();
    let mut buf = [0u8; 64];
    let mut with_slash = [0u8; 63];
    let source = with_slash
        .get_mut(..n.len() + 1)
        .map(|s| {
            s[0] = b'/';
            s[1..].copy_from_slice(n);
            &*s
        })
        .and_then(|s| nul_terminated(s, &mut buf))
        .ok_or(Error::new(Errno::ENAMETOOLONG, &[b"bind ", n]))?;
    msg::debug(&[b"bind ", source.to_bytes(), b" onto ", node.to_bytes()]);
    let fd = sys::create(node, 0o666).map_err(|e| Error::new(e, &[b"create(", root, b"/", node.to_bytes(), b")"]))?;
    let _ = sys::close(fd);
    sys::mount(Some(source), node, None, MS_BIND, None)
        .map_err(|e| Error::new(e, &[b"mount(/", n, b", ", root, b"/", n, b", MS_BIND)"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_their_nul() {
        let mut buf = [0xffu8; 8];
        assert_eq!(nul_terminated(b"dev/nul", &mut buf).unwrap().to_bytes(), b"dev/nul");
        assert!(nul_terminated(b"dev/null", &mut buf).is_none());
        assert!(nul_terminated(b"a\0b", &mut buf).is_none());
    }
}
