//! Step 3's two propagation fixes for a spec whose root propagation is not
//! recursive-private (runc's `rootfsParentMountPrivate` and its rslave old root).
//!
//! With "/" shared (every systemd host) and a non-recursive "private", or a
//! "slave" or "shared" rootfsPropagation, "/" itself gets the spec's word but the
//! mounts below it keep the host's peer groups:
//! - pivot_root(2) refuses (EINVAL) a new root whose parent mount is shared, and
//!   a bind or overlay mounted under a shared parent would show in the host too:
//!   the mount that holds DIR is made private first, or slave for a "slave"
//!   (then the new root, its bind, is a slave too, as asked) ([`parent_unshared`]);
//! - the lazy umount of the old root after the pivot propagates to every peer of
//!   each unmounted mount's parent, so the host's own submounts (say /run/user/0
//!   under a shared /run) would vanish: the old root is made rslave first
//!   ([`old_root_slave`]; slave, not private, as runc: events still come in, none go out).

use core::ffi::CStr;

use crate::msg::{self, Error};
use crate::sys::spec::MS_SLAVE;
use crate::sys::{self, Errno, MS_REC};

/// The longest DIR/../.. path tried (a page, the kernel's PATH_MAX).
const PATH_MAX: usize = 4096;

/// Makes the mount that holds `dir` (`dir` itself when it is a mount point)
/// `flag` (MS_PRIVATE or MS_SLAVE), not recursively: `dir`, `dir/..`, `dir/../..` until one is a
/// mount's root. mount(2) says EINVAL for a propagation change on a path that
/// is not a mount's root; ".." of "/" is "/", always one, so the walk ends.
/// (".." and not the text's parent: the kernel resolves symlinks in `dir`.)
pub fn parent_unshared(dir: &CStr, flag: usize) -> Result<(), Error<'_>> {
    let d = dir.to_bytes();
    let mut buf = [0u8; PATH_MAX];
    let mut len = d.len();
    buf[..len].copy_from_slice(d);
    loop {
        buf[len] = 0;
        let path = CStr::from_bytes_with_nul(&buf[..=len]).map_err(|_| Error::new(Errno::EINVAL, &[b"rootfs ", d]))?;
        msg::debug(&[b"unshare the mount holding ", d, b": mount(", path.to_bytes(), b", ", name(flag), b")"]);
        match sys::mount(None, path, None, flag, None) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) if len + 3 < PATH_MAX => {
                buf[len..len + 3].copy_from_slice(b"/..");
                len += 3;
            }
            Err(e) => return Err(Error::new(e, &[b"mount(the mount holding ", d, b", ", name(flag), b")"])),
        }
    }
}

fn name(flag: usize) -> &'static [u8] {
    if flag == MS_SLAVE {
        b"MS_SLAVE"
    } else {
        b"MS_PRIVATE"
    }
}

/// After pivot_root(".", "."): "." is the old root, stacked on the new one.
pub fn old_root_slave() -> Result<(), Error<'static>> {
    msg::debug(&[b"make the old root rslave (mount(., MS_REC|MS_SLAVE))"]);
    sys::mount(None, c".", None, MS_REC | MS_SLAVE, None)
        .map_err(|e| Error::new(e, &[b"mount(old root, MS_REC|MS_SLAVE)"]))
}
