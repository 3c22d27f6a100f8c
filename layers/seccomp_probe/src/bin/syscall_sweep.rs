//! syscall_sweep: makes every system call number of every x86 ABI (x86_64, x32
//! and i386's `int 0x80`) under the container's seccomp filter, with argument
//! values that reach the argument rules of Docker's profile (clone's namespace
//! flags, socket's address families, personality's values), and prints one line
//! per call: `ABI NR NAME ARGS -> VERDICT`, VERDICT being `allowed` (the call got
//! past the container's filter) or the errno the filter returned (`EPERM`,
//! `ENOSYS`, `E<n>`). tests/seccomp_docker.rs compares Docker's filter with ours.
//!
//! No call ever runs: before the sweep, the sweeping thread stacks a filter of
//! its own that answers every call with SECCOMP_RET_USER_NOTIF, and this
//! process's other thread (not under that filter) answers each notification.
//! The kernel runs every filter and keeps the strongest action: ERRNO beats
//! USER_NOTIF, which beats ALLOW. So a call the container's filter refuses fails
//! with its errno and no notification, and a call it allows comes to us, and we
//! answer it with error ALLOWED instead of letting it run: reboot, exit or kill
//! with any arguments are harmless. Between calls, the thread's own calls (a
//! notification while no call is being probed) are let through (CONTINUE).
//!
//! Usage: syscall_sweep        (needs seccomp(2), ioctl(2) and poll(2) allowed)

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};

/// The error we answer a call that got past the container's filter with (any
/// errno no filter here uses; below MAX_ERRNO 4095).
const ALLOWED: i32 = 4000;
/// The answer to a notification that is not the call being probed.
const MISMATCH: i32 = 4001;
const NONE: usize = usize::MAX;
/// __X32_SYSCALL_BIT.
const X32_BIT: u64 = 0x4000_0000;

#[derive(Clone, Copy, PartialEq)]
enum Abi {
    X86_64,
    X32,
    I386,
}

struct Call {
    abi: Abi,
    nr: u64,
    args: [u64; 6],
}

/// The calls, in the order printed.
fn calls() -> Vec<Call> {
    let mut v = Vec::new();
    let ones32 = [0xffff_ffffu64; 6];
    // Two generic argument sets for every number: all zero, all ones.
    for abi in [Abi::X86_64, Abi::X32, Abi::I386] {
        let last = match abi {
            // x86_64's table and 32 numbers past it; 512-547 are x32's own entries.
            Abi::X86_64 | Abi::X32 => 547,
            Abi::I386 => syscalls::x86::Sysno::last().id() as u64 + 32,
        };
        let ones = if abi == Abi::I386 { ones32 } else { [u64::MAX; 6] };
        for nr in 0..=last {
            v.push(Call { abi, nr, args: [0; 6] });
            v.push(Call { abi, nr, args: ones });
        }
        // The argument rules, on arg 0 (the calls' numbers in each ABI).
        let (clone, socket, personality) = match abi {
            Abi::X86_64 | Abi::X32 => (56, 41, 135),
            Abi::I386 => (120, 359, 136),
        };
        let wide = abi != Abi::I386;
        // SIGCHLD, each namespace flag (CLONE_NEWTIME 0x80 is not one Docker
        // checks), a thread's flags, a value with the high word set.
        let mut clone_flags = vec![0x11u64, 0x3d0f00, 0x80 | 0x11];
        clone_flags.extend(
            [0x20000u64, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000]
                .map(|f| f | 0x11),
        );
        // AF_UNSPEC..AF_MAX (46) and past it.
        let mut families: Vec<u64> = (0..=47).collect();
        families.push(0xffff_ffff);
        // Docker's (PER_LINUX, PER_LINUX32, UNAME26, both, query) and others
        // (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_BSD, PER_SVR4).
        let mut pers = vec![0u64, 8, 0x20000, 0x20008, 0xffff_ffff, 0x40000, 0x400000, 6, 0x0400_0068];
        if wide {
            // 64-bit values whose low word is an allowed one: a filter must compare all 64 bits.
            clone_flags.push(0x1_0000_0011);
            families.extend([0x1_0000_0026, 0x1_0000_0002]);
            pers.extend([0x1_0000_0000, 0x1_0000_0008]);
        }
        for (nr, values) in [(clone, clone_flags), (socket, families), (personality, pers)] {
            for a in values {
                let mut args = [0; 6];
                args[0] = a;
                v.push(Call { abi, nr, args });
            }
        }
    }
    // x32's numbers are x86_64's with __X32_SYSCALL_BIT.
    for c in v.iter_mut().filter(|c| c.abi == Abi::X32) {
        c.nr |= X32_BIT;
    }
    v
}

