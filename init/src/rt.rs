//! Start glue of the binary (no C runtime): `_start`, the memory functions the
//! compiler and core call, and the panic handler.

use core::arch::{asm, global_asm};
use core::ffi::c_char;

use init::msg::{self, Line};
use init::{pid1, sys};

// The kernel enters at `_start` with rsp pointing at: argc, argv[0..argc], NULL,
// envp[..], NULL, auxv. There is no return address: `entry` must never return.
global_asm!(
    ".globl _start",
    ".type _start, @function",
    "_start:",
    "    xor ebp, ebp", // the outermost frame, for debuggers
    "    mov rdi, rsp", // entry(sp)
    "    and rsp, -16", // the ABI wants a 16-byte aligned stack at every call
    "    call {entry}",
    "    ud2",
    entry = sym entry,
);

/// # Safety
/// Only `_start` calls it, with the kernel's initial stack pointer.
unsafe extern "C" fn entry(sp: *const usize) -> ! {
    let argc = *sp;
    let argv = sp.add(1) as *const *const c_char;
    let envp = argv.add(argc + 1);
    crate::main(argc, argv, envp)
}

// The memory functions libc would provide. LLVM turns plain copy loops into
// calls to memcpy/memset, so a naive loop here would call itself: the string
// instructions (the direction flag is clear by the ABI) cannot be rewritten.
// Safety of each: the C contract, which the compiler and core keep when they
// call them (valid pointers for n bytes; for strlen, a NUL-terminated string).

#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
         options(nostack, preserves_flags));
    dst
}

#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // dst is before src, or past its end: a forward copy never overwrites unread bytes.
        memcpy(dst, src, n)
    } else {
        // dst overlaps the tail of src: copy backwards, from the last byte.
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n).wrapping_sub(1) => _,
             inout("rsi") src.add(n).wrapping_sub(1) => _, options(nostack));
        dst
    }
}

#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
         options(nostack, preserves_flags));
    dst
}

// Comparison loops with volatile reads, which LLVM may not turn back into a call.

#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = (a.add(i).read_volatile(), b.add(i).read_volatile());
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    memcmp(a, b, n)
}

/// core's `CStr::from_ptr` calls strlen.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const c_char) -> usize {
    let mut n = 0;
    while s.add(n).read_volatile() != 0 {
        n += 1;
    }
    n
}

/// A bug in init: say where, and exit as a failed init would (no unwinding,
/// and no core::fmt, which would triple the binary).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut line = Line::new();
    line.push(b"internal error: panic");
    if let Some(loc) = info.location() {
        line.push(b" at ").push(loc.file().as_bytes()).push(b":").num(loc.line() as i64);
    }
    msg::eprint(&[line.as_bytes()]);
    sys::exit(pid1::EXIT_SETUP)
}

/// Never called (panic = "abort": nothing unwinds), but the prebuilt libcore
/// references it from its unwind tables, which only LTO (release) drops.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
