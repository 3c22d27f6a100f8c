//! "It runs no helper program": every command of host-setup traced with
//! `strace -f -e trace=execve,execveat`. The only programs ever executed are
//! host-setup itself, init (from its read-only image, by execveat; and on the host,
//! the supervisor turned `init --wait-child`) and the container's own command.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use lab_tests::{bin, stdout, wait_for, Lab, TempDir};

/// A successful execve/execveat, as strace printed it.
#[derive(Debug)]
struct Exec(String);

impl Exec {
    fn is_host_setup(&self) -> bool {
        self.0.starts_with(&format!("execve(\"{}\", ", bin("host-setup").display()))
    }
    /// execveat of init's image (strace -y names the fd's file: `/init` in the
    /// overlay attached nowhere, init_image.rs), with an empty path.
    fn is_init_from_image(&self, flag: &str) -> bool {
        self.0.starts_with("execveat(")
            && self.0.contains("</init>")
            && self.0.contains(", \"\", [\"")
            && self.0.contains("AT_EMPTY_PATH")
            && self.0.contains(&format!("\"{flag}\""))
    }
    /// The supervisor turning into `init --wait-child` (on the host, from init's file).
    fn is_waiter(&self) -> bool {
        let init = std::fs::canonicalize(bin("init")).unwrap();
        self.is(&init.display().to_string()) && self.0.contains("\"--wait-child\"")
    }
    fn is(&self, path: &str) -> bool {
        self.0.starts_with(&format!("execve(\"{path}\", "))
    }
}

/// `strace -ff -y -e trace=execve,execveat host-setup ARGS` in `lab`: one trace file
/// per process (so no line is split between two), read back once strace has ended.
struct Traced {
    child: std::process::Child,
    dir: TempDir,
}

impl Traced {
    fn start(lab: &Lab, args: &[&str]) -> Traced {
        let dir = TempDir::new("strace");
        let mut c = Command::new("strace");
        c.args(["-f", "-ff", "-qq", "-y", "-s", "256", "-e", "trace=execve,execveat", "-e", "signal=none", "-o"])
            .arg(dir.path("t"))
            .arg(bin("host-setup"))
            .args(args)
            .env("HOST_SETUP_STATE_DIR", &lab.state_dir)
            .env("HOST_SETUP_CGROUP_PARENT", &lab.cgroup_parent)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().expect("strace (apt-get install strace)");
        Traced { child, dir }
    }

    /// Wait for strace to end (it ends when every traced process has); the
    /// successful execs of every process.
    fn finish(&mut self) -> (ExitStatus, Vec<Exec>) {
        let status = wait_for("strace to end", || self.child.try_wait().unwrap());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir.0).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        let mut execs = vec![];
        for f in files {
            let log = std::fs::read_to_string(&f).unwrap();
            for l in log.lines() {
                if (l.starts_with("execve(") || l.starts_with("execveat(")) && l.ends_with(" = 0") {
                    execs.push(Exec(l.to_string()));
                }
            }
        }
        (status, execs)
    }
}

impl Drop for Traced {
    /// If a test failed before strace ended: SIGKILL to our own strace child, which
    /// detaches its tracees and leaves them running (strace ignores SIGTERM).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Exactly: host-setup, then (if `init` is Some(its flag)) init from its image,
/// then (if `command` is Some) the container's command; in any order, once each.
fn assert_only(what: &str, execs: &[Exec], init: Option<&str>, command: Option<&str>) {
    let want = 1 + init.is_some() as usize + command.is_some() as usize;
    assert_eq!(execs.len(), want, "{what}: only host-setup, init and the command may run:\n{execs:#?}");
    assert_eq!(execs.iter().filter(|e| e.is_host_setup()).count(), 1, "{what}: host-setup itself\n{execs:#?}");
    if let Some(flag) = init {
        let n = execs.iter().filter(|e| e.is_init_from_image(flag)).count();
        assert_eq!(n, 1, "{what}: init from its read-only image, with {flag}\n{execs:#?}");
    }
    if let Some(cmd) = command {
        assert_eq!(execs.iter().filter(|e| e.is(cmd)).count(), 1, "{what}: the command {cmd}\n{execs:#?}");
    }
}

#[test]
fn no_helper_program_runs_in_up_exec_run_status_or_down() {
    let lab = Lab::new();
    let (a, r) = (lab.name("s"), lab.name("r"));

    // up: strace follows the supervisor, which stays behind as init's parent, so
    // strace ends only when the container does: take it down (untraced) first.
    let mut up =
        Traced::start(&lab, &["up", &a, "--", "/usr/bin/stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0"]);
    wait_for("the container to run under strace", || {
        let init = lab.journal_pid(&a, "init")?;
        (!lab_tests::descendants_named(init, "stress").is_empty()).then_some(())
    });
    let o = lab.ok(&["exec", &a, "--", "/bin/hostname"]); // untraced: the container works
    assert_eq!(stdout(&o).trim(), a.to_uppercase());

    // exec, while the container is up.
    let (status, execs) = Traced::start(&lab, &["exec", &a, "--", "/bin/hostname"]).finish();
    assert!(status.success(), "strace host-setup exec: {status:?}");
    assert_only("exec", &execs, Some("--exec"), Some("/bin/hostname"));

    // status.
    let (status, execs) = Traced::start(&lab, &["status", &a]).finish();
    assert!(status.success(), "strace host-setup status: {status:?}");
    assert_only("status", &execs, None, None);

    // down ends the container, and with it the traced up.
    let (status, execs) = Traced::start(&lab, &["down", &a]).finish();
    assert!(status.success(), "strace host-setup down: {status:?}");
    assert_only("down", &execs, None, None);
    let (status, mut execs) = up.finish();
    assert!(status.success(), "strace host-setup up: {status:?}");
    // Once init is ready, the supervisor becomes `init --wait-child` (supervisor.rs):
    // that one exec more, and only that.
    let waiters = execs.iter().filter(|e| e.is_waiter()).count();
    assert_eq!(waiters, 1, "up: the supervisor execs init --wait-child once\n{execs:#?}");
    execs.retain(|e| !e.is_waiter());
    assert_only("up", &execs, Some("--ready-fd"), Some("/usr/bin/stress"));

    // run: all of it in the foreground.
    let (status, execs) = Traced::start(&lab, &["run", &r, "--", "/bin/hostname"]).finish();
    assert!(status.success(), "strace host-setup run: {status:?}");
    assert_only("run", &execs, Some("--ready-fd"), Some("/bin/hostname"));
    assert_eq!(lab.leftovers(&[&a, &r]), Vec::<String>::new());
}
