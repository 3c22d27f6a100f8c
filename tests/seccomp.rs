//! The seccomp filter (issue 11): inside a default container each system call of
//! Docker's "refused" list fails with EPERM (clone3 with ENOSYS, a 32-bit
//! `int 0x80` call with EPERM) while ordinary programs work; with
//! `--seccomp unconfined` and with `--privileged` the same calls get past the
//! filter (the control: what the kernel answers then is not the filter's EPERM,
//! with the same capabilities for `unconfined`, so the filter alone made the
//! difference); a profile file in Docker's format is obeyed; `exec` and init
//! run under the same filter. The probes are layers/seccomp_probe, added as a
//! layer of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lab_tests::{stdout, text, Lab, TempDir};

/// A layer dir holding /seccomp_probe.
fn probe_layer(lab: &Lab) -> TempDir {
    let dir = TempDir::new(&format!("seccomp-probe-{}", lab.tag()));
    std::fs::copy(lab_tests::bin("seccomp_probe"), dir.path("seccomp_probe")).unwrap();
    dir
}

/// Every probe's verdict in container `name`: `OK`, `EPERM`, `ENOSYS`, `E<n>`.
fn probe(lab: &Lab, name: &str) -> BTreeMap<String, String> {
    let o = lab.exec(name, &["/seccomp_probe"]);
    assert!(o.status.success(), "seccomp_probe in {name}: {}", text(&o));
    let map: BTreeMap<String, String> =
        stdout(&o).lines().filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string()))).collect();
    assert!(map.len() >= 18, "{}", text(&o));
    map
}

/// The calls the default filter refuses, and with what.
const REFUSED: [(&str, &str); 16] = [
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("io_uring_setup", "EPERM"),
    ("bpf", "EPERM"),
    ("perf_event_open", "EPERM"),
    ("kexec_load", "EPERM"),
    ("open_by_handle_at", "EPERM"),
    ("unshare_user", "EPERM"),
    ("clone_newuser", "EPERM"),
    ("mount", "EPERM"),
    ("socket_alg", "EPERM"),
    ("socket_vsock", "EPERM"),
    ("personality", "EPERM"),
    ("int80", "EPERM"),
    ("clone3", "ENOSYS"),
];

/// `Seccomp:` of /proc/PID/status (0 none, 2 filter).
fn seccomp_mode(status: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix("Seccomp:")).map(|v| v.trim().to_string()).unwrap_or_default()
}

fn in_container_status(lab: &Lab, name: &str, file: &str) -> String {
    let o = lab.exec(name, &["/bin/sh", "-c", &format!("while read l; do echo \"$l\"; done < {file}")]);
    stdout(&o)
}

/// Whether the kernel itself answers EPERM to any bpf() without CAP_BPF, before it looks
/// at the arguments: before Linux 6.9 (BPF tokens moved the check into each command)
/// `kernel.unprivileged_bpf_disabled` != 0 did so (Debian's default is 2; the v2 VM's 6.1).
/// Then only the --privileged control can show that bpf gets past the filter.
fn kernel_refuses_unprivileged_bpf() -> bool {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled").unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    disabled.trim() != "0" && (major, minor) < (6, 9)
}

/// What the kernel itself answers to the probe's kexec_load (invalid flags) from a
/// process whose effective capabilities are `cap_eff` (/proc/PID/status, hex), no
/// seccomp filter: a kernel without kexec has no /proc/sys/kernel/kexec_load_disabled
/// and answers ENOSYS; one with it answers EPERM without CAP_SYS_BOOT (a default
/// container, so --seccomp unconfined too, as Docker's) or with kexec_load_disabled
/// 1 or lockdown, and EINVAL to the flags otherwise (Linux 6.1 kexec_load_check;
/// the probe prints EINVAL as E22).
fn kernel_answers_kexec_load(cap_eff: &str) -> &'static str {
    const CAP_SYS_BOOT: u32 = 22;
    let Ok(disabled) = std::fs::read_to_string("/proc/sys/kernel/kexec_load_disabled") else {
        return "ENOSYS";
    };
    let caps = u64::from_str_radix(cap_eff.trim(), 16).unwrap_or_else(|e| panic!("CapEff {cap_eff:?}: {e}"));
    // securityfs may not be mounted (the v2 VM): then the kernel's lockdown is unseen, "none".
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
    let locked = lockdown.contains("[integrity]") || lockdown.contains("[confidentiality]");
    if caps & (1 << CAP_SYS_BOOT) == 0 || disabled.trim() != "0" || locked {
        "EPERM"
    } else {
        "E22"
    }
}

