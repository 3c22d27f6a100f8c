//! init as tini: tini's published behaviour (krallin/tini test/run_inner_tests.py)
//! as our tests, on the real binary, as root. Exit codes and `-e`, reaping under
//! `-s`, TINI_SUBREAPER and a subreaper parent, `-w`, TERM/USR1/USR2, `-g` and
//! TINI_KILL_PROCESS_GROUP, the command's signal mask and ignored set, `-p`,
//! `--version` as Docker parses it, and tini's warning when init can reap nothing
//! (those two, and init's other words, in tini_says.rs; shared: tini_common.rs).
//!
//! init runs as a plain child of the test (not PID 1), as tini's tests run tini.
//! Only processes a test started are killed, by pid; temp dirs are TempDirs.

mod dropin;
mod tini_common;

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
use tini_common::{sig_masks, with_pre_exec, TINI};

const NO_REAPER: &str = "zombie reaping won't work";

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
