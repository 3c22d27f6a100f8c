//! Integration tests of `init`, the container's PID 1: the real binary
//! (`cargo build --release` first), as root, on the real kernel.
//!
//! Most tests run init as PID 1 of a new pid namespace through util-linux
//! `unshare --fork --pid ... --kill-child`: if a test kills unshare (by pid),
//! init gets SIGKILL, and with it the whole namespace dies. Temp dirs are
//! lab_tests::TempDir, removed by a Drop guard; mounts live only in the test's
//! own mount namespaces, which die with their processes. Only processes a test
//! started are killed, by pid.

mod dropin;

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dropin::{
    alive, alive_after_stop_barrier, busybox_layer, cgroup_flags, check_orphans_reaped, children_of, collect, comm,
    direct, init, init_pid_under, lossy, new_cgroups, run, start, stat_at, KillOnDrop, Running, ORPHANS,
};
use lab_tests::{descendants_named, wait_for, OnPty, TempDir};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `init ARGS` as PID 1 of a new pid namespace with its own /proc.
fn in_pidns(args: &[&str]) -> Command {
    let mut c = unshare_pidns();
    c.args(args);
    c
}

/// `unshare ... init`, the arguments to be added.
fn unshare_pidns() -> Command {
    let mut c = Command::new("unshare");
    c.args(["--fork", "--pid", "--mount-proc", "--kill-child"]).arg(init());
    c.env_remove("RUST_LOG");
    c
}

// ---- the ready pipe ---------------------------------------------------------------

/// A pipe whose write end only `cmd`'s process inherits (CLOEXEC everywhere
/// else, so concurrent tests' children cannot hold it open). Returns the read
/// end and the write end's number, to pass as --ready-fd.
fn ready_pipe(cmd: &mut Command) -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let fd = w.as_raw_fd();
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    (r, w)
}

/// The test's end of the ready pipe, read by a thread as host-setup would.
struct Ready {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
    /// "pipe:[INODE]": what /proc/PID/fd/N shows for either end of this pipe.
    link: PathBuf,
}

impl Ready {
    /// Everything up to EOF, which comes once no process holds the write end.
    fn to_eof(&self) -> String {
        wait_for("EOF on the ready fd (leaked, or init hangs)", || self.eof.load(Ordering::SeqCst).then_some(()));
        lossy(&self.buf)
    }

    /// The first line (or what came before EOF). Under `unshare --fork`, unshare
    /// itself keeps a copy of the write end, so EOF only comes when it exits.
    fn first_line(&self) -> String {
        let t = wait_for("a line on the ready fd", || {
            let t = lossy(&self.buf);
            (t.contains('\n') || self.eof.load(Ordering::SeqCst)).then_some(t)
        });
        t.split_inclusive('\n').next().unwrap_or("").to_string()
    }

    /// Whether process `pid` has an fd open on this pipe.
    fn held_by(&self, pid: i32) -> bool {
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok()).any(|l| l == self.link)
    }
}

/// Starts `base ARGS` where "READY" in `args` becomes the write end's fd number.
fn start_with_ready(base: &mut Command, args: &[&str]) -> (Running, Ready) {
    let (r, w) = ready_pipe(base);
    let n = w.as_raw_fd().to_string();
    base.args(args.iter().map(|a| if *a == "READY" { n.as_str() } else { a }));
    let running = start(base);
    drop(w); // only the child holds the write end now
    let link = fs::read_link(format!("/proc/self/fd/{}", r.as_raw_fd())).unwrap();
    let (buf, eof) = collect(File::from(r));
    (running, Ready { buf, eof, link })
}

// ---- mounts ----------------------------------------------------------------------

/// The mount points listed in a mountinfo text.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).map(String::from).collect()
}

/// Whether a host mount has its root or its mount point at or under `dir` (whole
/// path components: /tmp/x-1 does not mention /tmp/x-14).
fn host_mounts_mention(dir: &Path) -> bool {
    let d = dir.to_str().unwrap();
    let under = |f: &str| f == d || f.strip_prefix(d).is_some_and(|rest| rest.starts_with('/'));
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').skip(3).take(2).any(under))
}

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

// ==== rootfs ======================================================================

