//! seccomp_probe: makes each system call that Docker's default seccomp profile
//! refuses, with arguments that do no harm if it is let through, and prints one
//! line per call: `NAME OK` or `NAME ERRNO` (`EPERM`, `ENOSYS`, else `E<number>`).
//! tests/seccomp.rs runs it in containers with and without the filter.
//!
//! Each probe runs in a child of its own (unshare or personality would otherwise
//! change what the next probe sees), which exits with the errno (0: OK).
//!
//! Usage: seccomp_probe [NAME...]   (all probes if none; `list` prints the names)

use std::ffi::CString;

/// One probe: the raw return value of the call (-1 and errno on failure).
type Probe = fn() -> i64;

fn sys(n: libc::c_long, a: [libc::c_long; 5]) -> i64 {
    // SAFETY: every probe passes integers or pointers to live locals/constants
    // that the kernel only reads or writes within their sizes.
    unsafe { libc::syscall(n, a[0], a[1], a[2], a[3], a[4]) as i64 }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

const PROBES: &[(&str, Probe)] = &[
    // KEYCTL_GET_KEYRING_ID of the session keyring, without creating it.
    ("keyctl", || sys(libc::SYS_keyctl, [0, -3, 0, 0, 0])),
    // A key in this process's own keyring, gone when it exits.
    ("add_key", || {
        let (t, d) = (c("user"), c("seccomp-probe"));
        sys(libc::SYS_add_key, [t.as_ptr() as _, d.as_ptr() as _, b"x".as_ptr() as _, 1, -2])
    }),
    // UFFD_USER_MODE_ONLY: allowed without privilege since Linux 5.11.
    ("userfaultfd", || sys(libc::SYS_userfaultfd, [(libc::O_CLOEXEC | 1) as _, 0, 0, 0, 0])),
    ("io_uring_setup", || {
        let mut params = [0u8; 120];
        sys(libc::SYS_io_uring_setup, [1, params.as_mut_ptr() as _, 0, 0, 0])
    }),
    // BPF_MAP_CREATE with no attributes: EINVAL once past the permission checks.
    ("bpf", || sys(libc::SYS_bpf, [0, 0, 0, 0, 0])),
    ("perf_event_open", || {
        // PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK of this process, user only.
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // type: PERF_TYPE_SOFTWARE
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
        attr[8..16].copy_from_slice(&1u64.to_ne_bytes()); // config
        attr[40] = 0b0110_0001; // disabled, exclude_kernel, exclude_hv
        sys(libc::SYS_perf_event_open, [attr.as_ptr() as _, 0, -1, -1, 0])
    }),
    // Invalid flags: EINVAL (or ENOSYS without kexec) once past the checks.
    ("kexec_load", || sys(libc::SYS_kexec_load, [0, 0, 0, 0x7fff_0000, 0])),
    // A zero-length handle: EINVAL once past the checks.
    ("open_by_handle_at", || {
        let handle = [0u32; 4];
        sys(libc::SYS_open_by_handle_at, [libc::AT_FDCWD as _, handle.as_ptr() as _, 0, 0, 0])
    }),
    ("unshare_user", || sys(libc::SYS_unshare, [libc::CLONE_NEWUSER as _, 0, 0, 0, 0])),
    // Onto a path that does not exist: ENOENT once past the checks.
    ("mount", || {
        let (s, t, f) = (c("none"), c("/nonexistent/seccomp-probe"), c("tmpfs"));
        sys(libc::SYS_mount, [s.as_ptr() as _, t.as_ptr() as _, f.as_ptr() as _, 0, 0])
    }),
    ("socket_alg", || sys(libc::SYS_socket, [libc::AF_ALG as _, libc::SOCK_SEQPACKET as _, 0, 0, 0])),
    ("socket_vsock", || sys(libc::SYS_socket, [libc::AF_VSOCK as _, libc::SOCK_STREAM as _, 0, 0, 0])),
    ("socket_inet", || sys(libc::SYS_socket, [libc::AF_INET as _, libc::SOCK_DGRAM as _, 0, 0, 0])),
    // ADDR_NO_RANDOMIZE: not one of Docker's allowed personalities.
    ("personality", || sys(libc::SYS_personality, [0x0040000, 0, 0, 0, 0])),
    // A NULL, too small clone_args: EINVAL from the kernel; ENOSYS from the filter.
    ("clone3", || sys(libc::SYS_clone3, [0, 0, 0, 0, 0])),
    ("clone_newuser", clone_newuser),
    ("int80", int80),
    ("mkdir", || {
        let p = c("/seccomp-probe-dir");
        let r = sys(libc::SYS_mkdir, [p.as_ptr() as _, 0o700, 0, 0, 0]);
        if r == 0 {
            // SAFETY: p is a NUL-terminated path.
            unsafe { libc::rmdir(p.as_ptr()) };
        }
        r
    }),
];

/// clone(CLONE_NEWUSER|SIGCHLD) as fork: the child exits at once.
fn clone_newuser() -> i64 {
    let r = sys(libc::SYS_clone, [(libc::CLONE_NEWUSER | libc::SIGCHLD) as _, 0, 0, 0, 0]);
    if r == 0 {
        // SAFETY: the child only exits.
        unsafe { libc::_exit(0) }
    }
    if r > 0 {
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(r as i32, std::ptr::null_mut(), 0) };
    }
    r
}

/// getpid through the i386 ABI (`int 0x80`, eax 20): what a 32-bit program does.
#[cfg(target_arch = "x86_64")]
fn int80() -> i64 {
    let ret: i64;
    // SAFETY: i386 getpid takes no arguments and touches no memory; int 0x80
    // clobbers only rax here (r8-r11 are preserved by the 32-bit entry).
    unsafe { std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret, options(nostack)) };
    // The 32-bit entry returns -errno in eax.
    let ret = ret as i32 as i64;
    if ret < 0 {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = -ret as i32 };
        return -1;
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
fn int80() -> i64 {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = libc::ENOSYS };
    -1
}

/// Runs `probe` in a forked child; its errno (0: the call succeeded).
fn in_child(probe: Probe) -> Result<i32, String> {
    // SAFETY: the program is single-threaded; the child makes one call and exits.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            let r = probe();
            let e = if r < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(255) } else { 0 };
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(e.min(255)) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child, status is a live local.
            if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
            }
            if libc::WIFSIGNALED(status) {
                return Err(format!("killed by signal {}", libc::WTERMSIG(status)));
            }
            Ok(libc::WEXITSTATUS(status))
        }
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EPERM => "EPERM".into(),
        libc::ENOSYS => "ENOSYS".into(),
        n => format!("E{n}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("list") {
        PROBES.iter().for_each(|(n, _)| println!("{n}"));
        return;
    }
    let mut status = 0;
    for (name, probe) in PROBES {
        if !args.is_empty() && !args.iter().any(|a| a == name) {
            continue;
        }
        let verdict = match in_child(*probe) {
            Ok(0) => "OK".to_string(),
            Ok(e) => errno_name(e),
            Err(e) => format!("probe failed: {e}"),
        };
        println!("{name} {verdict}");
    }
    for a in &args {
        if !PROBES.iter().any(|(n, _)| n == a) {
            eprintln!("seccomp_probe: no probe named {a} (seccomp_probe list)");
            status = 2;
        }
    }
    std::process::exit(status);
}
