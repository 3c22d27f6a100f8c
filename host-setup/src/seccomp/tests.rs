use super::bpf::{self, Data, Insn};
use super::docker::Host;
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

fn x86() -> Profile {
    default_profile(Arch::X86_64)
}

fn arg0(v: u64) -> [u64; 6] {
    [v, 0, 0, 0, 0, 0]
}

/// A one-rule profile on getpid's arg `index` (default EPERM).
fn one(conds: Vec<Cond>) -> (Profile, Vec<Insn>) {
    let arch = Arch::X86_64;
    let rules = vec![Rule { nr: arch.nr("getpid").unwrap(), conds, action: Action::Allow }];
    let p = Profile { arch, default: Action::Errno(1), rules };
    let prog = bpf::compile(&p).unwrap();
    (p, prog)
}

fn run_on(p: &Profile, prog: &[Insn], name: &str, args: [u64; 6]) -> u32 {
    bpf::run(prog, &Data { nr: p.arch.nr(name).unwrap(), arch: p.arch.audit(), args })
}

#[test]
fn each_comparison_matches_its_64_bit_meaning() {
    let values = [0, 1, 37, 38, 39, 40, 41, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0026, 0x2_0000_0000, u64::MAX];
    type Meaning = fn(u64, u64) -> bool;
    let ops: [(Op, Meaning); 6] = [
        (Op::Eq, |a, v| a == v),
        (Op::Ne, |a, v| a != v),
        (Op::Lt, |a, v| a < v),
        (Op::Le, |a, v| a <= v),
        (Op::Gt, |a, v| a > v),
        (Op::Ge, |a, v| a >= v),
    ];
    for index in [0u8, 3, 5] {
        for (op, want) in ops {
            for v in values {
                let (p, prog) = one(vec![Cond { index, op, value: v }]);
                for a in values {
                    let mut args = [7u64; 6];
                    args[index as usize] = a;
                    let got = run_on(&p, &prog, "getpid", args) == ALLOW;
                    assert_eq!(got, want(a, v), "arg{index}={a:#x} {op:?} {v:#x}");
                }
            }
        }
    }
}

#[test]
fn masked_eq_and_several_conditions() {
    let mask = 0x7e02_0000_0000_00ffu64;
    let (p, prog) = one(vec![Cond { index: 1, op: Op::MaskedEq(mask), value: 0x10 }]);
    let v = |a: u64| run_on(&p, &prog, "getpid", [0, a, 0, 0, 0, 0]) == ALLOW;
    assert!(v(0x10) && v(0xff00_0110) && v(0x8000_0000_0000_0010));
    assert!(!v(0x11) && !v(0x0200_0000_0000_0010) && !v(0));
    // Every condition of a rule must hold.
    let both = vec![Cond { index: 0, op: Op::Gt, value: 5 }, Cond { index: 2, op: Op::Eq, value: 9 }];
    let (p, prog) = one(both);
    let v = |a0, a2| run_on(&p, &prog, "getpid", [a0, 0, a2, 0, 0, 0]);
    assert_eq!((v(6, 9), v(5, 9), v(6, 8)), (ALLOW, 0x0005_0001, 0x0005_0001));
}

#[test]
fn other_abis_are_refused() {
    let p = x86();
    let prog = bpf::compile(&p).unwrap();
    // i386 (int 0x80) getpid is 20, and 20 is getpid... on no ABI we allow: refused by arch.
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    let getpid = p.arch.nr("getpid").unwrap();
    assert_eq!(bpf::run(&prog, &Data { nr: getpid, arch: p.arch.audit(), args: [0; 6] }), ALLOW);
    assert_eq!(bpf::run(&prog, &Data { nr: 20, arch: AUDIT_ARCH_I386, args: [0; 6] }), EPERM);
    assert_eq!(bpf::run(&prog, &Data { nr: getpid, arch: 0xc000_00b7, args: [0; 6] }), EPERM);
    // x32: same audit arch, the x32 bit in the number.
    let x32 = bpf::X32_SYSCALL_BIT | getpid;
    assert_eq!(bpf::run(&prog, &Data { nr: x32, arch: p.arch.audit(), args: [0; 6] }), EPERM);
    // A number above every call the profile names: ENOSYS, as runc gives (its
    // ENOSYS stub), so that libc falls back; below it, the default EPERM.
    let nr = |nr| bpf::run(&prog, &Data { nr, arch: p.arch.audit(), args: [0; 6] });
    assert_eq!(nr(1000), ENOSYS);
    let last = p.rules.iter().map(|r| r.nr).max().unwrap();
    assert_eq!((nr(last), nr(last + 1)), (ALLOW, ENOSYS), "{last}");
    assert_eq!(nr(p.arch.nr("kexec_load").unwrap()), EPERM);
    // Not with a default that allows (the kernel answers ENOSYS itself).
    let open = Profile { default: Action::Allow, ..x86() };
    assert_eq!(bpf::run(&bpf::compile(&open).unwrap(), &Data { nr: 1000, arch: p.arch.audit(), args: [0; 6] }), ALLOW);
}

