//! Integration tests of `init`, the container's PID 1: the real binary
//! (`cargo build --release` first), as root, on the real kernel. Here: exit
//! status, signals, reaping, the terminal; pid1_setup.rs: rootfs, the ready fd,
//! the setup steps and the command line (shared helpers: pid1_common.rs).
//!
//! Most tests run init as PID 1 of a new pid namespace through util-linux
//! `unshare --fork --pid ... --kill-child`: if a test kills unshare (by pid),
//! init gets SIGKILL, and with it the whole namespace dies. Temp dirs are
//! lab_tests::TempDir, removed by a Drop guard; mounts live only in the test's
//! own mount namespaces, which die with their processes. Only processes a test
//! started are killed, by pid.

mod dropin;
mod pid1_common;

use std::fs::{self};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use dropin::{
    alive, alive_after_stop_barrier, check_orphans_reaped, comm, direct, init, init_pid_under, run, start, stat_at,
    KillOnDrop, ORPHANS,
};
use lab_tests::{descendants_named, wait_for, OnPty, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pid1_common::*;

// ==== exit status ==================================================================

#[test]
fn runs_as_pid1_of_the_namespace() {
    let o = run(in_pidns(&["--", "/bin/sh", "-c", "cat /proc/1/comm; echo $$"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "init\n2\n", "{o:?}");
}

#[test]
fn exit_codes_pass_through() {
    for code in [0, 1, 2, 7, 42, 100, 125, 126, 127, 128, 129, 200, 254, 255] {
        let o = run(in_pidns(&["--", "/bin/sh", "-c", &format!("exit {code}")]));
        assert_eq!(o.code, Some(code), "exit {code}: {o:?}");
        assert_eq!(o.stderr, "", "{o:?}");
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    for sig in [Signal::SIGHUP, Signal::SIGABRT, Signal::SIGKILL, Signal::SIGSEGV, Signal::SIGTERM] {
        let n = sig as i32;
        let o = run(in_pidns(&["--", "/bin/sh", "-c", &format!("ulimit -c 0; kill -{n} $$")]));
        assert_eq!(o.code, Some(128 + n), "{sig}: {o:?}");
    }
}

#[test]
fn exec_failures_are_127_and_126_with_a_message() {
    let t = TempDir::new("exec");
    let not_exec = t.path("not-executable");
    fs::write(&not_exec, "#!/bin/sh\necho no\n").unwrap();
    fs::set_permissions(&not_exec, fs::Permissions::from_mode(0o644)).unwrap();
    let garbage = t.path("garbage");
    fs::write(&garbage, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();

    let o = run(in_pidns(&["--", "/bin/nope-pid1-test"]));
    assert_eq!(o.code, Some(127), "{o:?}");
    assert_eq!(o.stderr, "init: exec /bin/nope-pid1-test failed: ENOENT: no such file or directory\n");

    // Looked up in $PATH, not found anywhere.
    let o = run(in_pidns(&["nope-pid1-test-cmd", "arg"]));
    assert_eq!(o.code, Some(127), "{o:?}");
    assert_eq!(o.stderr, "init: exec nope-pid1-test-cmd failed: ENOENT: no such file or directory\n");

    let o = run(in_pidns(&["--", not_exec.to_str().unwrap()]));
    assert_eq!(o.code, Some(126), "{o:?}");
    assert_eq!(o.stderr, format!("init: exec {} failed: EACCES: permission denied\n", not_exec.display()));

    let o = run(in_pidns(&["--", garbage.to_str().unwrap()]));
    assert_eq!(o.code, Some(126), "{o:?}");
    assert_eq!(o.stderr, format!("init: exec {} failed: ENOEXEC: exec format error\n", garbage.display()));

    // $PATH lookup of something that exists; arguments pass through.
    let o = run(in_pidns(&["printf", "%s-%s", "a b", "c"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "a b-c"), "{o:?}");
}

#[test]
fn default_cmd_is_bin_sh() {
    let mut cmd = in_pidns(&[]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"echo from-sh-$((6*7)); exit 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-sh-42\n");
}

// ==== signals ======================================================================

#[test]
fn host_signals_reach_cmd_and_end_it_with_128_plus_n() {
    for sig in [Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2] {
        let (mut unshare, ready) =
            start_with_ready(&mut unshare_pidns(), &["--ready-fd", "READY", "--", "sleep", "1000"]);
        assert_eq!(ready.first_line(), "ok\n");
        let init = init_pid_under(&unshare);
        assert_eq!(comm(init), "init");
        kill(Pid::from_raw(init), sig).unwrap();
        let o = unshare.wait();
        assert_eq!(o.code, Some(128 + sig as i32), "{sig}: {o:?}");
    }
}

#[test]
fn signals_reach_cmd_when_not_pid1() {
    let (mut init, ready) = start_with_ready(&mut direct(&[]), &["--ready-fd", "READY", "sleep", "1000"]);
    assert_eq!(ready.to_eof(), "ok\n");
    kill(Pid::from_raw(init.pid()), Signal::SIGTERM).unwrap();
    let o = init.wait();
    assert_eq!(o.code, Some(143), "{o:?}");
}

#[test]
fn exec_mode_is_the_tutorial_pid1_that_ignores_sigterm() {
    // --exec: CMD itself is PID 1.
    let o = run(in_pidns(&["--exec", "--", "/bin/sh", "-c", "read c </proc/1/comm; echo $c"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "sh\n"), "{o:?}");

    // The kernel drops a signal to a namespace's PID 1 that has no handler for it.
    let (mut unshare, ready) =
        start_with_ready(&mut unshare_pidns(), &["--exec", "--ready-fd", "READY", "--", "sleep", "1000"]);
    assert_eq!(ready.first_line(), "ok\n");
    let pid1 = init_pid_under(&unshare);
    wait_for("sleep to replace init", || (comm(pid1) == "sleep").then_some(()));
    kill(Pid::from_raw(pid1), Signal::SIGTERM).unwrap();
    assert!(alive_after_stop_barrier(pid1), "SIGTERM ended an exec'd PID 1 without a handler");
    // Only SIGKILL from the host ends it.
    kill(Pid::from_raw(pid1), Signal::SIGKILL).unwrap();
    unshare.wait(); // (util-linux 2.38 unshare fails to re-raise SIGKILL and exits 1)
    assert!(!alive(pid1));
}

#[test]
fn pgroup_flag_signals_the_whole_group() {
    for pgroup in [true, false] {
        let flags: &[&str] = if pgroup { &["-g"] } else { &[] };
        let mut base = direct(flags);
        let script = "sleep 1000 & echo $!; wait";
        let (mut init, ready) = start_with_ready(&mut base, &["--ready-fd", "READY", "/bin/sh", "-c", script]);
        assert_eq!(ready.to_eof(), "ok\n");
        let out = init.wait_stdout("the background sleep's pid", |s| s.ends_with('\n'));
        let sleep: i32 = out.trim().parse().unwrap();
        let _guard = KillOnDrop::new(sleep);
        // $! is known before the forked shell has exec'd sleep (slow under TCG).
        wait_for("the background job to exec sleep", || (comm(sleep) == "sleep").then_some(()));
        kill(Pid::from_raw(init.pid()), Signal::SIGTERM).unwrap();
        let o = init.wait();
        assert_eq!(o.code, Some(143), "-g {pgroup}: {o:?}");
        if pgroup {
            wait_for("the group's sleep to die", || (!alive(sleep)).then_some(()));
        } else {
            // Without -g only the shell got SIGTERM: its background job lives on.
            assert!(alive(sleep), "without -g the sleep should have survived");
            kill(Pid::from_raw(sleep), Signal::SIGKILL).unwrap();
        }
    }
}

// ==== reaping ======================================================================

#[test]
fn orphans_are_reaped_as_pid1() {
    let o = run(in_pidns(&["--", "/bin/sh", "-c", ORPHANS]));
    check_orphans_reaped(&o, "1");
}

#[test]
fn orphans_are_reaped_as_subreaper_when_not_pid1() {
    let mut init = start(&mut direct(&["--", "/bin/sh", "-c", ORPHANS]));
    let pid = init.pid();
    assert_ne!(pid, 1);
    let o = init.wait();
    check_orphans_reaped(&o, &pid.to_string());
}

#[test]
fn works_when_started_with_sigchld_ignored() {
    // An ignored SIGCHLD survives execve and makes the kernel auto-reap children:
    // init would never see CMD's status. init resets it.
    let mut cmd = direct(&["--", "/bin/sh", "-c", "exit 7"]);
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = run(cmd);
    assert_eq!(o.code, Some(7), "{o:?}");
    // As PID 1: a shell ignores SIGCHLD, then execs init in its place.
    let o = run(Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--kill-child", "/bin/sh", "-c", "trap '' CHLD; exec \"$0\" \"$@\""])
        .arg(init())
        .args(["--", "/bin/sh", "-c", "cat /proc/1/comm; exit 7"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(7), "init\n"), "{o:?}");
}

#[test]
fn main_exit_is_seen_among_simultaneous_deaths() {
    // CMD's own children outlive the shell's exec, get re-parented to init and die
    // with it: one SIGCHLD may stand for all. init must still see CMD's exit.
    for _ in 0..5 {
        let o = run(in_pidns(&[
            "--",
            "/bin/sh",
            "-c",
            "sleep 0.2 & sleep 0.2 & sleep 0.2 & exec sh -c 'sleep 0.2; exit 9'",
        ]));
        assert_eq!(o.code, Some(9), "{o:?}");
    }
}

/// Puts an orphan into init's namespace from outside (nsenter: its parent is
/// outside, so the kernel re-parents it to the namespace's PID 1) and returns
/// its path in the namespace's /proc, seen from the host.
fn orphan_via_nsenter(pid1: i32) -> String {
    let o = run(Command::new("nsenter").args([
        "-t",
        &pid1.to_string(),
        "-p",
        "-m",
        "--",
        "/bin/sh",
        "-c",
        "sleep 0.2 >/dev/null 2>&1 & echo $!",
    ]));
    assert_eq!(o.code, Some(0), "{o:?}");
    format!("/proc/{pid1}/root/proc/{}/stat", o.stdout.trim())
}

#[test]
fn pause_reaps_and_exits_0_on_sigterm_sigint_sighup() {
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let (mut unshare, ready) = start_with_ready(&mut unshare_pidns(), &["--pause", "--ready-fd", "READY"]);
        assert_eq!(ready.first_line(), "ok\n");
        let init = init_pid_under(&unshare);
        if sig == Signal::SIGTERM {
            // Other signals do not end it.
            kill(Pid::from_raw(init), Signal::SIGUSR1).unwrap();
            let orphan = orphan_via_nsenter(init);
            wait_for("the orphan to be reaped", || stat_at(&orphan).is_none().then_some(()));
            assert!(alive(init), "SIGUSR1 ended --pause");
        }
        kill(Pid::from_raw(init), sig).unwrap();
        let o = unshare.wait();
        assert_eq!(o.code, Some(0), "{sig}: {o:?}");
    }
}

#[test]
fn exec_mode_leaves_zombies() {
    // The tutorial's problem that init solves: an exec'd `sleep` as PID 1 never waits.
    let (unshare, ready) = start_with_ready(&mut unshare_pidns(), &["--exec", "--ready-fd", "READY", "sleep", "1000"]);
    assert_eq!(ready.first_line(), "ok\n");
    let pid1 = init_pid_under(&unshare);
    wait_for("sleep to replace init", || (comm(pid1) == "sleep").then_some(()));
    let orphan = orphan_via_nsenter(pid1);
    wait_for("the orphan to become a zombie", || (stat_at(&orphan)?.0 == 'Z').then_some(()));
    // A look after a while is the only way here: what must not happen (sleep
    // reaping it) has no event to wait for. It cannot fail spuriously: nothing
    // but sleep, which never waits, can reap its child.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(stat_at(&orphan).map(|s| s.0), Some('Z'), "the zombie was reaped after all");
    drop(unshare); // SIGKILL to unshare: --kill-child takes the namespace down
}

// ==== terminal =====================================================================

#[test]
fn interactive_shell_has_job_control_under_a_terminal() {
    let mut cmd = in_pidns(&["--", "/bin/sh", "-i"]);
    cmd.env("PS1", "$ ").env("TERM", "dumb").env_remove("ENV");
    let mut term = OnPty::spawn(cmd);
    let unshare = term.child.id() as i32;

    term.say("echo ready-$((1+1))\n");
    term.expect("ready-2");
    term.say("sleep 100 &\n");
    let sleep = wait_for("the background sleep", || descendants_named(unshare, "sleep").first().copied());
    let _guard = KillOnDrop::new(sleep);
    term.say("fg\n");
    wait_for("sleep in the terminal's foreground", || (term.foreground() == sleep).then_some(()));
    term.say("\x03"); // Ctrl-C: SIGINT to the foreground group only
    wait_for("Ctrl-C to end the foreground sleep", || (!alive(sleep)).then_some(()));
    term.say("echo alive-$((20+22))\n");
    term.expect("alive-42"); // the shell survived Ctrl-C
    term.say("exit\n");
    let status = wait_for("the shell to exit", || term.child.try_wait().unwrap());
    let out = term.output();
    assert_eq!(status.code(), Some(0), "{status:?}: {out}");
    assert!(!out.contains("job control turned off") && !out.contains("can't access tty"), "{out}");
}
