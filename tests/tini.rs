//! init as tini: tini's published behaviour (krallin/tini test/run_inner_tests.py)
//! as our tests, on the real binary, as root. Exit codes and `-e`, reaping under
//! `-s`, TINI_SUBREAPER and a subreaper parent, `-w`, TERM/USR1/USR2, `-g` and
//! TINI_KILL_PROCESS_GROUP, the command's signal mask and ignored set, `-p`,
//! `--version` as Docker parses it, and tini's warning when init can reap nothing.
//!
//! init runs as a plain child of the test (not PID 1), as tini's tests run tini.
//! Only processes a test started are killed, by pid; temp dirs are TempDirs.

mod dropin;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;

use dropin::{
    alive, alive_after_stop_barrier, check_orphans_reaped, children_of, comm, direct, init, run, start, KillOnDrop,
    Outcome, ORPHANS,
};
use lab_tests::{wait_for, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const NO_REAPER: &str = "zombie reaping won't work";

/// Runs `init ARGS` with `f` applied in the child between fork and exec.
fn with_pre_exec(args: &[&str], f: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static) -> Outcome {
    let mut c = direct(args);
    // SAFETY: the closures given here only make async-signal-safe system calls.
    unsafe { c.pre_exec(f) };
    run(c)
}

// ==== exit codes ======================================================================

#[test]
fn exit_codes_0_to_255_pass_through_and_e_remaps_them() {
    for code in 0..=255 {
        let script = format!("exit {code}");
        let o = run(direct(&["--", "sh", "-c", &script]));
        assert_eq!(o.code, Some(code), "{o:?}");
        let o = run(direct(&["-e", &code.to_string(), "--", "sh", "-c", &script]));
        assert_eq!(o.code, Some(0), "-e {code}: {o:?}");
        // Every other code remapped, and no "--" (tini's test, under POSIXLY_CORRECT).
        let mut args: Vec<String> =
            (0..=255).filter(|&c| c != code).flat_map(|c| ["-e".to_string(), c.to_string()]).collect();
        args.extend(["sh", "-c", &script].map(String::from));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(direct(&argv).env("POSIXLY_CORRECT", "1"));
        assert_eq!(o.code, Some(code), "-e all but {code}: {o:?}");
    }
}

#[test]
fn e_remaps_128_plus_n_too() {
    let o = run(direct(&["-e", "143", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    let o = run(direct(&["-e", "143", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(o.code, Some(137), "{o:?}");
    let o = run(direct(&["-e137", "-e", "143", "--", "sh", "-c", "kill -KILL $$"]));
    assert_eq!(o.code, Some(0), "{o:?}");
}

// ==== reaping =========================================================================

/// CMD orphans three processes; init, not PID 1, must adopt and reap them all.
fn reaping(args: &[&str], prepare: impl FnOnce(&mut Command)) -> Outcome {
    reaping_by(args, prepare).0
}

/// `reaping`, and init's pid.
fn reaping_by(args: &[&str], prepare: impl FnOnce(&mut Command)) -> (Outcome, i32) {
    let mut argv = args.to_vec();
    argv.extend(["--", "/bin/sh", "-c", ORPHANS]);
    let mut c = direct(&argv);
    prepare(&mut c);
    let mut init = start(&mut c);
    let pid = init.pid();
    let o = init.wait();
    check_orphans_reaped(&o, &pid.to_string());
    assert!(!o.stderr.contains(NO_REAPER), "warned: {o:?}");
    (o, pid)
}

#[test]
fn reaps_zombies_with_s() {
    let o = reaping(&["-s"], |_| {});
    assert_eq!(o.stderr, "", "no -w: no line per zombie");
}

#[test]
fn reaps_zombies_with_tini_subreaper() {
    let o = reaping(&[], |c| {
        c.env("TINI_SUBREAPER", "");
    });
    assert_eq!(o.stderr, "");
}

#[test]
fn reaps_zombies_under_a_parent_that_made_it_a_subreaper() {
    // tini's subreaper-proxy: the parent sets the flag, then execs init (it survives execve).
    let o = reaping(&[], |c| {
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
    });
    assert_eq!(o.stderr, "");
}

#[test]
fn w_prints_one_line_per_reaped_zombie() {
    let (o, pid) = reaping_by(&["-w"], |_| {});
    let orphans: BTreeSet<&str> =
        o.stdout.lines().find_map(|l| l.strip_prefix("orphans: ")).unwrap().split(' ').collect();
    // tini's line, word for word, in tini's layout with init's name.
    let prefix = format!("[WARN  init ({pid})] Reaped zombie process with pid=");
    let reaped: BTreeSet<&str> =
        o.stderr.lines().map(|l| l.strip_prefix(&prefix).unwrap_or_else(|| panic!("{l:?}: {o:?}"))).collect();
    assert_eq!(reaped, orphans, "one line per orphan, none for CMD: {o:?}");
    assert_eq!(o.stderr.lines().count(), 3, "{o:?}");
}

/// Debian's tini (the `tini` package), the reference for the words.
const TINI: &str = "/usr/bin/tini";

/// `SHIM ARGS` run as a plain child; its lines (stderr, then stdout: tini writes
/// INFO to stdout, init all to stderr) with the shim's name and pid, CMD's pid and
/// the orphans' pids replaced by SHIM, PID, CHILD and ORPHAN, sorted.
fn lines_of(shim: &str, args: &[&str]) -> Vec<String> {
    let mut c = Command::new(shim);
    c.args(args).env_remove("RUST_LOG").env_remove("TINI_VERBOSITY");
    let mut running = start(&mut c);
    let pid = running.pid();
    let o = running.wait();
    let name = if shim == TINI { "tini" } else { "init" };
    let orphans: Vec<&str> =
        o.stdout.lines().find_map(|l| l.strip_prefix("orphans: ")).map_or(vec![], |l| l.split(' ').collect());
    let mut lines: Vec<String> = o
        .stderr
        .lines()
        .chain(o.stdout.lines().filter(|l| l.starts_with('[')))
        .map(|l| {
            let mut l = l.replace(&format!(" {name} ({pid})] "), " SHIM (PID)] ");
            if let Some(child) = l.split("with pid '").nth(1).and_then(|r| r.split('\'').next()) {
                l = l.replace(&format!("'{child}'"), "'CHILD'");
            }
            for orphan in &orphans {
                l = l.replace(&format!("pid={orphan}"), "pid=ORPHAN");
            }
            l
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn w_and_v_lines_are_tinis_word_for_word() {
    let tini = TINI;
    assert!(fs::metadata(tini).is_ok(), "{tini} is missing: apt-get install -y tini");
    let init = init();
    let init = init.to_str().unwrap();
    let kill_self = "kill -TERM $$";
    let scenarios: [&[&str]; 3] = [
        // -s: not PID 1, tini reaps nothing otherwise (and warns).
        &["-s", "-w", "--", "/bin/sh", "-c", ORPHANS],
        &["-s", "-v", "--", "true"],
        &["-s", "-v", "--", "/bin/sh", "-c", kill_self],
    ];
    for args in scenarios {
        let (want, got) = (lines_of(tini, args), lines_of(init, args));
        assert!(!want.is_empty(), "tini said nothing for {args:?}");
        assert_eq!(got, want, "init's lines are not tini's for {args:?}");
    }
    // What they compared, so that a change on either side shows here.
    let w = lines_of(init, scenarios[0]);
    assert_eq!(w, ["[WARN  SHIM (PID)] Reaped zombie process with pid=ORPHAN"; 3], "-w");
    let v = lines_of(init, scenarios[2]);
    assert_eq!(
        v,
        [
            "[INFO  SHIM (PID)] Main child exited with signal (with signal 'Terminated')",
            "[INFO  SHIM (PID)] Spawned child process '/bin/sh' with pid 'CHILD'"
        ],
        "-v"
    );
}

// ==== signals =========================================================================

#[test]
fn term_usr1_usr2_end_cmd_with_128_plus_n() {
    for sig in [Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2] {
        for variant in ["-s", "TINI_SUBREAPER", "plain"] {
            let args: &[&str] = if variant == "-s" { &["-s", "sleep", "1000"] } else { &["sleep", "1000"] };
            let mut c = direct(args);
            if variant == "TINI_SUBREAPER" {
                c.env("TINI_SUBREAPER", "");
            }
            let mut init = start(&mut c);
            let pid = init.pid();
            wait_for("sleep under init", || children_of(pid).into_iter().find(|&k| comm(k) == "sleep"));
            kill(Pid::from_raw(pid), sig).unwrap();
            let o = init.wait();
            assert_eq!(o.code, Some(128 + sig as i32), "{sig} ({variant}): {o:?}");
        }
    }
}

/// CMD: a shell that ignores SIGUSR1 and waits for a grandchild that does not
/// (tini's test/pgroup); it prints the grandchild's pid, then its wait status.
const PGROUP: &str = "trap '' USR1; (trap - USR1; exec sleep 1000) & p=$!; echo $p; wait $p; echo \"sleep: $?\"";

#[test]
fn g_and_tini_kill_process_group_end_a_grandchild_while_the_child_ignores_the_signal() {
    for variant in ["-g", "TINI_KILL_PROCESS_GROUP", "neither"] {
        let args: &[&str] = match variant {
            "-g" => &["-g", "/bin/sh", "-c", PGROUP],
            "neither" => &["-vv", "/bin/sh", "-c", PGROUP], // (-vv: init's "Passing signal" lines)
            _ => &["/bin/sh", "-c", PGROUP],
        };
        let mut c = direct(args);
        if variant == "TINI_KILL_PROCESS_GROUP" {
            c.env("TINI_KILL_PROCESS_GROUP", "1");
        }
        let mut init = start(&mut c);
        let out = init.wait_stdout("the grandchild's pid", |s| s.ends_with('\n'));
        let sleep: i32 = out.trim().parse().unwrap();
        let _guard = KillOnDrop::new(sleep);
        // $! is known before the subshell has exec'd sleep (seen under TCG in the VM).
        wait_for("the grandchild to exec sleep", || (comm(sleep) == "sleep").then_some(()));
        kill(Pid::from_raw(init.pid()), Signal::SIGUSR1).unwrap();
        if variant == "neither" {
            // Control: only the shell got it, and ignored it; the grandchild lives on.
            // No sleep: init takes its signals one at a time, lowest number first,
            // so once it passes SIGWINCH (ignored by all) it has done its kill(2)
            // for SIGUSR1; the stop barrier then shows nothing fatal hit the sleep.
            kill(Pid::from_raw(init.pid()), Signal::SIGWINCH).unwrap();
            init.wait_stderr("init to pass SIGWINCH on", |e| e.contains("Passing signal: 'Window changed'"));
            assert!(alive_after_stop_barrier(sleep) && alive(init.pid()), "without -g the sleep should have survived");
            kill(Pid::from_raw(sleep), Signal::SIGKILL).unwrap();
            let o = init.wait();
            assert_eq!((o.code, o.stdout.lines().last()), (Some(0), Some("sleep: 137")), "{o:?}");
            continue;
        }
        let o = init.wait();
        // The shell survived (it ignores USR1) and saw the sleep die of it: 128+10.
        assert_eq!((o.code, o.stdout.lines().last()), (Some(0), Some("sleep: 138")), "{variant}: {o:?}");
        assert!(!alive(sleep));
    }
}

/// Sets what tini's test/sigconf sets before exec'ing init: some signals
/// ignored, some blocked (each kind: one init changes for itself, one it
/// blocks to forward, one it leaves alone).
fn odd_signal_state() -> std::io::Result<()> {
    // SAFETY: signal and sigprocmask are async-signal-safe; the set is a local.
    unsafe {
        for sig in [libc::SIGTTOU, libc::SIGCHLD, libc::SIGSEGV, libc::SIGINT, libc::SIGUSR2] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM, libc::SIGUSR1] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    Ok(())
}

/// The SigBlk and SigIgn masks of a process's /proc/PID/status.
fn sig_masks(status: &str) -> (u64, u64) {
    let mask = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    (mask("SigBlk:"), mask("SigIgn:"))
}

#[test]
fn cmd_starts_with_the_signal_mask_and_ignored_set_init_started_with() {
    let bit = |s: i32| 1u64 << (s - 1);
    // Control: the same state with no init in between.
    // (cat: grep catches SIGSEGV for itself.)
    let mut plain = Command::new("cat");
    plain.arg("/proc/self/status");
    // SAFETY: odd_signal_state only makes async-signal-safe calls.
    unsafe { plain.pre_exec(odd_signal_state) };
    let want = sig_masks(&run(plain).stdout);
    for s in [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM, libc::SIGUSR1] {
        assert!(want.0 & bit(s) != 0, "control blocks {s}: {want:x?}");
    }
    for s in [libc::SIGTTOU, libc::SIGCHLD, libc::SIGSEGV, libc::SIGINT, libc::SIGUSR2] {
        assert!(want.1 & bit(s) != 0, "control ignores {s}: {want:x?}");
    }
    // Supervised, and exec'd in init's place.
    for args in [&["cat", "/proc/self/status"][..], &["--exec", "--", "cat", "/proc/self/status"]] {
        let o = with_pre_exec(args, odd_signal_state);
        assert_eq!(o.code, Some(0), "{o:?}");
        assert_eq!(sig_masks(&o.stdout), want, "{args:?}: blocked, ignored {o:?}");
    }
    // And nothing blocked or ignored stays so.
    let plain = sig_masks(&run(Command::new("cat").arg("/proc/self/status")).stdout);
    let o = run(direct(&["cat", "/proc/self/status"]));
    assert_eq!(sig_masks(&o.stdout), plain, "{o:?}");
}

#[test]
fn p_sends_the_signal_when_inits_parent_dies() {
    let t = TempDir::new("pdeath");
    let (ready, got) = (t.s("ready"), t.s("got"));
    // SIGUSR1 is blocked in init: it is forwarded to CMD, which reports it.
    let script = format!("trap 'echo usr1 > {got}; exit 0' USR1; : > {ready}; while :; do sleep 0.05; done");
    let (init, _) = under_a_parent(&["-p", "SIGUSR1", "--", "/bin/sh", "-c", &script], &ready);
    wait_for("CMD to get SIGUSR1", || fs::read_to_string(&got).ok().filter(|s| s == "usr1\n"));
    wait_for("init to exit", || (!alive(init.0)).then_some(()));

    // SIGKILL ends init itself (CMD, not in a pid namespace here, is orphaned).
    fs::remove_file(&ready).unwrap();
    let script = format!(": > {ready}; exec sleep 1000");
    let (init, cmd) = under_a_parent(&["-p", "KILL", "--", "/bin/sh", "-c", &script], &ready);
    wait_for("init to die of SIGKILL", || (!alive(init.0)).then_some(()));
    assert!(alive(cmd.0), "CMD was not signalled, only init");
}

/// Starts `init ARGS` in the background of a shell, waits until CMD created
/// `ready`, then SIGKILLs the shell: init's parent dies. Returns init and CMD.
fn under_a_parent(args: &[&str], ready: &str) -> (KillOnDrop, KillOnDrop) {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", "\"$@\" & echo $!; wait", "sh"]).arg(init()).args(args).env_remove("RUST_LOG");
    let mut parent = start(&mut c);
    let out = parent.wait_stdout("init's pid", |s| s.ends_with('\n'));
    let pid: i32 = out.trim().parse().unwrap();
    let init = KillOnDrop::new(pid);
    wait_for("CMD to start", || fs::metadata(ready).ok());
    let cmd = KillOnDrop::new(children_of(pid)[0]);
    kill(Pid::from_raw(parent.pid()), Signal::SIGKILL).unwrap();
    let _ = parent.wait();
    (init, cmd)
}

// ==== what init says ==================================================================

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
