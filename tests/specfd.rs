//! What tests/initspec.rs and tests/initspec_process.rs share: a spec stream
//! written with init's own `Writer`, a busybox rootfs, and init run as PID 1 of
//! new namespaces (util-linux unshare) with the spec on fd 10.
#![allow(dead_code)]

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::dropin::{busybox_layer, init, run, Outcome};
use init::spec::{self, Field, Writer, NONE};
use lab_tests::child_fd::give_fd;
use lab_tests::TempDir;

pub const SPEC_FD: i32 = 10;

pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;
pub const MS_BIND: u64 = 4096;
pub const MS_REC: u64 = 16384;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;

/// init's encoder writing into a Vec.
pub type W<'a> = Writer<&'a mut dyn FnMut(&[u8])>;

/// A spec stream being written.
pub struct Spec(pub Vec<u8>);

impl Spec {
    pub fn new(f: impl FnOnce(&mut W)) -> Spec {
        let mut buf = Vec::new();
        {
            let mut out = |b: &[u8]| buf.extend_from_slice(b);
            let mut w: W = Writer::new(&mut out as &mut dyn FnMut(&[u8]));
            f(&mut w);
            w.end();
        }
        Spec(buf)
    }
}

pub fn mount(w: &mut W, src: &str, target: &str, fstype: &str, flags: u64, data: &str) {
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

pub fn proc_mount(w: &mut W) {
    mount(w, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
}

/// A rootfs of busybox in a fresh temp dir (t/root), world-enterable.
pub fn rootfs(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    busybox_layer(&t.path("root"));
    fs::set_permissions(t.path("root"), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// The command: `unshare ... sh -c PREP; exec init --rootfs t/root --spec-fd 10 ARGS --exec -- /bin/sh -c SCRIPT`
/// with the spec on fd 10 (only in that process: see lab_tests::child_fd). Keep the
/// returned fd until the command is spawned.
pub fn command(t: &TempDir, spec: &Spec, args: &[&str], prep: &str, script: &str) -> (Command, OwnedFd) {
    command_in(&["--propagation", "private"], &[], t, spec, args, prep, script)
}

/// As `command`, with `outer` options for the unshare and `inner` words before the shell.
pub fn command_in(
    outer: &[&str],
    inner: &[&str],
    t: &TempDir,
    spec: &Spec,
    args: &[&str],
    prep: &str,
    script: &str,
) -> (Command, OwnedFd) {
    let fd = host_setup::memfd::sealed_memfd(c"initspec-test", &spec.0).unwrap();
    let mut c = Command::new("unshare");
    c.args(["-m", "-u", "-i", "-n", "-f", "-p", "--kill-child"]).args(outer).arg("--").args(inner);
    c.args(["/bin/sh", "-c", &format!("{prep}\nexec \"$@\""), "sh"]);
    c.arg(init()).args(["--rootfs", &t.s("root"), "--spec-fd", &SPEC_FD.to_string()]);
    c.args(args).args(["--exec", "--", "/bin/sh", "-c", script]);
    c.env_remove("RUST_LOG");
    let parked = give_fd(&mut c, &fd, SPEC_FD);
    (c, parked)
}

pub fn run_spec(t: &TempDir, spec: &Spec, args: &[&str], prep: &str, script: &str) -> Outcome {
    let (c, _fd) = command(t, spec, args, prep, script);
    run(c)
}

pub fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {text}")).trim()
}