fn name(abi: Abi, nr: u64) -> String {
    let n = nr & !X32_BIT;
    let s = match abi {
        Abi::I386 => syscalls::x86::Sysno::new(n as usize).map(|s| s.name()),
        _ => syscalls::x86_64::Sysno::new(n as usize).map(|s| s.name()),
    };
    match (abi, s) {
        (Abi::X32, _) if (512..=547).contains(&n) => "x32_compat".into(),
        (_, Some(s)) => s.into(),
        (_, None) => "-".into(),
    }
}

/// The call being probed (index into CALLS), or NONE.
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);
static LISTENER: AtomicI32 = AtomicI32::new(-1);
static DONE: AtomicBool = AtomicBool::new(false);

/// One raw call; returns the kernel's raw return value (-errno on failure).
fn raw(c: &Call) -> i64 {
    let a = c.args;
    let ret: i64;
    if c.abi == Abi::I386 {
        let r: u32;
        // SAFETY: the i386 entry reads eax, ebx, ecx, edx, esi, edi, ebp and
        // returns in eax. rbx and rbp cannot be asm operands: they are swapped
        // and saved by hand. No call runs (see the module's comment), so no
        // memory is touched. r8-r11 are declared clobbered to be safe.
        unsafe {
            std::arch::asm!(
                "xchg rbx, {b}",
                "push rbp",
                "mov ebp, {p:e}",
                "int 0x80",
                "pop rbp",
                "xchg rbx, {b}",
                b = inout(reg) a[0] => _,
                p = in(reg) a[5],
                inlateout("eax") c.nr as u32 => r,
                in("ecx") a[1] as u32, in("edx") a[2] as u32, in("esi") a[3] as u32, in("edi") a[4] as u32,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            )
        };
        ret = r as i32 as i64;
    } else {
        // SAFETY: the x86_64 syscall convention; as above, no call runs.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") c.nr => ret,
                in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5],
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            )
        };
    }
    ret
}

/// The sweeping thread: stacks the notifying filter, then makes every call.
fn sweep(calls: &[Call], start: usize, results: &mut [i64], at: &AtomicUsize) -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("prctl no_new_privs: {}", std::io::Error::last_os_error()));
    }
    // One instruction: ret SECCOMP_RET_USER_NOTIF.
    let prog = [libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fc0_0000 }];
    let fprog = libc::sock_fprog { len: 1, filter: prog.as_ptr() as *mut _ };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
    // fprog and prog outlive the call. Only this thread gets the filter (no TSYNC).
    let fd = unsafe { libc::syscall(libc::SYS_seccomp, 1, 1 << 3, &fprog as *const _) };
    if fd < 0 {
        return Err(format!("seccomp new listener: {}", std::io::Error::last_os_error()));
    }
    LISTENER.store(fd as i32, SeqCst);
    for (i, c) in calls.iter().enumerate().skip(start) {
        at.store(i, SeqCst);
        CURRENT.store(i, SeqCst);
        results[i] = raw(c);
        CURRENT.store(NONE, SeqCst);
    }
    Ok(())
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Resp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// The answering thread: until the sweeping thread is gone (POLLHUP: no task
/// uses the filter any more).
fn answer(calls: &[Call]) -> Result<(), String> {
    let start = std::time::Instant::now();
    let fd = loop {
        match LISTENER.load(SeqCst) {
            -1 if DONE.load(SeqCst) => return Ok(()),
            -1 => std::thread::sleep(std::time::Duration::from_millis(1)),
            fd => break fd,
        }
    };
    loop {
        if start.elapsed().as_secs() > 120 {
            return Err("the sweep took over 120 s".into());
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 200) };
        if n < 0 {
            return Err(format!("poll: {}", std::io::Error::last_os_error()));
        }
        if p.revents & libc::POLLIN == 0 {
            if p.revents & libc::POLLHUP != 0 {
                return Ok(());
            }
            continue;
        }
        let mut nt = Notif::default();
        // SAFETY: nt is a zeroed struct seccomp_notif (the kernel requires zero).
        if unsafe { libc::ioctl(fd, NOTIF_RECV, &mut nt as *mut Notif) } != 0 {
            // ENOENT: the task went away before we read it.
            continue;
        }
        let cur = CURRENT.load(SeqCst);
        let mut r = Resp { id: nt.id, val: 0, error: 0, flags: 1 }; // SECCOMP_USER_NOTIF_FLAG_CONTINUE
        if cur != NONE {
            let c = &calls[cur];
            let same = nt.nr as u32 as u64 == c.nr && nt.args == c.args;
            r.flags = 0;
            r.error = -if same { ALLOWED } else { MISMATCH };
        }
        // SAFETY: r is a live struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd, NOTIF_SEND, &r as *const Resp) };
    }
}

