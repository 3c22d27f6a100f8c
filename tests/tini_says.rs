//! init as tini, what it says (as tini.rs, whose header says how these run):
//! `--version` as Docker parses it, the verbosity levels, license/help and
//! catatonit's pause, and tini's warning when init can reap nothing.

mod dropin;
mod tini_common;

use std::fs;
use std::os::unix::process::CommandExt;

use dropin::{direct, run, start, ORPHANS};
use lab_tests::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tini_common::{sig_masks, with_pre_exec};

/// moby's parseInitVersion (daemon/info_unix.go), the rule `docker info` and
/// `docker version` apply to `<init> --version`: split the whole output on
/// " - "; the first piece, trimmed, after "tini version " is the version; the
/// second, trimmed and split on ".", must be exactly "git" and the commit.
fn docker_parse_init_version(v: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = v.split(" - ").collect();
    let mut commit = String::new();
    if parts.len() >= 2 {
        let git: Vec<&str> = parts[1].trim().split('.').collect();
        if git.len() == 2 && git[0] == "git" {
            commit = git[1].to_string();
        }
    }
    let version = parts[0].trim().strip_prefix("tini version ").unwrap_or("").to_string();
    if version.is_empty() && commit.is_empty() {
        return Err(format!("unknown output format: {v}"));
    }
    Ok((version, commit))
}

#[test]
fn version_is_what_docker_parses() {
    // The rule as Docker has it: tini's own format passes, our old output did not.
    assert_eq!(
        docker_parse_init_version("tini version 0.18.0 - git.fec3683\n"),
        Ok(("0.18.0".into(), "fec3683".into()))
    );
    assert!(docker_parse_init_version("init 0.1.0\n").is_err());
    // A second line with a dot would spoil the commit.
    assert_eq!(docker_parse_init_version("tini version 1 - git.abc\ninit 0.1.0\n").unwrap().1, "");

    for flag in ["--version", "-V"] {
        let o = run(direct(&[flag]));
        assert_eq!(o.code, Some(0), "{o:?}");
        let (version, commit) = docker_parse_init_version(&o.stdout).unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"), "{o:?}");
        assert!(!commit.is_empty() && commit.bytes().all(|b| b.is_ascii_alphanumeric()), "commit {commit:?}: {o:?}");
        assert_eq!(o.stdout.lines().count(), 1, "{o:?}");
        assert!(o.stdout.contains(concat!(" - init ", env!("CARGO_PKG_VERSION"))), "our own name: {o:?}");
    }
}

#[test]
fn verbosity_levels() {
    let o = run(direct(&["true"]));
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""));
    let o = run(direct(&["-v", "true"]));
    assert!(o.stderr.starts_with("[INFO  init (") && o.stderr.contains(")] Spawned child process 'true'"), "{o:?}");
    assert!(!o.stderr.contains("[DEBUG "), "{o:?}");
    let o = run(direct(&["-vv", "true"]));
    assert!(o.stderr.contains(")] Reaped child with pid: '"), "{o:?}");
    // TINI_VERBOSITY replaces the -v count; 0 silences warnings such as -w's.
    let o = run(direct(&["-vv", "true"]).env("TINI_VERBOSITY", "2"));
    assert!(o.stderr.contains("[INFO  init (") && !o.stderr.contains("[DEBUG "), "{o:?}");
    let o = run(direct(&["-w", "--", "/bin/sh", "-c", ORPHANS]).env("TINI_VERBOSITY", "0"));
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o:?}");
}

#[test]
fn license_help_and_catatonits_pause() {
    for flag in ["-l", "-L"] {
        let o = run(direct(&[flag]));
        assert_eq!(o.code, Some(0), "{o:?}");
        assert!(o.stdout.contains("MIT License") && o.stdout.contains("Permission is hereby granted"), "{o:?}");
    }
    let o = run(direct(&["-h"]));
    assert!(o.stdout.contains("\n  -e CODE ") && o.stdout.contains("\n  TINI_KILL_PROCESS_GROUP "), "{o:?}");
    let mut pause = start(&mut direct(&["-P"]));
    // Signals are blocked from the moment SIGTTOU is ignored (SigBlk itself reads 0
    // while init waits in sigtimedwait, which unblocks what it waits for).
    wait_for("init -P to take over its signals", || {
        let s = fs::read_to_string(format!("/proc/{}/status", pause.pid())).ok()?;
        (sig_masks(&s).1 & 1 << (libc::SIGTTOU - 1) != 0).then_some(())
    });
    kill(Pid::from_raw(pause.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(pause.wait().code, Some(0));
    let o = run(direct(&["-P", "sleep", "1"]));
    assert_eq!((o.code, o.stderr.as_str()), (Some(2), "init: --pause takes no CMD; see init --help\n"));
}

/// A seccomp filter that makes prctl(PR_SET_CHILD_SUBREAPER) fail with EINVAL, as
/// on a kernel older than 3.4; every other call is allowed.
fn no_subreaper() -> std::io::Result<()> {
    const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, k, jt, jf| libc::sock_filter { code, jt, jf, k };
    let filter = [
        op(LD_ABS, 4, 0, 0),             // seccomp_data.arch
        op(JEQ, 0xC000_003E, 0, 5),      // AUDIT_ARCH_X86_64, else allow
        op(LD_ABS, 0, 0, 0),             // seccomp_data.nr
        op(JEQ, 157, 0, 3),              // prctl, else allow
        op(LD_ABS, 16, 0, 0),            // args[0], low half
        op(JEQ, 36, 0, 1),               // PR_SET_CHILD_SUBREAPER, else allow
        op(RET, 0x0005_0000 | 22, 0, 0), // SECCOMP_RET_ERRNO | EINVAL
        op(RET, 0x7fff_0000, 0, 0),      // SECCOMP_RET_ALLOW
    ];
    let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut _ };
    // SAFETY: prog points at the filter, both alive during the call; as root no
    // no_new_privs is needed.
    if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn warns_as_tini_when_neither_pid1_nor_a_subreaper() {
    let mut c = direct(&["true"]);
    // SAFETY: no_subreaper only makes async-signal-safe calls.
    unsafe { c.pre_exec(no_subreaper) };
    let mut init = start(&mut c);
    let pid = init.pid();
    let o = init.wait();
    let warning = format!(
        "[WARN  init ({pid})] init is not running as PID 1 and isn't registered as a child subreaper \
         (prctl(PR_SET_CHILD_SUBREAPER): EINVAL: invalid argument).\n\
         Zombie processes will not be re-parented to init, so zombie reaping won't work.\n\
         To fix the problem, run init as PID 1.\n"
    );
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), warning.as_str()), "{o:?}");
    // Control: the filter is what makes the difference.
    let o = run(direct(&["true"]));
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o:?}");
    // Quiet at verbosity 0, as tini.
    let mut c = direct(&["true"]);
    c.env("TINI_VERBOSITY", "0");
    // SAFETY: no_subreaper only makes async-signal-safe calls.
    unsafe { c.pre_exec(no_subreaper) };
    assert_eq!(run(c).stderr, "");
    // -s (or TINI_SUBREAPER) asked for it: an error, before CMD runs.
    let o = with_pre_exec(&["-s", "echo", "ran"], no_subreaper);
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stdout, "", "{o:?}");
    assert_eq!(
        o.stderr,
        "init: failed to register as child subreaper: prctl(PR_SET_CHILD_SUBREAPER): EINVAL: invalid argument; \
         PR_SET_CHILD_SUBREAPER is unavailable on this platform: are you using Linux >= 3.4?\n"
    );
}
