//! `init --spec-fd N`: the records of init/src/spec.rs run by the real init
//! binary, as root, PID 1 of new mount, pid, UTS, IPC and network namespaces
//! (util-linux unshare, as tests/pid1.rs), on a busybox-static rootfs. The spec
//! is written with init's own `Writer` into a sealed memfd (host-setup's
//! helper), given to init as fd 10. Every check reads a real effect from inside
//! the container (mountinfo, statfs, /proc/self/status and limits, a failed
//! write) or from the host (files that must not appear).
//!
//! Nothing is left: the mounts live in the test's own mount namespaces, which
//! die with init; temp dirs are removed by their guards.

mod dropin;
mod specfd;

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;

use dropin::run;
use init::spec::{self, Field, NONE};
use lab_tests::child_fd::give_fd;
use specfd::*;

// ==== mounts =========================================================================

#[test]
fn mounts_bind_ro_tmpfs_size_rbind_and_targets_stay_in_the_root() {
    let t = rootfs("mounts");
    fs::create_dir_all(t.path("data")).unwrap();
    fs::write(t.path("data/hello"), "hi\n").unwrap();
    fs::create_dir_all(t.path("tree/sub")).unwrap();
    // rootfs/x is a symlink to /tmp: before the pivot, a plain mount on ROOT/x
    // would land on the host's /tmp.
    fs::create_dir_all(t.path("root/tmp")).unwrap();
    symlink("/tmp", t.path("root/x")).unwrap();
    let marker = format!("initspec-marker-{}-{}", std::process::id(), lab_tests::seq());
    let spec = Spec::new(|w| {
        proc_mount(w);
        mount(w, &t.s("data"), "/data", "", MS_BIND | MS_RDONLY, "");
        mount(w, "tmpfs", "/tmp2", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777");
        mount(w, &t.s("tree"), "/tree", "", MS_BIND | MS_REC, "");
        // A file as the source: the mount point is made as an empty file.
        mount(w, &t.s("data/hello"), "/etc/hello", "", MS_BIND, "");
        // Last: had it gone over the host's /tmp, it would hide the sources above.
        mount(w, "tmpfs", "/x", "tmpfs", 0, "size=64k");
    });
    // The submount of the rbind's source, made in the test's own namespace.
    let prep = format!("mount -t tmpfs -o size=8k sub {}", t.s("tree/sub"));
    let script = format!(
        "cat /data/hello; echo x > /data/new && echo WROTE; echo ---; stat -f -c '%b %S' /tmp2; echo ---; \
         cat /proc/self/mountinfo; echo ---; cat /etc/hello; echo hi > /x/{marker}; ls /tmp"
    );
    let o = run_spec(&t, &spec, &[], &prep, &script);
    assert_eq!(o.code, Some(0), "{o:?}");
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    assert_eq!(parts[0], "hi\n", "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "a write to the ro bind: {o:?}");
    assert!(!t.path("data/new").exists());
    let (blocks, size) = parts[1].trim().split_once(' ').unwrap();
    assert_eq!(blocks.parse::<u64>().unwrap() * size.parse::<u64>().unwrap(), 1 << 20, "tmpfs size=1m: {o:?}");
    let mi = parts[2];
    let points: Vec<&str> = mi.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    for p in ["/", "/proc", "/data", "/tmp2", "/tree", "/tree/sub", "/tmp", "/etc/hello"] {
        assert!(points.contains(&p), "{p} not mounted: {mi}");
    }
    let tmp2 = mi.lines().find(|l| l.split(' ').nth(4) == Some("/tmp2")).unwrap();
    assert!(tmp2.contains("nosuid,nodev"), "{tmp2}");
    // One /proc only: the spec's (init does not add its own).
    assert_eq!(points.iter().filter(|p| **p == "/proc").count(), 1, "{mi}");
    assert_eq!(parts[3], format!("hi\n{marker}\n"), "the tmpfs on /x went on the root's /tmp: {o:?}");
    assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "the mount escaped to the host's /tmp");
    assert!(!t.path("root/tmp").join(&marker).exists(), "the tmpfs was not on /x's target");
}

#[test]
fn devices_symlinks_and_a_readonly_root() {
    let t = rootfs("devs");
    fs::create_dir_all(t.path("root/dev")).unwrap();
    let spec = Spec::new(|w| {
        proc_mount(w);
        mount(w, "tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755");
        let dev = |w: &mut W, p: &str, maj: u64, min: u64, uid: u64| {
            w.record(
                spec::DEVICE,
                &[
                    Field::Bytes(p.as_bytes()),
                    Field::Bytes(b"c"),
                    Field::U64(maj),
                    Field::U64(min),
                    Field::U64(0o640),
                    Field::U64(uid),
                    Field::U64(7),
                ],
            )
        };
        dev(w, "/dev/null", 1, 3, 0);
        dev(w, "/dev/sub/mine", 1, 5, 1234);
        w.record(spec::SYMLINK, &[Field::Bytes(b"/proc/self/fd"), Field::Bytes(b"/dev/fd")]);
        w.record(spec::ROOT_READONLY, &[]);
    });
    let script = "stat -c '%t %T %a %u %g' /dev/null /dev/sub/mine; readlink /dev/fd; \
                  touch /newfile && echo WROTE; touch /dev/ok && echo dev-ok";
    let o = run_spec(&t, &spec, &[], "", script);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "1 3 640 0 7\n1 5 640 1234 7\n/proc/self/fd\ndev-ok\n", "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!t.path("root/newfile").exists());
}

// ==== after the pivot ===================================================================

#[test]
fn masks_readonly_paths_sysctl_domainname() {
    let t = rootfs("mask");
    fs::create_dir_all(t.path("root/etc")).unwrap();
    fs::write(t.path("root/etc/secret"), "s3cret\n").unwrap();
    fs::create_dir_all(t.path("root/hidden")).unwrap();
    fs::write(t.path("root/hidden/file"), "x").unwrap();
    fs::create_dir_all(t.path("root/ro")).unwrap();
    let host_port_start = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let spec = Spec::new(|w| {
        proc_mount(w);
        w.record(spec::SYSCTL, &[Field::Bytes(b"net.ipv4.ip_unprivileged_port_start"), Field::Bytes(b"555")]);
        w.record(spec::DOMAINNAME, &[Field::Bytes(b"initspec.example")]);
        w.record(spec::READONLY, &[Field::Bytes(b"/ro")]);
        w.record(spec::READONLY, &[Field::Bytes(b"/proc/sys")]);
        w.record(spec::READONLY, &[Field::Bytes(b"/no/such/path")]);
        w.record(spec::MASK, &[Field::Bytes(b"/etc/secret")]);
        w.record(spec::MASK, &[Field::Bytes(b"/hidden")]);
        w.record(spec::MASK, &[Field::Bytes(b"/no/such/file")]);
    });
    let script = "cat /etc/secret; echo ---; ls /hidden; echo ---; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
                  cat /proc/sys/kernel/domainname; touch /ro/f && echo WROTE; echo 556 > /proc/sys/net/ipv4/ip_unprivileged_port_start && echo WROTE; true";
    // --dev: the container's own /dev/null, which MASK binds.
    let o = run_spec(&t, &spec, &["--dev"], "", script);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "---\n---\n555\ninitspec.example\n", "{o:?}");
    assert_eq!(o.stderr.matches("Read-only file system").count(), 2, "{o:?}");
    assert_eq!(fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(), host_port_start);
    assert_eq!(fs::read_to_string(t.path("root/etc/secret")).unwrap(), "s3cret\n");
}