fn verdict(ret: i64) -> String {
    match -ret {
        _ if ret > KILLED && ret < KILLED + 65 => format!("killed by signal {}", ret - KILLED),
        _ if ret >= 0 => format!("returned {ret}"),
        e if e == ALLOWED as i64 => "allowed".into(),
        e if e == MISMATCH as i64 => "mismatch".into(),
        1 => "EPERM".into(),
        38 => "ENOSYS".into(),
        e => format!("E{e}"),
    }
}

/// A result: killed by signal (KILLED + signal number).
const KILLED: i64 = i64::MIN;

/// Sweeps `calls` from `start` in this (forked, single-threaded) process; each
/// result goes to `results` and the index of the call being made to `at`, both
/// in memory shared with the parent.
fn sweep_from(calls: &[Call], start: usize, results: &mut [i64], at: &AtomicUsize) -> Result<(), String> {
    let (swept, answered) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let r = sweep(calls, start, results, at);
            DONE.store(true, SeqCst);
            r
        });
        let answered = answer(calls);
        (w.join().unwrap(), answered)
    });
    swept.and(answered)
}

fn main() {
    let calls = calls();
    let n = calls.len();
    // results[0..n] and the index being probed, shared with the children.
    let bytes = (n + 1) * 8;
    // SAFETY: a fresh anonymous shared mapping, checked below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        eprintln!("syscall_sweep: mmap: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // SAFETY: the mapping holds n + 1 zeroed, aligned 8-byte words, used by one
    // process at a time (the parent reads only after its child is gone).
    let (results, at) =
        unsafe { (std::slice::from_raw_parts_mut(mem as *mut i64, n), &*(mem as *const AtomicUsize).add(n)) };
    // A number the kernel kills the caller for (this host's kernel kills with
    // SIGILL on x86_64's unassigned 335, before any filter runs) ends one child;
    // the next child goes on after it.
    let mut start = 0;
    while start < n {
        // SAFETY: this process has one thread here; the child runs the sweep and exits.
        match unsafe { libc::fork() } {
            -1 => {
                eprintln!("syscall_sweep: fork: {}", std::io::Error::last_os_error());
                std::process::exit(1);
            }
            0 => {
                let code = match sweep_from(&calls, start, results, at) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("syscall_sweep: {e}");
                        1
                    }
                };
                // SAFETY: ends the child without the parent's exit handlers.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut st = 0;
                // SAFETY: waits for our own child; st is a live local.
                if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
                    eprintln!("syscall_sweep: waitpid: {}", std::io::Error::last_os_error());
                    std::process::exit(1);
                }
                if libc::WIFSIGNALED(st) {
                    let i = at.load(SeqCst);
                    results[i] = KILLED + libc::WTERMSIG(st) as i64;
                    start = i + 1;
                } else if libc::WEXITSTATUS(st) != 0 {
                    std::process::exit(1);
                } else {
                    break;
                }
            }
        }
    }
    let abi = |a| match a {
        Abi::X86_64 => "x86_64",
        Abi::X32 => "x32",
        Abi::I386 => "i386",
    };
    let mut out = String::new();
    for (c, r) in calls.iter().zip(results.iter()) {
        let args: Vec<String> = c.args.iter().map(|a| format!("{a:#x}")).collect();
        out += &format!("{} {:#x} {} {} -> {}\n", abi(c.abi), c.nr, name(c.abi, c.nr), args.join(","), verdict(*r));
    }
    use std::io::Write;
    std::io::stdout().write_all(out.as_bytes()).unwrap();
}
