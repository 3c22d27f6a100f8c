//! `init --spec-fd N`, the process phase and the start: rlimits, oom_score_adj,
//! user, the capability sets, no_new_privs, cwd (read back from
//! /proc/self/status and limits), the wait for `start` on the exec fifo and the
//! startContainer hooks. As tests/initspec.rs (shared helpers: specfd.rs).

mod dropin;
mod specfd;

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use dropin::{collect, lossy, start};
use init::spec::{self, Field, NONE};
use lab_tests::child_fd::give_fd;
use lab_tests::wait_for;
use nix::fcntl::OFlag;
use specfd::*;

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
    let parked = give_fd(&mut c, w, 11);
    let mut running = start(&mut c);
    drop(parked);
    let (buf, _eof) = collect(File::from(r));
    // `create` returns on this line: init is set up and blocked on the fifo.
    wait_for("ok on the ready fd", || lossy(&buf).contains('\n').then_some(()));
    assert_eq!(lossy(&buf), "ok\n");
    // The block itself: init (unshare's child) in openat(2) for writing, parked in
    // the kernel's fifo_open until a reader comes (wchan wait_for_partner), and
    // holding the fifo (its O_PATH fd) — the open that only `start` ends.
    let init = wait_for("unshare's child, init", || {
        let kids = fs::read_to_string(format!("/proc/{0}/task/{0}/children", running.pid())).ok()?;
        kids.split_whitespace().next()?.parse::<i32>().ok()
    });
    wait_for("init blocked opening the exec fifo", || {
        let wchan = fs::read_to_string(format!("/proc/{init}/wchan")).ok()?;
        let call = fs::read_to_string(format!("/proc/{init}/syscall")).ok()?;
        let w: Vec<&str> = call.split_whitespace().collect();
        let flags = u64::from_str_radix(w.get(3)?.trim_start_matches("0x"), 16).ok()?;
        // openat = 257 (x86_64); flags' access mode O_WRONLY (1).
        (wchan == "wait_for_partner" && w[0] == "257" && flags & 3 == 1).then_some(())
    });
    // By device and inode: after the pivot its path, seen from here, is another.
    let id = |m: fs::Metadata| (m.dev(), m.ino());
    let want = id(fs::metadata(&fifo).unwrap());
    let holds_fifo = fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .flatten()
        .any(|e| fs::metadata(e.path()).map(id).ok() == Some(want));
    assert!(holds_fifo, "init has no fd of {}", fifo.display());
    std::thread::sleep(Duration::from_millis(50)); // a complement: nothing has run meanwhile
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
    assert_eq!(o.stderr, "init: startContainer hook /bin/sh: exit status 3\n", "{o:?}");
    assert_eq!(o.stdout, "");
    let o = run_spec(&t, &hook(b"sleep 100", 1), &[], "", "echo RAN");
    assert_eq!(o.code, Some(125), "{o:?}");
    assert!(o.stderr.contains("startContainer hook /bin/sh: killed after its timeout of 1 s"), "{o:?}");
    assert_eq!(o.stdout, "");
}