fn rootfs_run(propagation: &str) {
    let t = TempDir::new("rootfs");
    let (lower, upper) = (t.path("lower"), t.path("upper"));
    for d in [&upper, &t.path("work"), &t.path("merge")] {
        fs::create_dir_all(d).unwrap();
    }
    busybox_layer(&lower);
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-u", "-i", "-f", "-p", "--kill-child", "--propagation", propagation]).arg(init());
    cmd.env_remove("RUST_LOG");
    cmd.args(["--lower", &t.s("lower"), "--upper", &t.s("upper"), "--work", &t.s("work")]);
    cmd.args(["--rootfs", &t.s("merge"), "--hostname", "T", "--"]);
    cmd.args(["/bin/sh", "-c", "hostname; ls -a /; cat /proc/1/comm; echo ---; cat /proc/self/mountinfo"]);
    let o = run(&mut cmd);
    assert_eq!(o.code, Some(0), "{o:?}");
    let (head, mountinfo) = o.stdout.split_once("---\n").expect("marker");
    let lines: Vec<&str> = head.lines().collect();
    assert_eq!(lines[0], "T", "hostname: {o:?}");
    let mut root: Vec<&str> = lines[1..lines.len() - 1].to_vec();
    root.sort();
    assert_eq!(root, [".", "..", "bin", "proc"], "ls -a / (no put_old): {o:?}");
    assert_eq!(lines.last(), Some(&"init"), "PID 1: {o:?}");
    // Only the overlay and /proc: the host's tree is gone from the namespace.
    assert_eq!(mount_points(mountinfo), ["/", "/proc"], "{o:?}");
    assert!(mountinfo.lines().next().unwrap().contains(" - overlay overlay "), "{o:?}");
    // The writes went to the upper dir: /proc was made, put_old made and removed.
    assert!(upper.join("proc").is_dir() && !upper.join("put_old").exists());
    assert!(!lower.join("proc").exists());
    assert_eq!(fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), host_name);
    assert!(!host_mounts_mention(&t.0), "a mount leaked to the host");
}

#[test]
fn rootfs_overlay_pivot_root_proc_hostname() {
    rootfs_run("private");
}

#[test]
fn rootfs_works_when_root_is_shared() {
    // As on systemd hosts: init must make "/" private itself, or pivot_root says EINVAL.
    rootfs_run("shared");
}

#[test]
fn rootfs_without_lower_is_bind_mounted() {
    let t = TempDir::new("bind");
    let root = t.path("root");
    busybox_layer(&root);
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "-f", "-p", "--kill-child"]).arg(init()).env_remove("RUST_LOG");
    cmd.args(["--rootfs", &t.s("root"), "--", "/bin/sh", "-c", "ls /; echo ---; cat /proc/self/mountinfo"]);
    let o = run(&mut cmd);
    assert_eq!(o.code, Some(0), "{o:?}");
    let (ls, mountinfo) = o.stdout.split_once("---\n").unwrap();
    assert_eq!(ls, "bin\nproc\n", "{o:?}");
    assert_eq!(mount_points(mountinfo), ["/", "/proc"], "{o:?}");
    assert!(!root.join("put_old").exists(), "put_old was not removed");
    assert!(!host_mounts_mention(&t.0), "a mount leaked to the host");
}

// ==== ready fd ======================================================================

#[test]
fn ready_fd_says_ok_and_never_reaches_cmd() {
    // Not PID 1, init a child of the test: EOF while CMD still runs, so init has
    // closed the fd and CMD never had it.
    let (init, ready) = start_with_ready(&mut direct(&[]), &["--ready-fd", "READY", "--", "sleep", "1000"]);
    assert_eq!(ready.to_eof(), "ok\n");
    assert!(alive(init.pid()));
    let sleep = wait_for("sleep", || children_of(init.pid()).first().copied());
    assert_eq!(comm(sleep), "sleep");
    drop(init); // kills init and the sleep

    // As PID 1 under unshare (which keeps its own copy, so no EOF): neither init
    // nor CMD holds the pipe.
    let (unshare, ready) = start_with_ready(&mut unshare_pidns(), &["--ready-fd", "READY", "--", "sleep", "1000"]);
    assert_eq!(ready.first_line(), "ok\n");
    let init = init_pid_under(&unshare);
    let sleep = wait_for("sleep", || descendants_named(unshare.pid(), "sleep").first().copied());
    assert!(ready.held_by(unshare.pid()), "control: the check sees unshare's copy");
    // init writes "ok", then closes the fd: wait for the close, which a slow machine
    // (the VM under TCG) shows after the "ok" (a timeout here: init kept it open).
    wait_for("init to close the ready fd", || (!ready.held_by(init)).then_some(()));
    assert!(!ready.held_by(sleep), "the ready fd leaked into CMD");
    drop(unshare);

    // --exec: "ok" before execve; the fd closes on exec.
    let (unshare, ready) =
        start_with_ready(&mut unshare_pidns(), &["--exec", "--ready-fd", "READY", "--", "sleep", "1000"]);
    assert_eq!(ready.first_line(), "ok\n");
    let pid1 = init_pid_under(&unshare);
    wait_for("sleep to replace init", || (comm(pid1) == "sleep").then_some(()));
    assert!(!ready.held_by(pid1), "the ready fd leaked into CMD with --exec");
    drop(unshare);
}

