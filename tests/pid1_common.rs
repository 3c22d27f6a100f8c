//! What pid1.rs and pid1_setup.rs share: init as PID 1 of a new pid namespace,
//! the ready pipe as host-setup reads it, the mount readers. Each includes it with
//! `mod pid1_common;` (after `mod dropin;`); neither uses all of it.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lab_tests::wait_for;
use nix::fcntl::OFlag;

use crate::dropin::{collect, init, lossy, start, Running};

/// `init ARGS` as PID 1 of a new pid namespace with its own /proc.
pub fn in_pidns(args: &[&str]) -> Command {
    let mut c = unshare_pidns();
    c.args(args);
    c
}

/// `unshare ... init`, the arguments to be added.
pub fn unshare_pidns() -> Command {
    let mut c = Command::new("unshare");
    c.args(["--fork", "--pid", "--mount-proc", "--kill-child"]).arg(init());
    c.env_remove("RUST_LOG");
    c
}

// ---- the ready pipe ---------------------------------------------------------------

/// A pipe whose write end only `cmd`'s process inherits (CLOEXEC everywhere
/// else, so concurrent tests' children cannot hold it open). Returns the read
/// end and the write end's number, to pass as --ready-fd.
pub fn ready_pipe(cmd: &mut Command) -> (OwnedFd, OwnedFd) {
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
pub struct Ready {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
    /// "pipe:[INODE]": what /proc/PID/fd/N shows for either end of this pipe.
    link: PathBuf,
}

impl Ready {
    /// Everything up to EOF, which comes once no process holds the write end.
    pub fn to_eof(&self) -> String {
        wait_for("EOF on the ready fd (leaked, or init hangs)", || self.eof.load(Ordering::SeqCst).then_some(()));
        lossy(&self.buf)
    }

    /// The first line (or what came before EOF). Under `unshare --fork`, unshare
    /// itself keeps a copy of the write end, so EOF only comes when it exits.
    pub fn first_line(&self) -> String {
        let t = wait_for("a line on the ready fd", || {
            let t = lossy(&self.buf);
            (t.contains('\n') || self.eof.load(Ordering::SeqCst)).then_some(t)
        });
        t.split_inclusive('\n').next().unwrap_or("").to_string()
    }

    /// Whether process `pid` has an fd open on this pipe.
    pub fn held_by(&self, pid: i32) -> bool {
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok()).any(|l| l == self.link)
    }
}

/// Starts `base ARGS` where "READY" in `args` becomes the write end's fd number.
pub fn start_with_ready(base: &mut Command, args: &[&str]) -> (Running, Ready) {
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
pub fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).map(String::from).collect()
}

/// Whether a host mount has its root or its mount point at or under `dir` (whole
/// path components: /tmp/x-1 does not mention /tmp/x-14).
pub fn host_mounts_mention(dir: &Path) -> bool {
    let d = dir.to_str().unwrap();
    let under = |f: &str| f == d || f.strip_prefix(d).is_some_and(|rest| rest.starts_with('/'));
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').skip(3).take(2).any(under))
}
