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

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use dropin::{busybox_layer, collect, init, lossy, run, start, Outcome};
use init::spec::{self, Field, Writer, NONE};
use lab_tests::{wait_for, TempDir};
use nix::fcntl::OFlag;

const SPEC_FD: i32 = 10;

const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_BIND: u64 = 4096;
const MS_REC: u64 = 16384;

/// A spec stream being written.
struct Spec(Vec<u8>);

impl Spec {
    fn new(f: impl FnOnce(&mut Writer<&mut dyn FnMut(&[u8])>)) -> Spec {
        let mut buf = Vec::new();
        {
            let mut out = |b: &[u8]| buf.extend_from_slice(b);
            let mut w = Writer::new(&mut out as &mut dyn FnMut(&[u8]));
            f(&mut w);
            w.end();
        }
        Spec(buf)
    }
}

fn mount(w: &mut Writer<&mut dyn FnMut(&[u8])>, src: &str, target: &str, fstype: &str, flags: u64, data: &str) {
    w.record(
        spec::MOUNT,
        &[
            Field::Bytes(src.as_bytes()),
            Field::Bytes(target.as_bytes()),
            Field::Bytes(fstype.as_bytes()),
            Field::U64(flags),
            Field::Bytes(data.as_bytes()),
            Field::U64(NONE),
            Field::U64(NONE),
        ],
    );
}