/// `CapEff:` of a process `exec` starts in container `name` (as the probe runs).
fn cap_eff(lab: &Lab, name: &str) -> String {
    let status = in_container_status(lab, name, "/proc/self/status");
    status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap_or_else(|| panic!("no CapEff: {status}")).into()
}

#[test]
fn the_default_filter_refuses_what_docker_refuses_and_the_controls_pass() {
    let lab = Lab::new();
    let layer = probe_layer(&lab);
    let layer_arg = layer.0.display().to_string();
    let (jail, open, free) = (lab.name("d"), lab.name("u"), lab.name("p"));
    lab.ok(&["up", &jail, "--layer", &layer_arg]);
    lab.ok(&["up", &open, "--layer", &layer_arg, "--seccomp", "unconfined"]);
    lab.ok(&["up", &free, "--layer", &layer_arg, "--privileged"]);
    let (d, u, p) = (probe(&lab, &jail), probe(&lab, &open), probe(&lab, &free));
    let kernel_refuses_bpf = kernel_refuses_unprivileged_bpf();
    for (call, want) in REFUSED {
        assert_eq!(d[call], want, "{call} in a default container: {d:?}");
        // kexec_load: the controls get exactly what the kernel answers their
        // capabilities; where that is EPERM too (a kernel with kexec, no
        // CAP_SYS_BOOT: unconfined on Debian's 6.1) the other control shows the filter.
        if call == "kexec_load" {
            assert_eq!(u[call], kernel_answers_kexec_load(&cap_eff(&lab, &open)), "{call} unconfined: {u:?}");
            assert_eq!(p[call], kernel_answers_kexec_load(&cap_eff(&lab, &free)), "{call} privileged: {p:?}");
            assert!(u[call] != want || p[call] != want, "no control shows {call} past the filter: {u:?} {p:?}");
            continue;
        }
        // open_by_handle_at: Linux 6.1 (the v2 VM) checks CAP_DAC_READ_SEARCH before
        // it reads the handle, so without it the unconfined control gets the
        // kernel's own EPERM; the host's 6.18 reads the handle first (EINVAL). That
        // EPERM only where the capability is missing; --privileged has it.
        if call == "open_by_handle_at" && u[call] == want {
            const CAP_DAC_READ_SEARCH: u32 = 2;
            let caps = u64::from_str_radix(cap_eff(&lab, &open).trim(), 16).unwrap();
            assert_eq!(caps & (1 << CAP_DAC_READ_SEARCH), 0, "{call} EPERM unconfined with the capability: {u:?}");
            assert_ne!(p[call], want, "{call} with --privileged: {p:?}");
            continue;
        }
        // The controls: past the filter, the kernel answers (success or its own error).
        if !(call == "bpf" && kernel_refuses_bpf) {
            assert_ne!(u[call], want, "{call} with --seccomp unconfined (same capabilities): {u:?}");
        }
        assert_ne!(p[call], want, "{call} with --privileged: {p:?}");
    }
    // The main process itself (not only `exec`) runs under it: `run` shows its output.
    let o = lab.run(&["run", &lab.name("r"), "--layer", &layer_arg, "--", "/seccomp_probe", "keyctl", "clone3"]);
    assert_eq!(stdout(&o), "keyctl EPERM\nclone3 ENOSYS\n", "{}", text(&o));
    // What the filter lets through stays as it was.
    assert_eq!((d["socket_inet"].as_str(), d["mkdir"].as_str()), ("OK", "OK"), "{d:?}");

    // Ordinary programs work under the filter.
    for line in ["ping -c 1 -W 2 127.0.0.1", "ps", "ls /", "stress -c 1 -t 1 -q", "echo $((6 * 7))"] {
        let o = lab.exec(&jail, &["/bin/sh", "-c", line]);
        assert!(o.status.success(), "{line} under the default filter: {}", text(&o));
    }

    // status and --explain name the filter.
    let status = |name: &str| stdout(&lab.ok(&["status", name]));
    assert!(status(&jail).contains("seccomp   default (Docker's default profile"), "{}", status(&jail));
    assert!(status(&open).contains("seccomp   unconfined"), "{}", status(&open));
    assert!(status(&free).contains("seccomp   unconfined"), "{}", status(&free));
    let explain = stdout(&lab.ok(&["up", &lab.name("e"), "--explain"]));
    assert!(explain.contains("# seccomp: default (Docker's default profile"), "{explain}");
}

