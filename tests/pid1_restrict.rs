//! Integration tests of init's containment flags (`--restrict`, `--dev`,
//! `--mask-proc`, `--cgroupns`) and of its rewritten command line: the real
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

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use dropin::{
    busybox_layer, cgroup_flags, children_of, collect, comm, direct, init, init_pid_under, lossy, new_cgroups, run,
    start, Outcome,
};
use lab_tests::child_fd::give_fd;
use lab_tests::{wait_for, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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

// ---- the root filesystem and the container ------------------------------------------

/// A container's directories: a busybox lower layer (with users and a /mnt), upper,
/// work and merge.
struct Image {
    t: TempDir,
}

impl Image {
    fn new(tag: &str) -> Image {
        let t = TempDir::new(tag);
        let lower = t.path("lower");
        busybox_layer(&lower);
        // /etc/passwd and /etc/group (root and nobody), an empty /mnt; no /dev (init --dev makes one).
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
            .unwrap();
        fs::write(lower.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        fs::create_dir_all(lower.join("mnt")).unwrap();
        for d in ["upper", "work", "merge"] {
            fs::create_dir_all(t.path(d)).unwrap();
        }
        Image { t }
    }

    /// `unshare ... init --lower ... --rootfs MERGE --hostname T FLAGS -- /bin/sh -c SCRIPT`,
    /// loopback up in the container's fresh network namespace.
    fn container(&self, flags: &[&str], script: &str) -> Command {
        let mut c = self.unshare();
        c.args(self.setup_flags()).args(flags).args(["--", "/bin/sh", "-c", script]);
        c
    }

    /// `unshare ... init` with no arguments yet.
    fn unshare(&self) -> Command {
        let mut c = Command::new("unshare");
        c.args(["-m", "-u", "-i", "-n", "-p", "-f", "--kill-child", "--propagation", "private"]);
        c.args(["/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]).arg(init());
        c.env_remove("RUST_LOG");
        c
    }

    fn setup_flags(&self) -> Vec<String> {
        let t = &self.t;
        ["--lower", &t.s("lower"), "--upper", &t.s("upper"), "--work", &t.s("work"), "--rootfs", &t.s("merge")]
            .into_iter()
            .chain(["--hostname", "T"])
            .map(String::from)
            .collect()
    }

    fn dir(&self) -> String {
        self.t.0.to_str().unwrap().to_string()
    }
}

/// Every containment flag, as host-setup's secure default passes them.
const ALL: &[&str] = &["--dev", "--mask-proc", "--cgroupns", "--restrict"];

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

// ==== --dev ==========================================================================

#[test]
fn dev_is_minimal_and_works() {
    let img = Image::new("dev");
    let script = "\
        echo '--- ls'; ls -A /dev /dev/pts
        echo '--- types'; for n in null zero full random urandom tty; do stat -c \"$n %F %t:%T %a\" /dev/$n; done
        echo '--- links'; for n in fd stdin stdout stderr ptmx; do echo \"$n $(readlink /dev/$n)\"; done
        echo '--- use'; echo x >/dev/null && cat /dev/null; head -c 5 /dev/zero | wc -c; head -c 5 /dev/urandom | wc -c
        (echo x >/dev/full) 2>&1; echo \"rc $?\"
        echo '--- mounts'; grep ' /dev' /proc/self/mountinfo";
    for flags in [&["--dev"][..], ALL] {
        let o = run(&mut img.container(flags, script));
        assert_eq!(o.code, Some(0), "{flags:?}: {o:?}");
        assert_eq!(
            o.section("ls"),
            "/dev:\nfd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n\n/dev/pts:\nptmx\n",
            "{flags:?}: {o:?}"
        );
        assert_eq!(
            o.section("types"),
            "null character special file 1:3 666\nzero character special file 1:5 666\n\
             full character special file 1:7 666\nrandom character special file 1:8 666\n\
             urandom character special file 1:9 666\ntty character special file 5:0 666\n",
            "{o:?}"
        );
        assert_eq!(
            o.section("links"),
            "fd /proc/self/fd\nstdin /proc/self/fd/0\nstdout /proc/self/fd/1\nstderr /proc/self/fd/2\nptmx pts/ptmx\n",
            "{o:?}"
        );
        let u = o.section("use");
        assert!(u.starts_with("5\n5\n") && u.contains("No space left on device") && !u.ends_with("rc 0\n"), "{o:?}");
        // (mount point, per-mount options, fs type, source, fs options) of each line.
        let mounts: Vec<Vec<String>> = o
            .section("mounts")
            .lines()
            .map(|l| {
                let (head, tail) = l.split_once(" - ").unwrap();
                head.split(' ').skip(4).take(2).chain(tail.split(' ')).map(String::from).collect()
            })
            .collect();
        assert_eq!(mounts.len(), 3, "{o:?}");
        let (dev, pts, shm) = (&mounts[0], &mounts[1], &mounts[2]);
        assert_eq!((&*dev[0], &*dev[2], &*dev[3]), ("/dev", "tmpfs", "tmpfs"), "{o:?}");
        assert!(dev[1].starts_with("rw,nosuid,noexec,") && dev[4].contains("size=65536k,mode=755"), "{o:?}");
        assert_eq!((&*pts[0], &*pts[2]), ("/dev/pts", "devpts"), "{o:?}");
        assert!(pts[1].starts_with("rw,nosuid,noexec,") && pts[4].contains("mode=620,ptmxmode=666"), "{o:?}");
        assert_eq!((&*shm[0], &*shm[2], &*shm[3]), ("/dev/shm", "tmpfs", "shm"), "{o:?}");
        assert!(shm[1].starts_with("rw,nosuid,nodev,noexec,") && shm[4].contains("size=65536k"), "{o:?}");
    }
}

#[test]
fn dev_refuses_an_image_whose_dev_is_a_symlink() {
    // Before pivot_root an absolute link would resolve on the host.
    let img = Image::new("devlink");
    symlink("/etc", img.t.path("lower/dev")).unwrap();
    let o = run(&mut img.container(&["--dev"], "true"));
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(
        o.stderr,
        format!(
            "init: open({}/merge/dev, O_NOFOLLOW|O_DIRECTORY): ENOTDIR: not a directory; \
             the image's /dev must be a directory, not a symlink\n",
            img.dir()
        )
    );
}

// ==== --mask-proc ====================================================================

/// The masked /proc files this kernel has (it may lack kcore, sched_debug, ...).
fn masked_files_here() -> Vec<&'static str> {
    let all = ["kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats"];
    all.into_iter().filter(|f| Path::new("/proc").join(f).is_file()).collect()
}

#[test]
fn mask_proc_masks_and_makes_read_only_even_for_full_root() {
    let img = Image::new("mask");
    let files = masked_files_here();
    assert!(!files.is_empty(), "none of runc's masked /proc files exists here");
    let mut ro = vec!["/proc/sys/kernel/core_pattern"];
    if Path::new("/proc/sysrq-trigger").exists() {
        ro.push("/proc/sysrq-trigger");
    }
    // Opening for append writes nothing even where it succeeds (the control below):
    // these files are the host's, not namespaced.
    let mut script = String::from("echo '--- masked'\n");
    for f in &files {
        script += &format!("echo \"{f} $(head -c 100 /proc/{f} | wc -c) $(stat -c '%t:%T' /proc/{f})\"\n");
    }
    script += "echo '--- ro'\n";
    for p in &ro {
        script += &format!("(: >>{p}) 2>&1\n");
    }
    script += "echo '--- acpi'; ls -A /proc/acpi 2>&1; echo end\n";
    let o = run(&mut img.container(&["--dev", "--mask-proc"], &script));
    assert_eq!(o.code, Some(0), "{o:?}");
    let want: String = files.iter().map(|f| format!("{f} 0 1:3\n")).collect();
    assert_eq!(o.section("masked"), want, "{o:?}");
    let want: String = ro.iter().map(|p| format!("/bin/sh: can't create {p}: Read-only file system\n")).collect();
    assert_eq!(o.section("ro"), want, "{o:?}");
    if Path::new("/proc/acpi").is_dir() {
        assert_eq!(o.section("acpi"), "end\n", "{o:?}");
    }

    // Control: without --mask-proc, full root reads them and may open them for writing.
    let o = run(&mut img.container(&["--dev"], &script));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.section("ro"), "", "{o:?}");
    assert!(o.section("masked").lines().any(|l| !l.contains(" 0 1:3")), "{o:?}");
}

#[test]
fn mask_proc_mounts_are_listed_read_only() {
    let img = Image::new("maskro");
    let o = run(&mut img.container(ALL, "grep ' /proc/' /proc/self/mountinfo | cut -d' ' -f5,6"));
    assert_eq!(o.code, Some(0), "{o:?}");
    for p in ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"] {
        if Path::new(p).exists() {
            assert!(o.stdout.lines().any(|l| l.starts_with(&format!("{p} ro,nosuid,nodev,noexec"))), "{p}: {o:?}");
        }
    }
}

// ==== --cgroupns ====================================================================

#[test]
fn cgroupns_shows_the_containers_cgroup_as_root() {
    let name = format!("pid1r-test-{}-{}", std::process::id(), lab_tests::seq());
    let groups = new_cgroups(&name);
    let flags = cgroup_flags(&groups);
    let img = Image::new("cgns");
    let run_with = |extra: &[&str]| {
        let mut f: Vec<&str> = flags.iter().map(String::as_str).collect();
        f.extend(extra);
        run(&mut img.container(&f, "cat /proc/self/cgroup"))
    };
    let o = run_with(&["--cgroupns", "--restrict"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(!o.stdout.is_empty() && o.stdout.lines().all(|l| l.ends_with(":/")), "{o:?}");
    // Control: without it the host's paths show, the test's cgroup among them.
    let o = run_with(&[]);
    assert!(o.stdout.lines().any(|l| l.ends_with(&format!(":/{name}"))), "{o:?}");
}

// ==== init's command line ============================================================

/// /proc/PID/cmdline as text, NULs as spaces, trailing NULs dropped (as ps does).
fn shown(cmdline: &[u8]) -> String {
    let end = cmdline.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&cmdline[..end]).replace('\0', " ")
}

#[test]
fn cmdline_shows_init_and_cmd_not_the_setup_paths() {
    let img = Image::new("cmdline");
    for flags in [&[][..], ALL] {
        let script = "cat /proc/1/cmdline; echo '--- ps'; ps -o pid,args | grep '^ *1 '; sleep 1000";
        let mut unshare = start(&mut img.container(flags, script));
        let init = init_pid_under(&unshare);
        wait_for("CMD's sleep", || children_of(init).first().filter(|&&p| comm(p) == "sleep").copied());
        let host_view = fs::read(format!("/proc/{init}/cmdline")).unwrap();
        assert_eq!(shown(&host_view), format!("init -- /bin/sh -c {script}"), "{flags:?}");
        assert!(!String::from_utf8_lossy(&host_view).contains(&img.dir()), "{flags:?}");
        assert_eq!(comm(init), "init");
        let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
        let o = unshare.wait();
        let (inside, ps) = o.stdout.split_once("--- ps\n").unwrap_or_else(|| panic!("{o:?}"));
        assert_eq!(shown(inside.as_bytes()), format!("init -- /bin/sh -c {script}"), "{o:?}");
        assert!(!inside.contains(&img.dir()), "{o:?}");
        assert!(ps.trim_start().starts_with("1 init -- /bin/sh -c"), "ps: {o:?}");
    }
}

#[test]
fn cmdline_of_a_pause_container_is_just_init() {
    let img = Image::new("pause");
    let mut c = img.unshare();
    c.args(img.setup_flags()).args(ALL).arg("--pause");
    let mut unshare = start(&mut c);
    let init = init_pid_under(&unshare);
    let shown_now = || shown(&fs::read(format!("/proc/{init}/cmdline")).unwrap_or_default());
    wait_for("the rewritten cmdline", || (shown_now() == "init").then_some(()));
    kill(Pid::from_raw(init), Signal::SIGTERM).unwrap();
    assert_eq!(unshare.wait().code, Some(0));
}

// ==== command line and traces =======================================================

#[test]
fn usage_errors_and_debug_traces() {
    let o = run(direct(&["--dev", "true"]));
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (Some(2), "init: --dev needs --rootfs (the new root to make /dev in); see init --help\n")
    );
    let o = run(direct(&["--rootfs", "/nonexistent", "--mask-proc", "true"]));
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (Some(2), "init: --mask-proc needs --dev (it binds the new /dev/null); see init --help\n")
    );
    let o = run(direct(&["--help"]));
    for flag in ["--restrict", "--dev", "--mask-proc", "--cgroupns"] {
        assert!(o.stdout.contains(&format!("\n  {flag} ")), "{flag}: {o:?}");
    }

    let img = Image::new("debug");
    let o = run(img.container(ALL, "true").env("RUST_LOG", "debug"));
    assert_eq!(o.code, Some(0), "{o:?}");
    for step in [
        "unshare(CLONE_NEWCGROUP)",
        "minimal /dev in ",
        "mknod dev/null",
        "mount devpts on dev/pts: newinstance,ptmxmode=0666,mode=0620,gid=5",
        "read-only /proc/sys",
        "mask /proc/keys (/dev/null)",
        "close init's inherited fds above 2",
        "prctl(PR_SET_DUMPABLE, 0)",
        "bounding set reduced up to cap_",
        "capset: effective and permitted reduced to the default set",
        "ambient set cleared",
        "no_new_privs set",
        "argv rewritten",
    ] {
        let line = o.stderr.lines().find(|l| l.contains(&format!(")] {step}")));
        assert!(line.is_some_and(|l| l.starts_with("[DEBUG init (")), "{step}: {o:?}");
    }
}