fn proc_mount(w: &mut Writer<&mut dyn FnMut(&[u8])>) {
    mount(w, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
}

/// A rootfs of busybox in a fresh temp dir (t/root), world-enterable.
fn rootfs(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    busybox_layer(&t.path("root"));
    fs::set_permissions(t.path("root"), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// The command: `unshare ... sh -c PREP; exec init --rootfs t/root --spec-fd 10 ARGS --exec -- /bin/sh -c SCRIPT`
/// with the spec on fd 10 (only in that process: a CLOEXEC memfd dup'ed there).
fn command(t: &TempDir, spec: &Spec, args: &[&str], prep: &str, script: &str) -> (Command, OwnedFd) {
    let fd = host_setup::memfd::sealed_memfd(c"initspec-test", &spec.0).unwrap();
    let raw = fd.as_raw_fd();
    let mut c = Command::new("unshare");
    c.args(["-m", "-u", "-i", "-n", "-f", "-p", "--kill-child", "--propagation", "private", "--"]);
    c.args(["/bin/sh", "-c", &format!("{prep}\nexec \"$@\""), "sh"]);
    c.arg(init()).args(["--rootfs", &t.s("root"), "--spec-fd", &SPEC_FD.to_string()]);
    c.args(args).args(["--exec", "--", "/bin/sh", "-c", script]);
    c.env_remove("RUST_LOG");
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, SPEC_FD) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    (c, fd)
}

fn run_spec(t: &TempDir, spec: &Spec, args: &[&str], prep: &str, script: &str) -> Outcome {
    let (c, _fd) = command(t, spec, args, prep, script);
    run(c)
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {text}")).trim()
}

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
        mount(w, "tmpfs", "/x", "tmpfs", 0, "size=64k");
        // A file as the source: the mount point is made as an empty file.
        mount(w, &t.s("data/hello"), "/etc/hello", "", MS_BIND, "");
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
        let dev = |w: &mut Writer<&mut dyn FnMut(&[u8])>, p: &str, maj: u64, min: u64, uid: u64| {
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

// ==== the process ==========================================================================

#[test]
fn rlimits_oom_user_caps_nnp_cwd() {
    let t = rootfs("user");
    fs::create_dir_all(t.path("root/work")).unwrap();
    let (chown, kill, net_bind, net_raw) = (0u32, 5u32, 10u32, 13u32);
    let bit = |c: u32| 1u64 << c;
    let spec = Spec::new(|w| {
        proc_mount(w);
        w.record(spec::RLIMIT, &[Field::U64(7), Field::U64(123), Field::U64(456)]); // NOFILE
        w.record(spec::RLIMIT, &[Field::U64(4), Field::U64(0), Field::U64(NONE)]); // CORE 0 unlimited
        w.record(spec::OOM_SCORE_ADJ, &[Field::U64(321)]);
        w.record(spec::USER, &[Field::U64(1000), Field::U64(1001), Field::U64(0o027), Field::U64(5), Field::U64(60)]);
        w.record(
            spec::CAPS,
            &[
                Field::U64(bit(chown) | bit(kill) | bit(net_bind) | bit(net_raw)),
                Field::U64(bit(kill) | bit(net_bind)),
                Field::U64(bit(kill) | bit(net_bind)),
                Field::U64(bit(net_bind)),
                Field::U64(bit(net_bind)),
            ],
        );
        w.record(spec::NO_NEW_PRIVS, &[]);
        w.record(spec::CWD, &[Field::Bytes(b"/work")]);
    });
    let script = "cat /proc/self/status; echo ---; cat /proc/self/limits; echo ---; cat /proc/self/oom_score_adj; pwd";
    let o = run_spec(&t, &spec, &[], "", script);
    assert_eq!(o.code, Some(0), "{o:?}");
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    let st = parts[0];
    assert_eq!(line(st, "Uid:").split_whitespace().collect::<Vec<_>>(), ["1000"; 4], "{st}");
    assert_eq!(line(st, "Gid:").split_whitespace().collect::<Vec<_>>(), ["1001"; 4], "{st}");
    assert_eq!(line(st, "Groups:"), "5 60", "{st}");
    assert_eq!(line(st, "Umask:"), "0027", "{st}");
    assert_eq!(line(st, "NoNewPrivs:"), "1", "{st}");
    let hex = |c: u64| format!("{c:016x}");
    assert_eq!(line(st, "CapBnd:"), hex(bit(chown) | bit(kill) | bit(net_bind) | bit(net_raw)), "{st}");
    // uid 1000 after execve: permitted and effective are the ambient set (no file caps).
    assert_eq!(line(st, "CapAmb:"), hex(bit(net_bind)), "{st}");
    assert_eq!(line(st, "CapInh:"), hex(bit(net_bind)), "{st}");
    assert_eq!(line(st, "CapPrm:"), hex(bit(net_bind)), "{st}");
    assert_eq!(line(st, "CapEff:"), hex(bit(net_bind)), "{st}");
    let limits = parts[1];
    let nofile: Vec<&str> = line(limits, "Max open files").split_whitespace().collect();
    assert_eq!(&nofile[..2], ["123", "456"], "{limits}");
    let core: Vec<&str> = line(limits, "Max core file size").split_whitespace().collect();
    assert_eq!(&core[..2], ["0", "unlimited"], "{limits}");
    assert_eq!(parts[2], "321\n/work\n", "{o:?}");
}

#[test]
fn a_missing_cwd_fails_the_start() {
    let t = rootfs("cwd");
    let spec = Spec::new(|w| w.record(spec::CWD, &[Field::Bytes(b"/no/such/dir")]));
    let o = run_spec(&t, &spec, &[], "", "echo RAN");
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stderr, "init: chdir(/no/such/dir): ENOENT: no such file or directory; the spec's cwd\n", "{o:?}");
    assert_eq!(o.stdout, "");
}

// ==== start ===================================================================================

#[test]
fn the_process_waits_for_start_then_hooks_run_before_it() {
    let t = rootfs("fifo");
    let fifo = t.path("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let spec = Spec::new(|w| {
        proc_mount(w);
        w.record(spec::START_FIFO, &[Field::Bytes(fifo.to_str().unwrap().as_bytes())]);
        w.record(
            spec::HOOK,
            &[
                Field::Bytes(b"/bin/sh"),
                Field::U64(10),
                Field::U64(3),
                Field::Bytes(b"sh"),
                Field::Bytes(b"-c"),
                Field::Bytes(b"echo \"hook $WHO\" > /hooked"),
                Field::Bytes(b"WHO=startContainer"),
            ],
        );
    });
    let (mut c, _fd) = command(&t, &spec, &["--ready-fd", "11"], "", "cat /hooked > /ran");
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let wraw = w.as_raw_fd();
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(wraw, 11) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut running = start(&mut c);
    drop(w);
    let (buf, _eof) = collect(File::from(r));
    // `create` returns on this line: init is set up and blocked on the fifo.
    wait_for("ok on the ready fd", || lossy(&buf).contains('\n').then_some(()));
    assert_eq!(lossy(&buf), "ok\n");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.path("root/ran").exists() && !t.path("root/hooked").exists(), "ran before start");
    // `start`: open for reading (init is the writer), take its byte.
    let mut got = Vec::new();
    File::open(&fifo).unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got, b"0");
    let o = running.wait();
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(fs::read_to_string(t.path("root/ran")).unwrap(), "hook startContainer\n");
}

#[test]
fn a_failing_or_hanging_hook_fails_the_start() {
    let t = rootfs("hook");
    let hook = |script: &'static [u8], timeout: u64| {
        Spec::new(move |w| {
            w.record(
                spec::HOOK,
                &[
                    Field::Bytes(b"/bin/sh"),
                    Field::U64(timeout),
                    Field::U64(3),
                    Field::Bytes(b"sh"),
                    Field::Bytes(b"-c"),
                    Field::Bytes(script),
                ],
            )
        })
    };
    let o = run_spec(&t, &hook(b"exit 3", 0), &[], "", "echo RAN");
    assert_eq!(o.code, Some(125), "{o:?}");
    assert_eq!(o.stderr, "init: startContainer hook /bin/sh failed (exit status not 0)\n", "{o:?}");
    assert_eq!(o.stdout, "");
    let o = run_spec(&t, &hook(b"sleep 100", 1), &[], "", "echo RAN");
    assert_eq!(o.code, Some(125), "{o:?}");
    assert!(o.stderr.contains("startContainer hook /bin/sh: ETIMEDOUT"), "{o:?}");
    assert_eq!(o.stdout, "");
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