#[test]
fn exec_init_and_the_main_process_run_under_the_filter() {
    let lab = Lab::new();
    let (jail, open) = (lab.name("d"), lab.name("u"));
    let wait = ["--", "stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0", "-q"];
    lab.ok(&[&["up", jail.as_str()][..], &wait].concat());
    lab.ok(&[&["up", open.as_str(), "--seccomp", "unconfined"][..], &wait].concat());
    for (name, want) in [(&jail, "2"), (&open, "0")] {
        let exec = in_container_status(&lab, name, "/proc/self/status");
        assert_eq!(seccomp_mode(&exec), want, "exec in {name}: {exec}");
        // init (PID 1) and the main process, seen from the host.
        let init = lab.init_pid(name);
        let host_status = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert_eq!(seccomp_mode(&host_status(init)), want, "init of {name}");
        let kids = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
        let main: i32 = kids.split_whitespace().next().expect("a main process").parse().unwrap();
        assert_eq!(seccomp_mode(&host_status(main)), want, "main process of {name}");
    }
}

#[test]
fn a_profile_file_in_dockers_format_is_obeyed() {
    let lab = Lab::new();
    let dir = TempDir::new(&format!("seccomp-profile-{}", lab.tag()));
    let profile: PathBuf = dir.path("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
  ]
}"#,
    )
    .unwrap();
    let (a, b) = (lab.name("f"), lab.name("d"));
    lab.ok(&["up", &a, "--seccomp", &profile.display().to_string()]);
    lab.ok(&["up", &b]);
    let mkdir = |name: &str| lab.exec(name, &["/bin/mkdir", "/made-here"]);
    let o = mkdir(&a);
    assert!(!o.status.success(), "mkdir under a profile that denies it: {}", text(&o));
    assert!(text(&o).contains("Operation not permitted"), "{}", text(&o));
    // The control: the default profile allows mkdir.
    let o = mkdir(&b);
    assert!(o.status.success(), "mkdir under the default profile: {}", text(&o));
    // Everything else this profile allows: ls, and ps (which the default allows too).
    for line in ["ls /", "ps"] {
        let o = lab.exec(&a, &["/bin/sh", "-c", line]);
        assert!(o.status.success(), "{line}: {}", text(&o));
    }
    let status = stdout(&lab.ok(&["status", &a]));
    assert!(status.contains(&format!("seccomp   profile {}", profile.display())), "{status}");

    // A profile that is not one is refused before anything is made.
    std::fs::write(dir.path("bad.json"), r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).unwrap();
    let c = lab.name("x");
    let o = lab.run(&["up", &c, "--seccomp", &dir.s("bad.json")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("action SCMP_ACT_NOTIFY is not supported"), "{}", text(&o));
    let left = lab.leftovers(&[&c]);
    assert!(!left.iter().any(|l| l.contains(c.as_str())), "{left:?}");
    // --privileged runs unconfined: a profile with it is a contradiction.
    let o = lab.run(&["up", &c, "--privileged", "--seccomp", &profile.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