// ==== bad streams =====================================================================================

#[test]
fn malformed_streams_are_refused_before_any_step() {
    let t = rootfs("bad");
    let mut truncated = Spec::new(|w| w.record(spec::CWD, &[Field::Bytes(b"/")])).0;
    truncated.truncate(truncated.len() - 3); // the END record cut
    let unknown = Spec::new(|w| w.record(99, &[]));
    let short = Spec::new(|w| w.record(spec::MOUNT, &[Field::Bytes(b"proc")]));
    for (spec, says) in [
        (Spec(b"not a spec stream".to_vec()), "--spec-fd: END: not a spec stream (bad magic)"),
        (Spec(truncated), "--spec-fd: END: truncated"),
        (unknown, "--spec-fd: an unknown record: unknown record tag"),
        (short, "--spec-fd: MOUNT: missing field"),
        (Spec(Vec::new()), "mmap(--spec-fd): EINVAL: invalid argument; an empty spec stream"),
    ] {
        let o = run_spec(&t, &spec, &[], "", "echo RAN > /ran");
        assert_eq!(o.code, Some(125), "{o:?}");
        assert!(o.stderr.starts_with(&format!("init: {says}")), "{says}: {o:?}");
        assert!(!t.path("root/ran").exists() && !t.path("root/proc").exists(), "a step ran: {o:?}");
    }
}

