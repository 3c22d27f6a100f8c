//! Giving a test's child process an fd at a fixed number (init's `--spec-fd 10`,
//! `--ready-fd 11`, a leaked fd 222, ...).
//!
//! Two traps make the plain `pre_exec(dup2(src, N))` flaky under the test
//! harness's threads, where any fd number can be taken by another test:
//! - dup2(N, N) is a no-op that leaves FD_CLOEXEC set, so when the source
//!   already is fd N (a CLOEXEC memfd or pipe) the child loses it at execve;
//! - with two such hooks, the first dup2 may overwrite the fd the second one
//!   reads from (its source was the first one's target).
//!
//! `give_fd` first duplicates the source far above every target (F_DUPFD_CLOEXEC,
//! ≥ 256), so the child's dup2 always copies between two different numbers and
//! never clobbers another source.
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The lowest number the parked copies take; every target must be below it.
const PARK: RawFd = 256;

/// Gives `cmd`'s child (only) `fd` as fd number `target`. Keep the returned fd
/// (the parked copy) open until the command is spawned.
pub fn give_fd(cmd: &mut Command, fd: impl AsFd, target: RawFd) -> OwnedFd {
    assert!(target < PARK, "give_fd: target {target} must be below {PARK}");
    let parked = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(PARK))
        .unwrap_or_else(|e| panic!("fcntl(F_DUPFD_CLOEXEC, {PARK}): {e}"));
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    let parked = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(parked) };
    let src = parked.as_raw_fd();
    // SAFETY: the hook runs between fork and execve and only calls dup2, which is
    // async-signal-safe; `src` stays open in the parent until spawn (the caller
    // keeps `parked`), so it is open in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(src, target) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    parked
}
