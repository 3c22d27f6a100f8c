//! Integration tests of `init` as PID 1 (as pid1.rs, whose header says how they
//! run and clean up): the rootfs (overlay, pivot_root, /proc, hostname), the
//! ready fd, the setup steps (fds, cgroups, network namespace) and the command
//! line. Shared helpers: pid1_common.rs.

mod dropin;
mod pid1_common;

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use dropin::{alive, busybox_layer, cgroup_flags, children_of, comm, direct, init, init_pid_under, new_cgroups, run};
use lab_tests::{descendants_named, wait_for, TempDir};
use pid1_common::*;

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
