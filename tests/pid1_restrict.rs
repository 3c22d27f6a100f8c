//! Integration tests of init's containment flags: here `--restrict`;
//! pid1_contain.rs: `--dev`, `--mask-proc`, `--cgroupns` and init's rewritten
//! command line (their container: pid1_image.rs). The real
//! binary as a drop-in PID 1 (`cargo build --release` first), as root, on the
//! real kernel, on a busybox-static root filesystem.
//!
//! Each container is `unshare -m -u -i -n -p -f --kill-child sh -c 'ip link set
//! lo up; exec init ...'`: its own mount, UTS, IPC, network and pid namespaces
//! (so its mounts, hostname and pings stay inside and die with it), init as PID 1.
//! Temp dirs are lab_tests::TempDir, removed by a Drop guard; only processes a
//! test started are killed, by pid (killing unshare takes the whole pid
//! namespace down through --kill-child).

mod dropin;
mod pid1_image;

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Command;

use dropin::{children_of, collect, comm, direct, init, init_pid_under, lossy, run, start, Outcome};
use lab_tests::child_fd::give_fd;
use lab_tests::{wait_for, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pid1_image::{Image, ALL};

/// Docker's default capability set, as /proc/PID/status shows it.
const DEFAULT_CAPS: &str = "00000000a80425fb";

/// The fd number a test gives init to inherit (high, so that no fd of the
/// shell or of ls can have it by chance).
const LEAKED_FD: i32 = 222;

/// Gives `cmd` (only) an inherited fd LEAKED_FD on `file` (keep the returned fd until spawn): the kind of leak
/// init must not pass on (platform.md, trap 8).
fn inherit_fd(cmd: &mut Command, file: impl AsFd) -> OwnedFd {
    give_fd(cmd, file, LEAKED_FD)
}

/// The fd numbers in an `ls /proc/PID/fd | tr '\n' ' '` line.
fn fds(line: &str) -> Vec<i32> {
    line.split_whitespace().map(|n| n.parse().unwrap()).collect()
}

/// The Cap* and NoNewPrivs lines of a /proc/PID/status text.
fn caps(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn assert_restricted(status: &str, who: &str) {
    let c = caps(status);
    let get = |k: &str| c.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("missing");
    for k in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(get(k), DEFAULT_CAPS, "{who}: {k} in {status}");
    }
    assert_eq!(get("CapAmb"), "0000000000000000", "{who}: {status}");
    assert_eq!(get("CapInh"), "0000000000000000", "{who}: {status}");
    assert_eq!(get("NoNewPrivs"), "1", "{who}: {status}");
}

// ==== --restrict ===================================================================

#[test]
fn restrict_leaves_cmd_and_init_dockers_default_caps_and_no_new_privs() {
    let img = Image::new("caps");
    let o = run(&mut img.container(ALL, "echo '--- cmd'; cat /proc/self/status; echo '--- init'; cat /proc/1/status"));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_restricted(&o.section("cmd"), "CMD");
    assert_restricted(&o.section("init"), "PID 1");

    // Control: without --restrict, root in the container keeps every capability.
    let o = run(&mut img.container(&["--dev"], "cat /proc/self/status"));
    assert_eq!(o.code, Some(0), "{o:?}");
    let c = caps(&o.stdout);
    assert!(c.iter().any(|(k, v)| k == "CapBnd" && v != DEFAULT_CAPS), "{o:?}");
    assert!(c.iter().any(|(k, v)| k == "NoNewPrivs" && v == "0"), "{o:?}");
}

#[test]
fn restrict_denies_mount_hostname_net_admin_and_umount() {
    let img = Image::new("deny");
    let script = "\
        echo '--- mount'; mount -t tmpfs x /mnt 2>&1; echo \"rc $?\"
        echo '--- hostname'; hostname x 2>&1; echo \"rc $?\"; hostname
        echo '--- ip'; ip link set lo down 2>&1; echo \"rc $?\"
        echo '--- umount'; umount /proc/keys 2>&1; echo \"rc $?\"
        echo '--- mknod'; mknod /b b 8 0 2>&1; echo \"rc $?\"
        echo '--- blockdevs'; find /dev -type b; echo end";
    let o = run(&mut img.container(ALL, script));
    assert_eq!(o.code, Some(0), "{o:?}");
    let mount = o.section("mount");
    assert!(mount.contains("permission denied") && !mount.ends_with("rc 0\n"), "mount: {o:?}");
    let hostname = o.section("hostname");
    assert!(hostname.contains("Operation not permitted") && hostname.ends_with("\nT\n"), "{o:?}");
    assert!(o.section("ip").contains("Operation not permitted"), "ip link set lo down: {o:?}");
    assert!(o.section("umount").contains("Operation not permitted"), "umount: {o:?}");
    // CAP_MKNOD is in Docker's set: making a node is allowed (the device cgroup,
    // on the host side, denies opening it), but /dev itself holds none.
    assert_eq!(o.section("mknod"), "rc 0\n", "{o:?}");
    assert_eq!(o.section("blockdevs"), "end\n", "{o:?}");

    // Control: the same as full root (no --restrict) all succeed.
    let o = run(&mut img.container(&["--dev"], "mount -t tmpfs x /mnt && hostname x && hostname"));
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "x\n"), "{o:?}");
}

