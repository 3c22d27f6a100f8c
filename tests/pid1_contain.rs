//! Integration tests of init's containment flags `--dev`, `--mask-proc`,
//! `--cgroupns` and of its rewritten command line, as pid1_restrict.rs (whose
//! header says how they run and clean up); the container: pid1_image.rs.

mod dropin;
mod pid1_image;

use std::fs::{self};
use std::os::unix::fs::symlink;
use std::path::Path;

use dropin::{cgroup_flags, children_of, comm, direct, init_pid_under, new_cgroups, run, start};
use lab_tests::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pid1_image::{Image, ALL};

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