#[test]
fn ready_fd_reports_exec_failure() {
    let (mut unshare, ready) =
        start_with_ready(&mut unshare_pidns(), &["--ready-fd", "READY", "--", "/bin/nope-pid1-test"]);
    assert_eq!(ready.to_eof(), "error\t2\texec /bin/nope-pid1-test failed\t\n");
    let o = unshare.wait();
    assert_eq!(o.code, Some(127), "{o:?}");
    assert_eq!(o.stderr, "init: exec /bin/nope-pid1-test failed: ENOENT: no such file or directory\n");

    let (mut unshare, ready) =
        start_with_ready(&mut unshare_pidns(), &["--exec", "--ready-fd", "READY", "--", "/bin/nope-pid1-test"]);
    assert_eq!(ready.to_eof(), "ok\nerror\t2\texec /bin/nope-pid1-test failed\t\n");
    assert_eq!(unshare.wait().code, Some(127));
}

#[test]
fn ready_fd_reports_setup_failure_naming_the_path() {
    let t = TempDir::new("missing");
    busybox_layer(&t.path("lower"));
    fs::create_dir_all(t.path("upper")).unwrap();
    fs::create_dir_all(t.path("work")).unwrap();
    let missing = t.s("no-such-rootfs");
    let mut base = Command::new("unshare");
    base.args(["-m", "-f", "-p", "--kill-child"]).arg(init()).env_remove("RUST_LOG");
    let (lower, upper, work) = (t.s("lower"), t.s("upper"), t.s("work"));
    let args = [
        "--ready-fd",
        "READY",
        "--lower",
        &lower,
        "--upper",
        &upper,
        "--work",
        &work,
        "--rootfs",
        &missing,
        "--",
        "/bin/sh",
    ];
    let (mut unshare, ready) = start_with_ready(&mut base, &args);
    // errno, step and path, hint: the fields host-setup makes its own error of.
    let hint = "--rootfs must be an existing directory";
    assert_eq!(ready.to_eof(), format!("error\t2\topen({missing})\t{hint}\n"));
    let o = unshare.wait();
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stderr, format!("init: open({missing}): ENOENT: no such file or directory; {hint}\n"));
}

#[test]
fn ready_fd_must_be_open() {
    let o = run(&mut direct(&["--ready-fd", "987", "true"]));
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stderr, "init: fcntl(--ready-fd 987, FD_CLOEXEC): EBADF: bad file number\n");
}

// ==== setup steps =================================================================

#[test]
fn fds_above_2_never_reach_cmd() {
    let t = TempDir::new("fds");
    let f = File::create(t.path("f")).unwrap();
    let fd = f.as_raw_fd();
    let script = format!("[ -e /proc/$$/fd/{fd} ] && echo leaked || echo closed");
    let with_fd = |cmd: &mut Command| unsafe {
        cmd.pre_exec(move || {
            libc::fcntl(fd, libc::F_SETFD, 0);
            Ok(())
        });
    };
    // Control: without init the shell does see the inherited fd.
    let mut plain = Command::new("/bin/sh");
    plain.args(["-c", &script]);
    with_fd(&mut plain);
    assert_eq!(run(&mut plain).stdout, "leaked\n");
    let mut cmd = in_pidns(&["--", "/bin/sh", "-c", &script]);
    with_fd(&mut cmd);
    let o = run(&mut cmd);
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "closed\n"), "{o:?}");
}

