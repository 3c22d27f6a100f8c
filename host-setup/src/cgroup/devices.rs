//! Which devices a container may use: the same short list for cgroup v1 (the
//! devices controller's allow list) and v2 (an eBPF program attached to the
//! cgroup, as runc and crun do: v2 has no devices controller).
//!
//! Allowed: mknod of any node (CAP_MKNOD stays, as in Docker) but opening only the
//! character devices a minimal /dev has — null, zero, full, random, urandom, tty,
//! ptmx and the ptys. No block device at all: a node made for the host's disk
//! cannot be opened.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};
use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

/// One allow rule: kind, major and minor (None: any), access (r, w, m).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: &'static str,
}

const fn rule(kind: Kind, major: Option<u32>, minor: Option<u32>, access: &'static str) -> Rule {
    Rule { kind, major, minor, access }
}

/// The allow list; everything else is denied.
pub const ALLOWED: [Rule; 10] = [
    rule(Kind::Char, None, None, "m"),
    rule(Kind::Block, None, None, "m"),
    rule(Kind::Char, Some(1), Some(3), "rwm"), // null
    rule(Kind::Char, Some(1), Some(5), "rwm"), // zero
    rule(Kind::Char, Some(1), Some(7), "rwm"), // full
    rule(Kind::Char, Some(1), Some(8), "rwm"), // random
    rule(Kind::Char, Some(1), Some(9), "rwm"), // urandom
    rule(Kind::Char, Some(5), Some(0), "rwm"), // tty
    rule(Kind::Char, Some(5), Some(2), "rwm"), // ptmx
    rule(Kind::Char, Some(136), None, "rwm"),  // /dev/pts/*
];

impl Rule {
    /// The v1 `devices.allow` line: `c 1:3 rwm`, `b *:* m`.
    pub fn v1_line(&self) -> String {
        let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        let k = if self.kind == Kind::Char { 'c' } else { 'b' };
        format!("{k} {}:{} {}", n(self.major), n(self.minor), self.access)
    }
}

// --- cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE ---------------

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
// access_type = access << 16 | type; type 1 block, 2 char; access 1 mknod, 2 read, 4 write.
fn type_code(k: Kind) -> i32 {
    match k {
        Kind::Block => 1,
        Kind::Char => 2,
    }
}

fn access_bits(a: &str) -> i32 {
    a.chars()
        .map(|c| match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        })
        .sum()
}

/// The program: load type, access, major, minor; for each rule, fall through to
/// "return 1" (allow) if it matches, else jump to the next rule; "return 0" at the
/// end (deny). Registers: r2 type, r3 access, r4 major, r5 minor.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules {
        // The tests of this rule, each "jump to the next rule if it does not hold".
        let mut tests: Vec<Vec<Insn>> = vec![vec![insn(JMP_JNE_K, 2, 0, 0, type_code(r.kind))]];
        // Every requested access bit must be allowed: (access & allowed) == access.
        tests.push(vec![
            insn(ALU64_MOV_X, 1, 3, 0, 0),
            insn(ALU64_AND_K, 1, 0, 0, access_bits(r.access)),
            insn(JMP_JNE_X, 1, 3, 0, 0),
        ]);
        if let Some(m) = r.major {
            tests.push(vec![insn(JMP_JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = r.minor {
            tests.push(vec![insn(JMP_JNE_K, 5, 0, 0, m as i32)]);
        }
        let mut block: Vec<Insn> = tests.into_iter().flatten().collect();
        block.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                ins.off = (len - i - 1) as i16; // past the rest of this block
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Other programs (systemd's, say) may be attached higher up: ours adds to them.
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// Load the device program and attach it to the v2 cgroup `dir`. The attachment
/// lives as long as the cgroup; the fds can go.
pub fn attach_v2(dir: &Path) -> Result<()> {
    let prog = program(&ALLOWED);
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"hs_devices"); // letters, digits, _ and . only
    let load = |log: &mut [u8]| -> std::result::Result<i64, Errno> {
        let attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: license.as_ptr() as u64,
            // A log that does not fit fails the load (ENOSPC): ask for one only
            // to explain a failure.
            log_level: if log.is_empty() { 0 } else { 1 },
            log_size: log.len() as u32,
            log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
            prog_name: name,
            ..Default::default()
        };
        sys::bpf(BPF_PROG_LOAD, &attr)
    };
    let fd = match load(&mut []) {
        Ok(fd) => fd,
        Err(errno) => {
            let mut log = vec![0u8; 1 << 20];
            let _ = load(&mut log);
            let text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
            let e = Error::sys("bpf(BPF_PROG_LOAD, the device filter)", errno);
            return Err(if last.is_empty() { e } else { e.hint(format!("verifier: {last}")) });
        }
    };
    let prog_fd = sys::owned(fd as i32);
    let cg = std::fs::File::open(dir).sys(|| format!("open {}", dir.display()))?;
    let attach = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    sys::bpf(BPF_PROG_ATTACH, &attach)
        .map_err(|e| Error::sys(format!("bpf(BPF_PROG_ATTACH, {}, BPF_CGROUP_DEVICE)", dir.display()), e))?;
    log::debug!("attached the device filter ({} instructions) to {}", prog.len(), dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program on one access, as the kernel would (a tiny interpreter of
    /// the instructions `program` emits).
    fn run(p: &[Insn], kind: Kind, access: &str, major: u32, minor: u32) -> bool {
        let ctx = [((access_bits(access) as u32) << 16) | type_code(kind) as u32, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as i64,
                ALU64_AND_K => r[dst] &= i.imm as i64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as i64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K if r[dst] != i.imm as i64 => pc += i.off as usize,
                JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JMP_JNE_K | JMP_JNE_X => {}
                JMP_EXIT => return r[0] == 1,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_allows_the_minimal_dev_and_no_block_device() {
        let p = program(&ALLOWED);
        for (maj, min) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2), (136, 0), (136, 7)] {
            assert!(run(&p, Kind::Char, "rw", maj, min), "c {maj}:{min} rw");
        }
        assert!(run(&p, Kind::Block, "m", 254, 0), "mknod is allowed (CAP_MKNOD decides)");
        assert!(!run(&p, Kind::Block, "r", 254, 0), "reading the host's disk");
        assert!(!run(&p, Kind::Block, "w", 8, 0));
        assert!(!run(&p, Kind::Char, "r", 1, 1), "/dev/mem");
        assert!(!run(&p, Kind::Char, "rw", 10, 200), "/dev/net/tun");
        assert!(!run(&p, Kind::Char, "r", 4, 0), "/dev/tty0");
    }

    #[test]
    fn v1_lines() {
        let lines: Vec<String> = ALLOWED.iter().map(Rule::v1_line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert_eq!(lines[9], "c 136:* rwm");
    }

    #[test]
    fn jumps_land_on_rule_boundaries() {
        let p = program(&ALLOWED);
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JNE_X {
                let target = i + 1 + ins.off as usize;
                assert!(target < p.len());
                // A rule starts with the type test, or it is the final "deny".
                let t = p[target];
                assert!(t.code == JMP_JNE_K && t.regs == 2 || t.code == ALU64_MOV_K && t.imm == 0, "{i} -> {target}");
            }
        }
    }
}