#[test]
fn default_refuses_what_docker_refuses() {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let p = default_profile(arch);
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "io_uring_setup",
            "bpf",
            "perf_event_open",
            "kexec_load",
            "open_by_handle_at",
            "unshare",
            "setns",
            "mount",
            "umount2",
            "init_module",
            "finit_module",
            "pivot_root",
            "fsopen",
            "move_mount",
            "swapon",
            "reboot",
        ] {
            assert_eq!(p.verdict(name, [0; 6]), EPERM, "{name} on {arch:?}");
        }
        for name in ["read", "write", "execve", "wait4", "kill", "rt_sigtimedwait", "prctl", "setpgid", "chroot"] {
            assert_eq!(p.verdict(name, [0; 6]), ALLOW, "{name} on {arch:?}");
        }
        assert_eq!(p.verdict("clone3", [0; 6]), ENOSYS);
        // clone: threads and fork pass, any namespace flag does not.
        let thread =
            (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD) as u64;
        assert_eq!(p.verdict("clone", arg0(libc::SIGCHLD as u64)), ALLOW);
        assert_eq!(p.verdict("clone", arg0(thread)), ALLOW);
        for ns in
            [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWPID, libc::CLONE_NEWCGROUP]
        {
            assert_eq!(p.verdict("clone", arg0(ns as u64 | libc::SIGCHLD as u64)), EPERM, "clone {ns:#x}");
        }
        for (family, want) in
            [(2, ALLOW), (10, ALLOW), (16, ALLOW), (37, ALLOW), (38, EPERM), (39, ALLOW), (40, EPERM), (41, ALLOW)]
        {
            assert_eq!(p.verdict("socket", arg0(family)), want, "socket({family})");
        }
        // personality(ADDR_NO_RANDOMIZE) is refused; the harmless values pass.
        for (v, want) in
            [(0, ALLOW), (8, ALLOW), (0x20000, ALLOW), (0xffff_ffff, ALLOW), (0x0040000, EPERM), (1, EPERM)]
        {
            assert_eq!(p.verdict("personality", arg0(v)), want, "personality({v:#x})");
        }
    }
}

/// Pins the allow list: a new `syscalls` crate that knows new system calls makes
/// this fail, and someone decides about them (Docker allows a new call only once
/// it is in its list).
#[test]
fn default_allows_a_known_number_of_calls() {
    for (arch, want) in [(Arch::X86_64, 306), (Arch::Aarch64, 283)] {
        let p = default_profile(arch);
        let unconditional = p.rules.iter().filter(|r| r.conds.is_empty() && r.action == Action::Allow).count();
        assert_eq!(unconditional, want, "{arch:?}");
        // Every name in DENIED exists somewhere (no typo hides a call).
        let all: Vec<&str> = [Arch::X86_64, Arch::Aarch64].iter().flat_map(|a| a.names()).collect();
        for d in DENIED {
            assert!(all.contains(d) || ["create_module", "_sysctl", "uselib"].contains(d), "{d}: unknown name");
        }
        assert!(bpf::compile(&p).unwrap().len() < bpf::MAX_INSNS);
    }
}

const TEST_PROFILE: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["sync"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
    {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["s390x"]}},
    {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "99.0"}},
    {"names": ["no_such_call", "getuid"], "action": "SCMP_ACT_LOG"},
    {"name": "setuid", "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
     "args": [{"index": 0, "value": 10, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
     "args": [{"index": 0, "value": 268435456, "valueTwo": 268435456, "op": "SCMP_CMP_MASKED_EQ"}]}
  ]
}"#;

#[test]
fn docker_json_profiles() {
    let host = Host::current();
    let p = parse_docker(TEST_PROFILE, Arch::X86_64, &host).unwrap();
    assert_eq!(p.default, Action::Allow);
    assert_eq!(p.verdict("mkdir", [0; 6]), 0x0005_0000 | 13);
    assert_eq!(p.verdict("mkdirat", [0; 6]), 0x0005_0000 | 13);
    assert_eq!(p.verdict("rmdir", [0; 6]), EPERM, "errno without errnoRet is EPERM");
    // includes/excludes, decided for Docker's capabilities, amd64 and this kernel.
    assert_eq!(p.verdict("chroot", [0; 6]), ALLOW, "CAP_SYS_ADMIN is not kept");
    assert_eq!(p.verdict("sync", [0; 6]), ALLOW, "CAP_SYS_CHROOT is kept");
    assert_eq!(p.verdict("getpid", [0; 6]), ALLOW, "s390x only");
    assert_eq!(p.verdict("getppid", [0; 6]), ALLOW, "Linux 99");
    assert_eq!(p.verdict("getuid", [0; 6]), 0x7ffc_0000);
    assert_eq!(p.verdict("setuid", [0; 6]), 0x8000_0000);
    assert_eq!(p.verdict("socket", arg0(10)), 0x0005_0000 | 97);
    assert_eq!(p.verdict("socket", arg0(2)), ALLOW);
    assert_eq!(p.verdict("clone", arg0(libc::CLONE_NEWUSER as u64)), EPERM);
    assert_eq!(p.verdict("clone", arg0(libc::CLONE_NEWNS as u64)), ALLOW);
    // Docker's own with no capability: sync is refused now.
    let bare = Host { caps: vec![], kernel: (6, 1) };
    assert_eq!(parse_docker(TEST_PROFILE, Arch::X86_64, &bare).unwrap().verdict("sync", [0; 6]), EPERM);
    // aarch64 has no mkdir, only mkdirat: the name is skipped, not an error.
    let a = parse_docker(TEST_PROFILE, Arch::Aarch64, &host).unwrap();
    assert_eq!(a.verdict("mkdirat", [0; 6]), 0x0005_0000 | 13);
}

