//! The compiler from a `Profile` to a classic BPF program for seccomp, and a small
//! interpreter of such programs (to test the compiler's output by running it).
//!
//! The program's shape:
//! ```text
//!   ld arch; jeq NATIVE ? next : ret ERRNO(EPERM)     other ABIs (i386 int 0x80, arm32) refused
//!   ld nr;   jge 0x40000000 ? ret ERRNO(EPERM)        x86_64 only: the x32 ABI refused
//!   jgt LAST ? ret ERRNO(ENOSYS)                      newer than every call the profile names (runc's rule)
//!   per system call with rules:  jeq NR ? block : ja past block
//!       block: per rule, its conditions (a failed one jumps to the next rule), ret ACTION;
//!              after the last rule, ret DEFAULT
//!   ret DEFAULT
//! ```
//! Arguments are 64-bit and BPF is 32-bit: each comparison looks at the high word
//! (seccomp_data.args[i] + 4, little-endian) before the low one, as libseccomp does.

use super::{Action, Arch, Cond, Op, Profile};
use crate::error::Result;

/// BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;

/// One struct sock_filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_lo(index: u8) -> u32 {
    16 + 8 * index as u32
}

/// The x32 ABI's bit in the system call number (__X32_SYSCALL_BIT).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Where a conditional jump inside a rule goes.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// Forward by n more (0 is Next).
    Skip(u8),
    /// The next rule (this rule does not apply).
    Fail,
}

struct RuleCode(Vec<(u16, u32, To, To)>);

impl RuleCode {
    fn ld(&mut self, off: u32) {
        self.0.push((LD_W_ABS, off, To::Next, To::Next));
    }
    fn and(&mut self, k: u32) {
        self.0.push((ALU_AND_K, k, To::Next, To::Next));
    }
    fn j(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.0.push((code, k, jt, jf));
    }

    /// One condition on a 64-bit argument; falls through if it holds.
    fn cond(&mut self, c: &Cond) {
        let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
        let (off_hi, off_lo) = (off_lo(c.index) + 4, off_lo(c.index));
        match c.op {
            Op::Eq => {
                self.ld(off_hi);
                self.j(JEQ_K, hi, To::Next, To::Fail);
                self.ld(off_lo);
                self.j(JEQ_K, lo, To::Next, To::Fail);
            }
            Op::MaskedEq(mask) => {
                self.ld(off_hi);
                self.and((mask >> 32) as u32);
                self.j(JEQ_K, hi, To::Next, To::Fail);
                self.ld(off_lo);
                self.and(mask as u32);
                self.j(JEQ_K, lo, To::Next, To::Fail);
            }
            Op::Ne => {
                self.ld(off_hi);
                self.j(JEQ_K, hi, To::Next, To::Skip(2)); // high words differ: holds
                self.ld(off_lo);
                self.j(JEQ_K, lo, To::Fail, To::Next);
            }
            // a > v: hi > vhi, or hi == vhi and lo > vlo (lo >= vlo for Ge).
            Op::Gt | Op::Ge => {
                let low = if c.op == Op::Gt { JGT_K } else { JGE_K };
                self.ld(off_hi);
                self.j(JGT_K, hi, To::Skip(3), To::Next);
                self.j(JEQ_K, hi, To::Next, To::Fail);
                self.ld(off_lo);
                self.j(low, lo, To::Next, To::Fail);
            }
            // a < v is !(a >= v); a <= v is !(a > v).
            Op::Lt | Op::Le => {
                let low = if c.op == Op::Le { JGT_K } else { JGE_K };
                self.ld(off_hi);
                self.j(JGT_K, hi, To::Fail, To::Next);
                self.j(JEQ_K, hi, To::Next, To::Skip(2));
                self.ld(off_lo);
                self.j(low, lo, To::Fail, To::Next);
            }
        }
    }

