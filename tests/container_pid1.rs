//! init as the PID 1 of a host-setup container (issue: "init is a real PID 1"):
//! exit codes, signals from the host, orphans, a terminal with job control, and
//! host-setup's own part (run forwards signals, down's grace period).

mod dropin; // (for its stop barrier)

use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_tests::{descendants_named, stdout, text, wait_for, Lab, OnPty};

/// A main process that waits forever and handles no signal: stress's vm worker
/// with --vm-hang 0 (the layers have no `sleep`).
const WAIT: &[&str] = &["stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0", "-q"];

#[test]
fn exit_codes_pass_through_run() {
    let lab = Lab::new();
    for code in [0, 1, 42, 255] {
        let a = lab.name(&format!("x{code}"));
        let o = lab.run(&["run", &a, "--", "/bin/sh", "-c", &format!("exit {code}")]);
        assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    }
    let a = lab.name("xs");
    let o = lab.run(&["run", &a, "--", "/bin/sh", "-c", "kill -USR1 $$"]);
    assert_eq!(o.status.code(), Some(128 + libc::SIGUSR1), "death by signal N is 128+N: {}", text(&o));
}

#[test]
fn exec_failures_are_127_and_126_with_a_message() {
    let lab = Lab::new();
    let a = lab.name("n");
    let o = lab.run(&["run", &a, "--", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exec /no/such/program failed: ENOENT"), "{}", text(&o));
    let b = lab.name("d");
    let o = lab.run(&["run", &b, "--", "/proc"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EACCES"), "{}", text(&o));
}

#[test]
fn host_signals_to_pid1_end_the_main_process_with_128_plus_n() {
    let lab = Lab::new();
    for (sig, tag) in [(libc::SIGTERM, "t"), (libc::SIGUSR1, "1"), (libc::SIGUSR2, "2")] {
        let a = lab.name(&format!("g{tag}"));
        let mut args = vec!["up", &a, "--"];
        args.extend_from_slice(WAIT);
        lab.ok(&args);
        let pid = lab.init_pid(&a);
        unsafe { libc::kill(pid, sig) };
        let want = format!("exited ({})", 128 + sig);
        wait_for(&want, || stdout(&lab.run(&["status", &a])).contains(&want).then_some(()));
        lab.ok(&["down", &a]);
    }
}

/// The main process itself reports each signal the host sent to init: it traps
/// them (the container's /bin/sh), writes each one's name to /got in its root
/// (the container's upper dir on the host), and exits 42 on the last, TERM. An
/// init that did not forward, or that exited 128+N itself, would fail this.
#[test]
fn the_main_process_gets_each_signal_the_host_sends_to_init() {
    let lab = Lab::new();
    let a = lab.name("r");
    let script = "for s in USR1 USR2 HUP INT; do trap \"echo $s >> /got\" $s; done; \
                  trap 'echo TERM >> /got; exit 42' TERM; \
                  stress --vm 1 --vm-bytes 4096 --vm-hang 0 -q & echo ready > /ready; \
                  while :; do wait; done";
    lab.ok(&["up", &a, "--", "/bin/sh", "-c", script]);
    let upper = lab.state_dir.join("containers").join(&a).join("upper");
    let got = || std::fs::read_to_string(upper.join("got")).unwrap_or_default();
    wait_for("the traps to be set", || upper.join("ready").exists().then_some(()));
    let init = lab.init_pid(&a);
    let mut want = String::new();
    for (sig, name) in [
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGTERM, "TERM"),
    ] {
        assert_eq!(unsafe { libc::kill(init, sig) }, 0, "kill -{name} {init}");
        want.push_str(name);
        want.push('\n');
        wait_for(&format!("the command to report {name} (it has {:?})", got()), || (got() == want).then_some(()));
    }
    wait_for("exited (42)", || stdout(&lab.run(&["status", &a])).contains("exited (42)").then_some(()));
    assert_eq!(got(), "USR1\nUSR2\nHUP\nINT\nTERM\n");
}

#[test]
fn exec_exits_with_the_command_status() {
    let lab = Lab::new();
    let a = lab.name("e");
    lab.ok(&["up", &a]);
    // A file that is there but not executable, made from the host in the upper dir.
    let upper = lab.state_dir.join("containers").join(&a).join("upper");
    std::fs::write(upper.join("notexec"), "#!/bin/sh\necho no\n").unwrap();
    for (cmd, code, say) in [
        (&["/bin/sh", "-c", "exit 0"][..], 0, ""),
        (&["/bin/sh", "-c", "exit 7"][..], 7, ""),
        (&["/notexec"][..], 126, "EACCES"),
        (&["/no/such/program"][..], 127, "ENOENT"),
        (&["nosuchcommand"][..], 127, "nosuchcommand"),
        (&["/bin/sh", "-c", "kill -USR1 $$"][..], 128 + libc::SIGUSR1, ""),
    ] {
        let o = lab.exec(&a, cmd);
        assert_eq!(o.status.code(), Some(code), "exec {cmd:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(say), "exec {cmd:?}: {}", text(&o));
    }
    // Killed from the host with SIGKILL, which nothing inside can catch or pass on.
    let mut args = vec!["exec", &a, "--"];
    args.extend_from_slice(WAIT);
    let mut child = lab.cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let me = child.id() as i32;
    let stress = wait_for("the command to run", || descendants_named(me, "stress").first().copied());
    assert_eq!(unsafe { libc::kill(stress, libc::SIGKILL) }, 0, "kill -KILL {stress}");
    let status = wait_for("exec to end", || child.try_wait().unwrap());
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
}

#[test]
fn abandoned_grandchildren_leave_no_zombie() {
    let lab = Lab::new();
    let a = lab.name("z");
    // Each ( ... &) leaves an orphan that init, PID 1, must reap.
    let script = "for i in 1 2 3 4 5 6; do (sh -c 'exit 0' &); done; \
                  stress --vm 1 --vm-bytes 4096 -t 1 -q; ps -e -o stat=,pid=,comm=";
    let o = lab.run(&["run", &a, "--", "/bin/sh", "-c", script]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    let zombies: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with('Z')).collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}\n{}", text(&o));
}

#[test]
fn the_tutorial_pid1_mode_ignores_sigterm() {
    let lab = Lab::new();
    let a = lab.name("p");
    let mut args = vec!["up", &a, "--exec-as-pid1", "--"];
    args.extend_from_slice(WAIT);
    lab.ok(&args);
    let pid = lab.init_pid(&a);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "stress");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // No sleep: the stop barrier shows that nothing fatal is pending (the kernel
    // drops the signal when it is sent: PID 1 has no handler for it).
    assert!(dropin::alive_after_stop_barrier(pid), "PID 1 without a handler ignores SIGTERM");
    assert!(stdout(&lab.ok(&["status", &a])).contains(": running"), "PID 1 without a handler ignores SIGTERM");
    let t0 = Instant::now();
    lab.ok(&["down", "--timeout", "1", &a]);
    assert!(t0.elapsed() >= Duration::from_secs(1), "down waited the grace period, then used SIGKILL");
}

#[test]
fn down_gives_a_grace_period_then_kills() {
    let lab = Lab::new();
    let (a, b) = (lab.name("k"), lab.name("i"));
    let mut args = vec!["up", &a, "--"];
    args.extend_from_slice(WAIT);
    lab.ok(&args);
    // init forwards SIGTERM to the main process, which dies of it: no waiting.
    let t0 = Instant::now();
    lab.ok(&["down", "--timeout", "30", &a]);
    assert!(t0.elapsed() < Duration::from_secs(20), "a main process that dies of SIGTERM needs no grace period");
    // One that ignores SIGTERM is killed once the grace period is over.
    lab.ok(&["up", &b, "--", "/bin/sh", "-c", "trap '' TERM; exec stress --vm 1 --vm-bytes 4096 --vm-hang 0 -q"]);
    // Up means sh runs; wait until it has set the trap and become stress.
    let init = lab.init_pid(&b);
    wait_for("stress to run", || (!descendants_named(init, "stress").is_empty()).then_some(()));
    let t0 = Instant::now();
    lab.ok(&["down", "--timeout", "2", &b]);
    assert!(t0.elapsed() >= Duration::from_secs(2), "the grace period was not given");
    assert_eq!(lab.leftovers(&[&a, &b]), Vec::<String>::new());
}

#[test]
fn run_forwards_the_signals_it_gets() {
    let lab = Lab::new();
    let a = lab.name("f");
    let mut args = vec!["run", &a, "--"];
    args.extend_from_slice(WAIT);
    let mut child = lab.cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the container to run", || stdout(&lab.run(&["status", &a])).contains(": running").then_some(()));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for("run to end", || child.try_wait().unwrap());
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert_eq!(lab.leftovers(&[&a]), Vec::<String>::new());
}

/// (pgrp, tty_nr, tpgid) of a process: fields 5, 7 and 8 of /proc/PID/stat.
fn tty_fields(pid: i32) -> (i32, i64, i32) {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = st[st.rfind(')').unwrap() + 2..].split(' ').collect();
    (f[2].parse().unwrap(), f[4].parse().unwrap(), f[5].parse().unwrap())
}

#[test]
fn an_interactive_shell_has_job_control() {
    let lab = Lab::new();
    let a = lab.name("j");
    let mut cmd = lab.cmd(&["run", &a]);
    cmd.env("TERM", "dumb");
    let mut term = OnPty::spawn(cmd);
    term.say("echo ready-$((1+1))\n");
    term.expect("ready-2");
    term.say("stress --vm 1 --vm-bytes 4096 --vm-hang 0 -q &\n");
    let host_setup = term.child.id() as i32;
    let job = wait_for("the background job", || descendants_named(host_setup, "stress").first().copied());
    // The job is on the container's own terminal, not ours (see tty.rs).
    let (pgrp, tty, _) = tty_fields(job);
    assert_ne!(tty, tty_fields(host_setup).1, "the container has a terminal of its own");
    assert_ne!(tty_fields(job).2, pgrp, "a background job is not in the foreground");
    term.say("fg\n");
    wait_for("the job in the foreground", || (tty_fields(job).2 == pgrp).then_some(()));
    term.say("\x03"); // Ctrl-C: SIGINT to the foreground job only
    wait_for("Ctrl-C to end the job", || (!std::path::Path::new(&format!("/proc/{job}")).exists()).then_some(()));
    term.say("echo alive-$((40+2))\n");
    term.expect("alive-42");
    term.say("exit 3\n");
    let status = wait_for("the shell to exit", || term.child.try_wait().unwrap());
    assert_eq!(status.code(), Some(3), "{}", term.output());
    let out = term.output();
    assert!(!out.contains("job control turned off") && !out.contains("can't access tty"), "{out}");
}

#[test]
fn exec_on_a_terminal_gets_a_terminal_of_its_own() {
    let lab = Lab::new();
    let a = lab.name("t");
    lab.ok(&["up", &a]);
    let mut cmd = lab.cmd(&["exec", &a]);
    cmd.env("TERM", "dumb");
    let mut term = OnPty::spawn(cmd);
    term.say("echo in-$((6*7))\n");
    term.expect("in-42");
    let host_setup = term.child.id() as i32;
    let sh = wait_for("the shell", || descendants_named(host_setup, "sh").first().copied());
    let (pgrp, tty, tpgid) = tty_fields(sh);
    // Not the user's terminal: TIOCSTI on it could type into the user's shell.
    assert_ne!(tty, tty_fields(host_setup).1, "exec gave the user's terminal to the container");
    assert!(tty != 0 && tpgid == pgrp, "the shell owns its terminal's foreground (job control)");
    // Ctrl-C reaches the shell's foreground job, and the window size follows ours.
    term.say("stty size 2>/dev/null; exit 5\n");
    let status = wait_for("exec to end", || term.child.try_wait().unwrap());
    assert_eq!(status.code(), Some(5), "{}", term.output());
}
