//! Running a program inside a container for a check, and ending it again.
//!
//! Each program goes in through `host-setup exec` (this executable, same state
//! dir), so it gets exactly what a user's `exec` gets: the container's namespaces,
//! root, cgroups, capabilities. It is a child process of ours, not an in-process
//! call: entering a pid namespace (setns CLONE_NEWPID) cannot be undone, and a
//! second container's would be refused.
//!
//! Ending: the program and everything it started are our child's descendants,
//! found from the host through /proc/PID/task/TID/children and sent SIGKILL by
//! the pid just read (checked against its start time).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Runner;
use crate::state::Proc;

/// A program started inside a container, still running.
pub struct Inside {
    child: Child,
    /// Our child's status once it has been reaped: from then on its pid may name
    /// another process, so its descendants are no longer looked up.
    status: Option<std::process::ExitStatus>,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

/// A program's end: its exit code (None if it was ended by us) and its output.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The output in one line, for a figure.
    pub fn said(&self) -> String {
        let all = format!("{} {}", self.stdout.trim(), self.stderr.trim());
        let one: Vec<&str> = all.split_whitespace().collect();
        let s = one.join(" ");
        if s.len() > 160 {
            format!("{}...", &s[..s.char_indices().take_while(|(i, _)| *i < 160).last().map_or(0, |(i, _)| i)])
        } else {
            s
        }
    }
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = vec![];
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl Runner {
    /// Start `argv` inside container `name`.
    pub fn spawn(&self, name: &str, argv: &[&str]) -> std::io::Result<Inside> {
        let mut c = Command::new(&self.exe);
        c.arg("--state-dir").arg(&self.paths.state_dir).args(["exec", name, "--"]).args(argv);
        c.env_remove("RUST_LOG").env_remove("HOST_SETUP_FAULT");
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn()?;
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        Ok(Inside { child, status: None, out, err })
    }

    /// Run `argv` inside `name` to its end, or end it after `timeout`.
    pub fn run(&self, name: &str, argv: &[&str], timeout: Duration) -> Ran {
        match self.spawn(name, argv) {
            Ok(mut p) => {
                let deadline = Instant::now() + timeout;
                while p.running() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let timed_out = p.running();
                let mut ran = p.end();
                if timed_out {
                    ran.stderr.push_str(&format!(" (ended after {} s)", timeout.as_secs()));
                }
                ran
            }
            Err(e) => Ran {
                code: None,
                stdout: String::new(),
                stderr: format!("spawn {} exec: {}", self.exe.display(), crate::error::io_text(&e)),
            },
        }
    }
}

impl Inside {
    /// Our child's pid (the `host-setup exec` process).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_none()
    }

    /// Everything below our child: the program inside and its own children
    /// (nothing once our child is reaped).
    pub fn descendants(&self) -> Vec<i32> {
        if self.status.is_some() {
            return vec![];
        }
        descendants(self.pid())
    }

    /// SIGKILL every descendant (the program keeps none of our signals: it is the
    /// `exec`'s grandchild), then wait for our child and collect the output.
    pub fn end(mut self) -> Ran {
        // Repeat: a process may fork while we kill its parent.
        for _ in 0..50 {
            let left = self.descendants();
            if left.is_empty() {
                break;
            }
            for pid in left {
                if let Ok(p) = Proc::of(pid) {
                    let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let code = match self.status {
            Some(st) => st.code(),
            None => self.child.wait().ok().and_then(|st| st.code()),
        };
        let text = |h: Option<JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        };
        Ran { code, stdout: text(self.out.take()), stderr: text(self.err.take()) }
    }
}

/// The descendants of `pid` (host pids), parents before children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{p}/task")).into_iter().flatten().flatten();
        for t in tasks {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()) {
                if !out.contains(&k) {
                    out.push(k);
                    todo.push(k);
                }
            }
        }
    }
    out
}

/// A field of /proc/PID/status (`VmRSS`, `CapEff`, ...), its first word.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.split_whitespace().next().unwrap_or("").to_string())
    })
}