    /// The rule's code: its conditions, then `ret action`; Fail lands after the ret.
    fn finish(self, action: Action) -> Result<Vec<Insn>> {
        let len = self.0.len() + 1;
        let mut out = Vec::with_capacity(len);
        for (i, (code, k, jt, jf)) in self.0.into_iter().enumerate() {
            let resolve = |t: To| -> Result<u8> {
                let n = match t {
                    To::Next => 0,
                    To::Skip(n) => n as usize,
                    To::Fail => len - i - 1,
                };
                u8::try_from(n).map_err(|_| crate::failed!("seccomp: a rule with too many argument conditions"))
            };
            out.push(jump(code, k, resolve(jt)?, resolve(jf)?));
        }
        out.push(stmt(RET_K, action.ret()));
        Ok(out)
    }
}

/// Compiles `p` for its architecture.
pub fn compile(p: &Profile) -> Result<Vec<Insn>> {
    let eperm = Action::Errno(libc::EPERM as u16).ret();
    let mut out =
        vec![stmt(LD_W_ABS, OFF_ARCH), jump(JEQ_K, p.arch.audit(), 1, 0), stmt(RET_K, eperm), stmt(LD_W_ABS, OFF_NR)];
    if p.arch == Arch::X86_64 {
        out.extend([jump(JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(RET_K, eperm)]);
    }
    // runc's rule (its ENOSYS stub, since 1.0): a call numbered above every call the
    // profile names gets ENOSYS, as from a kernel without it, not the default
    // action's EPERM: libc falls back on ENOSYS (glibc's faccessat2, clone3) and
    // takes EPERM for a refusal. tests/seccomp_docker.rs found Docker doing this.
    if !matches!(p.default, Action::Allow | Action::Log) {
        if let Some(last) = p.rules.iter().map(|r| r.nr).max() {
            out.extend([jump(JGT_K, last, 0, 1), stmt(RET_K, Action::Errno(libc::ENOSYS as u16).ret())]);
        }
    }
    // The rules of each system call, in the order the profile gives them.
    let mut by_nr: std::collections::BTreeMap<u32, Vec<&super::Rule>> = Default::default();
    for r in &p.rules {
        by_nr.entry(r.nr).or_default().push(r);
    }
    for (nr, rules) in by_nr {
        let (mut block, mut ends) = (Vec::new(), false);
        for r in rules {
            let mut code = RuleCode(Vec::new());
            for c in &r.conds {
                code.cond(c);
            }
            block.extend(code.finish(r.action)?);
            if r.conds.is_empty() {
                ends = true; // later rules for this call can never apply
                break;
            }
        }
        if !ends {
            block.push(stmt(RET_K, p.default.ret()));
        }
        out.push(jump(JEQ_K, nr, 1, 0));
        out.push(stmt(JA, block.len() as u32));
        out.extend(block);
    }
    out.push(stmt(RET_K, p.default.ret()));
    if out.len() > MAX_INSNS {
        return Err(crate::failed!(
            "seccomp: the profile needs {} BPF instructions, the kernel takes {MAX_INSNS}",
            out.len()
        ));
    }
    Ok(out)
}

/// The program as the bytes the kernel reads (struct sock_filter[], native-endian).
pub fn to_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut b = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        b.extend(i.code.to_ne_bytes());
        b.extend([i.jt, i.jf]);
        b.extend(i.k.to_ne_bytes());
    }
    b
}

/// struct seccomp_data, for `run`.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Runs `prog` on `d` as the kernel would (the subset of BPF `compile` emits);
/// returns the SECCOMP_RET_* value. Only the unit tests run it.
#[cfg(test)]
pub fn run(prog: &[Insn], d: &Data) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => d.nr,
            OFF_ARCH => d.arch,
            o if (16..64).contains(&o) => {
                let a = d.args[(o as usize - 16) / 8];
                if o % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load from seccomp_data offset {o}"),
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k),
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let hit = match i.code {
                    JEQ_K => acc == i.k,
                    JGT_K => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if hit { i.jt } else { i.jf } as usize;
            }
            RET_K => return i.k,
            c => panic!("opcode {c:#x} at {}", pc - 1),
        }
    }
}