#[test]
fn bad_profiles_are_refused_in_words() {
    let host = Host::current();
    let err = |text: &str| parse_docker(text, Arch::X86_64, &host).unwrap_err();
    assert!(err("{").starts_with("not a Docker/OCI seccomp profile"));
    assert!(err(r#"{"syscalls": []}"#).contains("defaultAction"));
    assert_eq!(err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#), "action SCMP_ACT_NOTIFY is not supported");
    let bad_op = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#;
    assert_eq!(err(bad_op), "comparison SCMP_CMP_SOMETIMES is not supported");
    let bad_index = bad_op.replace("\"index\": 0", "\"index\": 6").replace("SOMETIMES", "EQ");
    assert_eq!(err(&bad_index), "argument index 6 (0-5)");
}

#[test]
fn choice_from_the_command_line() {
    assert_eq!(Seccomp::from_arg("default").unwrap(), Seccomp::Default);
    assert_eq!(Seccomp::from_arg("unconfined").unwrap(), Seccomp::Unconfined);
    assert!(Seccomp::Unconfined.profile().unwrap().is_none());
    let e = Seccomp::from_arg("/nonexistent/p.json").unwrap_err().to_string();
    assert_eq!(e, "read seccomp profile /nonexistent/p.json: ENOENT: no such file or directory");
    // A file's text is kept: the profile is what was read at `up`, not what the file holds later.
    let path = std::env::temp_dir().join(format!("hs-seccomp-unit-{}.json", std::process::id()));
    std::fs::write(&path, TEST_PROFILE).unwrap();
    let s = Seccomp::from_arg(path.to_str().unwrap());
    std::fs::write(&path, "not json").unwrap();
    let bad = Seccomp::from_arg(path.to_str().unwrap()).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    let s = s.unwrap();
    assert_eq!(s.describe(), format!("profile {}", path.display()));
    assert_eq!(s.profile().unwrap().unwrap().verdict("mkdir", [0; 6]), 0x0005_0000 | 13);
    assert!(bad.starts_with(&format!("seccomp profile {}: not a Docker/OCI seccomp profile", path.display())), "{bad}");
    // The bytes init reads: 8 per instruction, the kernel's layout.
    let prog = bpf::compile(&x86()).unwrap();
    let bytes = bpf::to_bytes(&prog);
    assert_eq!(bytes.len(), prog.len() * 8);
    assert_eq!(&bytes[..8], &[0x20, 0, 0, 0, 4, 0, 0, 0]); // ld [4] (arch)
}

/// moby's current profiles/seccomp/default.json, pinned: github.com/moby/profiles
/// at commit 3c28324314729dbade8287e868eef6338c42807a (2026-05-06, "Revert
/// \"seccomp: Block socketcall ...\""), file seccomp/default.json (git blob
/// ea5a494afb8d64898fa0f4f47ae0c4f5ba9cbbc9), Apache-2.0 (moby's LICENSE), unchanged.
/// tests/seccomp_docker.rs runs it under a real dockerd, runc and libseccomp.
const MOBY_DEFAULT: &str = include_str!("moby-default.json");

/// Equal in effect to moby's default.json (the pinned copy above), for every
/// system call number and the argument values the conditional rules look at.
#[test]
fn default_equals_mobys_default_json() {
    let text = MOBY_DEFAULT;
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let ours = bpf::compile(&default_profile(arch)).unwrap();
        let theirs = bpf::compile(&parse_docker(text, arch, &Host::current()).unwrap()).unwrap();
        let clone_flags = [0u64, 0x11, 0x3d0f00, 0x1000_0000, 0x2000_0000, 0x0002_0000, 0x7e02_0000];
        let args: Vec<u64> = [0u64, 1, 2, 8, 10, 37, 38, 39, 40, 41, 0x20000, 0x20008, 0x40000, 0xffff_ffff]
            .into_iter()
            .chain(clone_flags)
            .collect();
        for nr in 0..1024u32 {
            for &a in &args {
                let d = Data { nr, arch: arch.audit(), args: arg0(a) };
                assert_eq!(bpf::run(&ours, &d), bpf::run(&theirs, &d), "{arch:?} nr {nr} arg0 {a:#x}");
            }
        }
    }
}