// ==== propagation, no pivot, detached mounts, cgroups ======================================

/// The optional fields (shared:N, master:N) of the mountinfo line of `point`.
fn tags(mountinfo: &str, point: &str) -> Vec<String> {
    let l = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("{point}: {mountinfo}"));
    l.split(" - ").next().unwrap().split(' ').skip(6).map(|s| s.split(':').next().unwrap().to_string()).collect()
}

#[test]
fn root_and_mount_propagation() {
    let t = rootfs("prop");
    let prop = |root: Option<u64>| {
        Spec::new(move |w| {
            if let Some(p) = root {
                w.record(spec::ROOT_PROPAGATION, &[Field::U64(p)]);
            }
            proc_mount(w);
            w.record(
                spec::MOUNT,
                &[
                    Field::Bytes(b"tmpfs"),
                    Field::Bytes(b"/shared"),
                    Field::Bytes(b"tmpfs"),
                    Field::U64(0),
                    Field::Bytes(b"size=8k"),
                    Field::U64(MS_SHARED),
                    Field::U64(NONE),
                ],
            );
        })
    };
    // "/" of init's namespace is a peer of the (shared) "/" of the outer
    // unshare's namespace, as on a systemd host: init must set "/" before
    // anything is mounted, and MS_SLAVE then makes it a slave of that peer.
    for (root, want) in
        [(None, vec![]), (Some(MS_SLAVE | MS_REC), vec!["master"]), (Some(MS_SHARED | MS_REC), vec!["shared"])]
    {
        let inner = ["unshare", "-m", "--propagation", "unchanged", "--"];
        let (c, _fd) =
            command_in(&["--propagation", "shared"], &inner, &t, &prop(root), &[], "", "cat /proc/self/mountinfo");
        let o = run(c);
        assert_eq!(o.code, Some(0), "{root:?}: {o:?}");
        assert_eq!(tags(&o.stdout, "/"), want, "{root:?}: {o:?}");
        assert_eq!(tags(&o.stdout, "/shared"), ["shared"], "{root:?}: {o:?}");
    }
}

#[test]
fn no_pivot_moves_the_root_and_chroots() {
    let t = rootfs("nopivot");
    let spec = Spec::new(|w| {
        proc_mount(w);
        w.record(spec::NO_PIVOT, &[]);
    });
    let (mut c, _fd) = command(&t, &spec, &[], "", "ls /");
    c.env("RUST_LOG", "debug");
    let o = run(c);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "bin\nproc\n", "{o:?}");
    assert!(o.stderr.contains("no pivot: mount(., /, MS_MOVE) + chroot(.)"), "{o:?}");
    assert!(!o.stderr.contains("pivot_root("), "{o:?}");
}

#[test]
fn a_detached_mount_from_an_fd_is_attached_read_only() {
    let t = rootfs("srcfd");
    fs::create_dir_all(t.path("data")).unwrap();
    fs::write(t.path("data/hello"), "detached\n").unwrap();
    // open_tree(OPEN_TREE_CLONE): a copy of the bind, attached nowhere (as the
    // host makes the idmapped ones).
    let path = std::ffi::CString::new(t.s("data")).unwrap();
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), 1 | libc::O_CLOEXEC) };
    assert!(tree >= 0, "open_tree: {}", io::Error::last_os_error());
    let tree = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(tree as i32) };
    let spec = Spec::new(|w| {
        proc_mount(w);
        w.record(
            spec::MOUNT,
            &[
                Field::Bytes(b""),
                Field::Bytes(b"/attached"),
                Field::Bytes(b""),
                Field::U64(MS_RDONLY | MS_NOSUID),
                Field::Bytes(b""),
                Field::U64(NONE),
                Field::U64(12),
            ],
        );
    });
    let (mut c, _fd) = command(
        &t,
        &spec,
        &[],
        "",
        "cat /attached/hello; touch /attached/x && echo WROTE; grep ' /attached ' /proc/self/mountinfo",
    );
    let _parked = give_fd(&mut c, &tree, 12);
    let o = run(c);
    assert_eq!(o.code, Some(0), "{o:?}");
    let (hello, line) = o.stdout.split_once('\n').unwrap();
    assert_eq!(hello, "detached", "{o:?}");
    assert!(line.contains(" /attached ro,nosuid"), "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!t.path("data/x").exists());
}

