//! The containment calls: capability sets (--restrict) and the seccomp filter.

use syscalls::{syscall, Sysno};

use super::Result;

/// seccomp(SECCOMP_SET_MODE_FILTER, 0, prog): `filter` is a BPF program, one
/// struct sock_filter (u16 code, u8 jt, u8 jf, u32 k) per u64, native-endian.
pub fn seccomp_set_filter(filter: &[u64]) -> Result<()> {
    const SECCOMP_SET_MODE_FILTER: usize = 1;
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const u64,
    }
    let prog = SockFprog { len: filter.len() as u16, filter: filter.as_ptr() };
    // SAFETY: prog points to `filter`, whose len records stay borrowed for the
    // call; the kernel copies the program.
    unsafe { syscall!(Sysno::seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog as *const SockFprog) }.map(drop)
}

// ---- capabilities ------------------------------------------------------------

/// _LINUX_CAPABILITY_VERSION_3: 64-bit sets as two 32-bit halves.
const CAP_V3: u32 = 0x2008_0522;

/// The three capability sets of the calling thread, 64 bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// capget(2), version 3, of the calling thread.
pub fn capget() -> Result<CapSets> {
    let hdr = [CAP_V3, 0]; // struct __user_cap_header_struct { version, pid = 0: me }
    let mut data = [0u32; 6]; // struct __user_cap_data_struct[2] { effective, permitted, inheritable }

    // SAFETY: header and data have the layout and sizes version 3 wants.
    unsafe { syscall!(Sysno::capget, hdr.as_ptr(), data.as_mut_ptr()) }?;
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Ok(CapSets {
        effective: join(data[0], data[3]),
        permitted: join(data[1], data[4]),
        inheritable: join(data[2], data[5]),
    })
}

/// capset(2), version 3, on the calling thread.
pub fn capset(c: CapSets) -> Result<()> {
    let hdr = [CAP_V3, 0];
    let data = [
        c.effective as u32,
        c.permitted as u32,
        c.inheritable as u32,
        (c.effective >> 32) as u32,
        (c.permitted >> 32) as u32,
        (c.inheritable >> 32) as u32,
    ];
    // SAFETY: header and data have the layout and sizes version 3 wants.
    unsafe { syscall!(Sysno::capset, hdr.as_ptr(), data.as_ptr()) }.map(drop)
}
