//! Signal mask, dispositions and waiting (init installs no handler: it collects
//! signals with sigtimedwait).

use core::ptr::null;

use syscalls::{syscall, Sysno};

use super::{Result, SigSet};

const SIG_SETMASK: usize = 2;

/// rt_sigprocmask(SIG_SETMASK): installs `set`, returns the previous mask.
pub fn sigsetmask(set: SigSet) -> Result<SigSet> {
    let mut old: SigSet = 0;
    // SAFETY: both pointers are to live 8-byte sigsets, the size passed.
    unsafe { syscall!(Sysno::rt_sigprocmask, SIG_SETMASK, &set as *const SigSet, &mut old as *mut SigSet, 8) }?;
    Ok(old)
}

/// The kernel's struct sigaction on x86_64 (not glibc's).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: SigSet,
}

/// Sets the disposition of `sig` to SIG_DFL or SIG_IGN and returns the one it
/// had (init installs no handlers: it collects signals with sigtimedwait
/// instead, so it needs no restorer).
pub fn signal_disposition(sig: i32, handler: usize) -> Result<usize> {
    let act = KernelSigaction { handler, flags: 0, restorer: 0, mask: 0 };
    let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: both point at live structs of the kernel's layout; the size is that of its sigset.
    unsafe { syscall!(Sysno::rt_sigaction, sig, &act as *const KernelSigaction, &mut old as *mut KernelSigaction, 8) }?;
    Ok(old.handler)
}

/// rt_sigtimedwait(2) with no timeout: takes one pending signal of `set`
/// (which must be blocked) off the queue and returns its number.
pub fn sigwait(set: SigSet) -> Result<i32> {
    let mut info = [0u64; 16]; // siginfo_t is 128 bytes

    // SAFETY: set is a live 8-byte sigset, info 128 writable bytes, no timeout (NULL).
    unsafe { syscall!(Sysno::rt_sigtimedwait, &set as *const SigSet, info.as_mut_ptr(), null::<u8>(), 8) }
        .map(|s| s as i32)
}
