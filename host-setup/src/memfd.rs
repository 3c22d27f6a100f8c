//! Sealed in-memory files: init's image and the seccomp program init reads, passed
//! to a child instead of anything on the host's disk.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::error::{Result, SysContext};

/// A sealed in-memory copy of the init binary, to exec instead of the file.
///
/// runc's CVE-2019-5736: a process in the container opened /proc/PID/exe of a
/// host binary that had been exec'd into the container and wrote to it, replacing
/// the runtime on the host. Exec'ing init from a memfd sealed against writes,
/// growth and shrinking leaves nothing on the host's disk to reach that way.
pub fn sealed_init(path: &Path) -> Result<OwnedFd> {
    let fd = memfd_create(c"host-setup-init", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .sys(|| "memfd_create(host-setup-init)".into())?;
    let mut src = File::open(path).sys(|| format!("open {}", path.display()))?;
    let mut dst = File::from(fd.try_clone().sys(|| "dup memfd".into())?);
    std::io::copy(&mut src, &mut dst).sys(|| format!("copy {} into a memfd", path.display()))?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    nix::fcntl::fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals)).sys(|| "fcntl(memfd, F_ADD_SEALS)".into())?;
    Ok(fd)
}

/// `bytes` in a memfd sealed against any change (the seccomp filter init reads).
pub fn sealed_memfd(name: &std::ffi::CStr, bytes: &[u8]) -> Result<OwnedFd> {
    let what = || format!("memfd_create({})", name.to_string_lossy());
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).sys(what)?;
    let mut f = File::from(fd.try_clone().sys(|| "dup memfd".into())?);
    std::io::Write::write_all(&mut f, bytes).sys(|| format!("write {}", what()))?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    nix::fcntl::fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals)).sys(|| "fcntl(memfd, F_ADD_SEALS)".into())?;
    // init reads it from the start.
    nix::unistd::lseek(fd.as_fd(), 0, nix::unistd::Whence::SeekSet).sys(|| "lseek(memfd, 0)".into())?;
    Ok(fd)
}