#[test]
fn cgroup_v1_hierarchies_read_only_in_a_cgroup_namespace() {
    let t = rootfs("cgroup");
    let spec = Spec::new(|w| {
        proc_mount(w);
        mount(w, "cgroup", "/sys/fs/cgroup", "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "");
    });
    // A cgroup namespace of its own (-C): each hierarchy's root is init's cgroup.
    let (c, _fd) = command_in(
        &["-C", "--propagation", "private"],
        &[],
        &t,
        &spec,
        &[],
        "",
        "ls /sys/fs/cgroup; echo ---; cat /sys/fs/cgroup/pids/cgroup.procs; mkdir /sys/fs/cgroup/pids/x && echo MADE; \
         touch /sys/fs/cgroup/y && echo MADE; echo ---; grep -c ' /sys/fs/cgroup/.* ro,' /proc/self/mountinfo",
    );
    let o = run(c);
    assert_eq!(o.code, Some(0), "{o:?}");
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    let host: Vec<String> = fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(3, ':').collect();
            (f[0] != "0" && !f[1].is_empty()).then(|| f[1].trim_start_matches("name=").to_string())
        })
        .collect();
    for h in &host {
        assert!(parts[0].lines().any(|l| l == h), "{h} missing: {o:?}");
    }
    // Only the container's own processes: PID 1 (init's exec'd sh) and cat.
    assert_eq!(parts[1].lines().count(), 2, "{o:?}");
    assert_eq!(o.stderr.matches("Read-only file system").count(), 2, "{o:?}");
    assert_eq!(parts[2].trim().parse::<usize>().unwrap(), host.len(), "{o:?}");
}

#[test]
fn devices_in_a_user_namespace_are_the_hosts_nodes_bound() {
    let t = rootfs("userns");
    let spec = Spec::new(|w| {
        proc_mount(w);
        mount(w, "tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755");
        w.record(
            spec::DEVICE,
            &[
                Field::Bytes(b"/dev/null"),
                Field::U64(b'c' as u64),
                Field::U64(1),
                Field::U64(3),
                Field::U64(0o666),
                Field::U64(NONE),
                Field::U64(NONE),
            ],
        );
    });
    // uid 0 mapped to the host's root only: no mknod there (no --userns given:
    // init learns it from the EPERM).
    let script =
        "stat -c '%t %T' /dev/null; echo gone > /dev/null && echo written; grep -c ' /dev/null ' /proc/self/mountinfo";
    let (c, _fd) = command_in(&["-U", "--map-root-user", "--propagation", "private"], &[], &t, &spec, &[], "", script);
    let o = run(c);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "1 3\nwritten\n1\n", "{o:?}");
}

// ==== size ===========================================================================

/// init stays small (the card: tens of KB; README's table): at most INIT_MAX
/// bytes, with no unwind tables (init/build.rs drops .eh_frame: panic=abort,
/// nothing unwinds). 91,200 bytes with the hooks (init/src/hooks.rs), 93,264
/// with PIVOT_SYNC (init/src/pivotsync.rs), 95,760 with cgroup2 mounts
/// (init/src/cgroup2.rs) and the rootfs parent's propagation (init/src/rootparent.rs).
#[test]
fn init_stays_under_its_size_bound_without_unwind_tables() {
    const INIT_MAX: u64 = 98_000;
    let init = lab_tests::bin("init");
    let size = fs::metadata(&init).unwrap().len();
    assert!(size <= INIT_MAX, "{} is {size} bytes, over {INIT_MAX}: where did they go? (size -A)", init.display());
    let o = std::process::Command::new("readelf").arg("-SW").arg(&init).output().unwrap();
    let sections = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && sections.contains(".text"), "readelf -SW: {sections}");
    assert!(!sections.contains(".eh_frame"), "init has unwind tables again:\n{sections}");
}