#[test]
fn restrict_keeps_ping_working_on_loopback() {
    // CAP_NET_RAW: busybox ping needs a raw ICMP socket (ping_group_range is
    // empty in a fresh netns, so no datagram ICMP socket either).
    let img = Image::new("ping");
    let o = run(&mut img.container(ALL, "ping -c 1 -W 10 127.0.0.1"));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.contains("1 packets received"), "{o:?}");
}

#[test]
fn restrict_hides_init_from_cmd_but_cmd_stays_dumpable() {
    let img = Image::new("dump");
    let script = "\
        echo '--- fd'; readlink /proc/1/fd/0 || echo denied
        echo '--- exe'; readlink /proc/1/exe || echo denied
        echo '--- root'; ls /proc/1/root/ >/dev/null 2>&1 || echo denied
        echo '--- environ'; cat /proc/1/environ >/dev/null 2>&1 || echo denied
        echo '--- cmd'; sh -c \"cat /proc/$$/environ >/dev/null && echo readable\"; true";
    let o = run(&mut img.container(ALL, script));
    assert_eq!(o.code, Some(0), "{o:?}");
    for s in ["fd", "exe", "root", "environ"] {
        assert_eq!(o.section(s), "denied\n", "/proc/1/{s}: {o:?}");
    }
    // CMD's child (same uid and capabilities) reads CMD's environ: execve made CMD
    // dumpable again.
    assert_eq!(o.section("cmd"), "readable\n", "{o:?}");

    // Control: without --restrict the same reads work (the checks can see a leak).
    let o = run(&mut img.container(&["--dev"], "readlink /proc/1/fd/0 && readlink /proc/1/exe"));
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn restrict_closes_inits_own_inherited_fds() {
    let img = Image::new("fds");
    let f = File::create(img.t.path("host-file")).unwrap();
    let script = "ls /proc/1/fd | tr '\\n' ' '; echo; ls /proc/$$/fd | tr '\\n' ' '";
    let mut c = img.container(ALL, script);
    let _leak = inherit_fd(&mut c, &f);
    let o = run(&mut c);
    assert_eq!(o.code, Some(0), "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    // 0-2, and for an instant maybe init's own pipe from CMD's exec (3, 4); not
    // the leaked fd, nor any other fd the test runner had.
    assert!(fds(lines[0]).iter().all(|&n| n <= 4), "init's fds: {o:?}");
    assert!(!fds(lines[1]).contains(&LEAKED_FD), "CMD's fds: {o:?}");

    // Control: without --restrict init itself keeps what it inherited (CMD does not).
    let mut c = img.container(&[], "ls /proc/1/fd | tr '\\n' ' '");
    let _leak = inherit_fd(&mut c, &f);
    let o = run(&mut c);
    assert!(fds(&o.stdout).contains(&LEAKED_FD), "{o:?}");
}

#[test]
fn restricted_init_still_signals_other_uids_and_reaps() {
    // CMD becomes `sleep` running as nobody: forwarding SIGTERM to it needs
    // CAP_KILL (init runs as root), which init kept. An orphan must be reaped.
    let img = Image::new("sig");
    let script = "(sleep 0.1 &); exec su -s /bin/sh nobody -c 'exec sleep 1000'";
    let mut unshare = start(&mut img.container(ALL, script));
    let init = init_pid_under(&unshare);
    let sleep = wait_for("CMD as nobody", || {
        children_of(init).into_iter().find(|&k| {
            let st = fs::read_to_string(format!("/proc/{k}/status")).unwrap_or_default();
            comm(k) == "sleep" && st.contains("\nUid:\t65534\t")
        })
    });
    // The orphaned sleep came to init and went: only CMD is left.
    wait_for("the orphan to be reaped", || (children_of(init) == [sleep]).then_some(()));
    kill(Pid::from_raw(init), Signal::SIGTERM).unwrap();
    let o = unshare.wait();
    assert_eq!(o.code, Some(143), "{o:?}");
}

#[test]
fn restrict_exec_applies_the_same_limits_when_not_pid1() {
    // The way into a running container (host-setup exec): `init --restrict --exec
    // -- CMD` from an ordinary process, no setup at all.
    let t = TempDir::new("execmode");
    let f = File::create(t.path("host-file")).unwrap();
    let mut c = direct(&["--restrict", "--exec", "--", "/bin/sh", "-c"]);
    c.arg("cat /proc/self/status; echo \"--- fds\"; ls /proc/$$/fd | tr '\\n' ' '; exit 7");
    let _leak = inherit_fd(&mut c, &f);
    let o = run(&mut c);
    assert_eq!(o.code, Some(7), "{o:?}");
    assert_restricted(&o.stdout, "--restrict --exec");
    assert!(!fds(&o.section("fds")).contains(&LEAKED_FD), "{o:?}");
}

#[test]
fn restrict_keeps_the_ready_fd_until_cmd_runs() {
    // host-setup's --ready-fd survives init closing its own fds, and says ok.
    let img = Image::new("ready");
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let fd = LEAKED_FD.to_string();
    let mut c = img.unshare();
    c.args(img.setup_flags()).args(ALL).args(["--ready-fd", &fd, "--", "/bin/sh", "-c"]);
    c.arg("ls /proc/$$/fd | tr '\\n' ' '; sleep 1000");
    let leak = inherit_fd(&mut c, &w);
    let mut unshare = start(&mut c);
    drop((w, leak));
    // unshare keeps its own copy of the write end: wait for the line, not for EOF.
    let (ready, _eof) = collect(File::from(r));
    let line = wait_for("a line on the ready fd", || {
        let t = lossy(&ready);
        t.contains('\n').then_some(t)
    });
    assert_eq!(line, "ok\n");
    let init = init_pid_under(&unshare);
    wait_for("CMD's sleep", || children_of(init).first().filter(|&&p| comm(p) == "sleep").copied());
    // init closes it right after writing "ok".
    wait_for("init to close the ready fd", || {
        fs::symlink_metadata(format!("/proc/{init}/fd/{fd}")).is_err().then_some(())
    });
    let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
    let o = unshare.wait();
    assert!(!fds(&o.stdout).contains(&LEAKED_FD), "the ready fd reached CMD: {o:?}");
}

#[test]
fn restrict_fails_with_a_message_without_cap_setpcap() {
    // Dropping from the bounding set needs CAP_SETPCAP: started without it, init
    // names the step and the errno and exits 125 before CMD runs.
    let mut c = Command::new("setpriv");
    c.args(["--bounding-set=-setpcap", "--"]).arg(init()).args(["--restrict", "--exec", "--", "/bin/echo", "ran"]);
    let o = run(c.env_remove("RUST_LOG"));
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stdout, "", "{o:?}");
    assert_eq!(
        o.stderr,
        "init: prctl(PR_CAPBSET_DROP, cap_dac_read_search): EPERM: operation not permitted; needs cap_setpcap\n"
    );
}

/// Enters a running container the way host-setup exec does: every namespace of
/// its init (nsenter -a, which forks so the shell is in the pid namespace), its
/// root, then this init binary executed from a memfd (not a path of the host,
/// which the container cannot see) as `init --restrict --exec -- CMD`.
fn enter_like_host_setup_exec(init_pid: i32, script: &str) -> Outcome {
    let bytes = fs::read(init()).unwrap();
    // CLOEXEC here; only nsenter's child inherits it (pre_exec below).
    let memfd = unsafe { libc::memfd_create(c"init".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(memfd >= 0, "memfd_create: {}", io::Error::last_os_error());
    let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
    io::Write::write_all(&mut File::from(memfd.try_clone().unwrap()), &bytes).unwrap();
    let mut c = Command::new("nsenter");
    c.args(["-t", &init_pid.to_string(), "-a", "-r", "-w", "--"]).arg(format!("/proc/self/fd/{LEAKED_FD}"));
    c.args(["--restrict", "--exec", "--", "/bin/sh", "-c", script]).env_remove("RUST_LOG");
    let memfd = File::from(memfd); // open until the child has its copy
    let _leak = inherit_fd(&mut c, &memfd);
    run(&mut c)
}

#[test]
fn entering_with_restrict_exec_gets_the_main_process_restrictions() {
    let img = Image::new("enter");
    let unshare = start(&mut img.container(ALL, "exec sleep 1000"));
    let init = init_pid_under(&unshare);
    wait_for("CMD", || children_of(init).first().filter(|&&p| comm(p) == "sleep").copied());
    let script = "\
        echo '--- status'; cat /proc/self/status
        echo '--- where'; hostname; cat /proc/1/comm; ls /
        echo '--- cgroup'; cat /proc/self/cgroup
        echo '--- fds'; ls /proc/self/fd | tr '\\n' ' '; echo
        echo '--- pid1'; readlink /proc/1/fd/0 || echo denied";
    let o = enter_like_host_setup_exec(init, script);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_restricted(&o.section("status"), "entered process");
    assert_eq!(o.section("where"), "T\ninit\nbin\ndev\netc\nmnt\nproc\n", "{o:?}");
    let cgroup = o.section("cgroup");
    assert!(!cgroup.is_empty() && cgroup.lines().all(|l| l.ends_with(":/")), "{o:?}");
    // The memfd init was executed from did not reach CMD.
    assert!(!fds(&o.section("fds")).contains(&LEAKED_FD), "{o:?}");
    assert_eq!(o.section("pid1"), "denied\n", "{o:?}");
    drop(unshare);
}