#[test]
fn joins_cgroups_v1_and_v2() {
    let name = format!("pid1-test-{}-{}", std::process::id(), lab_tests::seq());
    let groups = new_cgroups(&name);
    let mut args = cgroup_flags(&groups);
    args.extend(["--", "cat", "/proc/self/cgroup"].map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&mut in_pidns(&argv));
    assert_eq!(o.code, Some(0), "{o:?}");
    for w in groups.iter().map(|g| &g.line) {
        assert!(o.stdout.lines().any(|l| l.ends_with(w)), "{w} not in {o:?}");
    }

    let t = TempDir::new("nocg");
    let o = run(&mut direct(&["--cgroup", &t.s("none"), "true"]));
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stderr, format!("init: open({}/cgroup.procs): ENOENT: no such file or directory\n", t.s("none")));
}

#[test]
fn joins_a_network_namespace() {
    let mut holder = Command::new("unshare").args(["--net", "sleep", "1000"]).spawn().unwrap();
    let pid = holder.id();
    let ours = fs::read_link("/proc/self/ns/net").unwrap();
    let theirs = wait_for("the new netns", || {
        let l = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
        (l != ours && comm(pid as i32) == "sleep").then_some(l)
    });
    let file = format!("/proc/{pid}/ns/net");
    // (Not under --mount-proc: /proc/PID of a host pid would not resolve there.)
    let o =
        run(&mut direct(&["--netns", &file, "--", "/bin/sh", "-c", "readlink /proc/self/ns/net; cat /proc/net/dev"]));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.code, Some(0), "{o:?}");
    let mut lines = o.stdout.lines();
    assert_eq!(lines.next(), Some(theirs.to_str().unwrap()), "{o:?}");
    let ifaces: Vec<&str> = lines.skip(2).filter_map(|l| l.trim().split(':').next()).collect();
    assert_eq!(ifaces, ["lo"], "{o:?}");

    let t = TempDir::new("netns");
    fs::write(t.path("plain"), "").unwrap();
    let o = run(&mut direct(&["--netns", &t.s("plain"), "true"]));
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(
        o.stderr,
        format!("init: setns({}, CLONE_NEWNET): EINVAL: invalid argument; not a network namespace\n", t.s("plain"))
    );
}

// ==== command line ================================================================

#[test]
fn usage_help_version() {
    let o = run(&mut direct(&["--bogus"]));
    assert_eq!(o.code, Some(2), "{o:?}");
    assert_eq!(o.stderr, "init: unknown option: --bogus; see init --help\n");
    let o = run(&mut direct(&["--pause", "sleep", "1"]));
    assert_eq!(o.code, Some(2), "{o:?}");
    let o = run(&mut direct(&["--help"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.starts_with("usage: init [OPTIONS] [--] [CMD [ARG...]]\n") && o.stdout.contains("--ready-fd N"));
    let o = run(&mut direct(&["-V"]));
    assert_eq!(o.code, Some(0), "{o:?}");
    let version = concat!(" - init ", env!("CARGO_PKG_VERSION"), " (host-setup's PID 1; tini's options)\n");
    assert!(o.stdout.starts_with("tini version ") && o.stdout.ends_with(version), "{o:?}");
}

#[test]
fn rust_log_debug_traces_steps() {
    let o = run(direct(&["true"]).env("RUST_LOG", "debug"));
    assert_eq!(o.code, Some(0), "{o:?}");
    let pid = o.stderr.split("[INFO  init (").nth(1).and_then(|r| r.split(")] ").next()).unwrap_or("?").to_string();
    assert!(o.stderr.contains(&format!("[INFO  init ({pid})] Spawned child process 'true' with pid '")), "{o:?}");
    assert!(o.stderr.contains(&format!("[DEBUG init ({pid})] Reaped child with pid: '")), "{o:?}");
    let o = run(direct(&["true"]).env("RUST_LOG", "info"));
    assert_eq!(o.stderr, "", "{o:?}");
}

#[test]
fn env_and_cwd_pass_through() {
    let t = TempDir::new("cwd");
    let o = run(direct(&["/bin/sh", "-c", "echo $PID1_TEST_VAR; pwd"]).env("PID1_TEST_VAR", "v a l").current_dir(&t.0));
    assert_eq!(o.stdout, format!("v a l\n{}\n", t.0.display()), "{o:?}");
}
