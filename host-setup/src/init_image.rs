//! init's image: the file a container's PID 1 is exec'd from (execveat with
//! AT_EMPTY_PATH on the fd made here), never the host's file by its path.
//!
//! runc's CVE-2019-5736: a process in the container opened /proc/PID/exe of a
//! host binary exec'd into the container and wrote to it, replacing the runtime
//! on the host. As runc 1.2 does (libcontainer/dmz, "overlayfs" sealing), init is
//! opened through an overlay made for it alone:
//!
//! - two lower layers and no upper (init's own dir over the container's empty
//!   `image/` dir: overlay takes no fewer without an upper), made with the new
//!   mount API and attached nowhere, so no path of any mount namespace leads to it;
//! - no upper dir makes the *superblock* read-only: opening the file for writing
//!   gives EROFS, and so does a clone of the mount (open_tree) made writable: a
//!   read-only bind mount of the host's file would not be enough against a
//!   container with CAP_SYS_ADMIN;
//! - reads and mmap go to the lower file, so init's pages are the host file's page
//!   cache: one copy in memory for every container (a memfd copy is ~92 kB of
//!   private memory each).
//!
//! Where that fails (no overlay, a kernel without fsopen, a path of over 255
//! bytes), init is copied into a sealed memfd instead (memfd.rs): as safe, one
//! copy per container.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::Result;
use crate::sys::FsContext;

/// The fd to exec `init` from: through a read-only overlay of its dir over
/// `empty` (an empty dir of the container's), or a sealed memfd copy.
pub fn init_image(init: &Path, empty: &Path) -> Result<OwnedFd> {
    let t = std::time::Instant::now();
    match overlay(init, empty) {
        Ok(fd) => {
            log::debug!("init image: {} through a read-only overlay ({:.2?})", init.display(), t.elapsed());
            Ok(fd)
        }
        Err(e) => {
            log::debug!("init image: {e}; a sealed memfd copy instead");
            crate::memfd::sealed_init(init)
        }
    }
}

/// `init` opened O_PATH in a detached overlay of its dir over `empty`, checked to
/// be an overlay file. The error names the call that failed.
fn overlay(init: &Path, empty: &Path) -> std::result::Result<OwnedFd, String> {
    let (dir, name) = match (init.parent(), init.file_name()) {
        (Some(d), Some(n)) if !d.as_os_str().is_empty() => (d, n),
        _ => return Err(format!("{}: not an absolute path to a file", init.display())),
    };
    let (top, below) = (dir.as_os_str().as_bytes(), empty.as_os_str().as_bytes());
    // `lowerdir+` (Linux 6.8) takes one layer per call, no escaping. Older kernels
    // refuse it (EINVAL: when it is set from 6.5, at the create before), and take
    // the one `lowerdir=TOP:BELOW` string instead.
    let mnt = match create(&[("lowerdir+", top), ("lowerdir+", below)]) {
        Err((_, Errno::EINVAL)) => create(&[("lowerdir", &lowerdir(&[top, below]))]),
        r => r,
    }
    .map_err(|(what, e)| format!("{what}: {}", crate::error::errno_text(e)))?;
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let name: &OsStr = name;
    let fd = nix::fcntl::openat(mnt.as_fd(), name, flags, Mode::empty())
        .map_err(|e| format!("open {} in the overlay: {}", name.to_string_lossy(), crate::error::errno_text(e)))?;
    // What is exec'd must be the overlay's file, not one a path led elsewhere.
    match crate::sys::fs_type(fd.as_fd()) {
        Ok(t) if t == libc::OVERLAYFS_SUPER_MAGIC => Ok(fd),
        Ok(t) => Err(format!("{} in the overlay is on filesystem {t:#x}", name.to_string_lossy())),
        Err(e) => Err(format!("fstatfs {}: {}", name.to_string_lossy(), crate::error::errno_text(e))),
    }
}

/// fsopen("overlay"), the options in order, the superblock made and mounted
/// read-only nowhere. Err: the call that failed and its errno.
fn create(options: &[(&str, &[u8])]) -> std::result::Result<OwnedFd, (String, Errno)> {
    let ctx = FsContext::open("overlay").map_err(|e| ("fsopen(overlay)".to_string(), e))?;
    for (key, value) in options {
        ctx.set(key, value).map_err(|e| (format!("fsconfig({key}={})", String::from_utf8_lossy(value)), e))?;
    }
    ctx.mount_read_only().map_err(|e| ("fsconfig(FSCONFIG_CMD_CREATE) + fsmount(overlay)".to_string(), e))
}

/// The layers as one `lowerdir=` value: joined by `:`, with `\`, `:` and `,` in a
/// path escaped by a backslash (overlay's own parser unescapes them).
fn lowerdir(layers: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![];
    for (i, layer) in layers.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        for &b in *layer {
            if matches!(b, b'\\' | b':' | b',') {
                out.push(b'\\');
            }
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::lowerdir;

    #[test]
    fn lowerdir_joins_and_escapes() {
        assert_eq!(
            lowerdir(&[b"/usr/lib/hs", b"/var/lib/hs/containers/a/image"]),
            b"/usr/lib/hs:/var/lib/hs/containers/a/image"
        );
        assert_eq!(lowerdir(&[b"/a:b", b"/c,d\\e"]), b"/a\\:b:/c\\,d\\\\e".to_vec());
    }
}
