//! What the tests of init as a drop-in PID 1 (pid1.rs, pid1_restrict.rs, tini.rs)
//! share: running a command with its output collected, the /proc readers that find
//! init and its children from the host's side, the orphan-reaping check, a
//! busybox-static layer and test cgroups.
//! Each of those test files includes it with `mod dropin;`; none uses all of it.
#![allow(dead_code)]

use std::borrow::BorrowMut;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lab_tests::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a command may run. Generous: the machine is shared and slow; nothing
/// should ever take this long.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The init binary (and the check that the tests run as root).
pub fn init() -> PathBuf {
    lab_tests::require_root();
    lab_tests::bin("init")
}

/// `init ARGS` as a plain child of the test (not PID 1).
pub fn direct(args: &[&str]) -> Command {
    let mut c = Command::new(init());
    c.args(args).env_remove("RUST_LOG");
    c
}

// ---- processes and their output ---------------------------------------------------

/// Collects everything read from `r` until EOF (or an error, e.g. EIO on a pty
/// master); the flag is set at the end.
pub fn collect(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let eof = Arc::new(AtomicBool::new(false));
    let (b, e) = (buf.clone(), eof.clone());
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        e.store(true, Ordering::SeqCst);
    });
    (buf, eof)
}

/// What has been collected so far, as text.
pub fn lossy(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    #[allow(dead_code)] // shown in failure messages
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The text after the line "--- MARKER" up to the next "--- " marker line (or the end).
    pub fn section(&self, marker: &str) -> String {
        let start = self.stdout.find(&format!("--- {marker}\n")).unwrap_or_else(|| panic!("no {marker}: {self:?}"));
        let rest = &self.stdout[start + marker.len() + 5..];
        rest[..rest.find("--- ").unwrap_or(rest.len())].to_string()
    }
}

/// A started command with its stdout and stderr collected; it and its
/// descendants are SIGKILLed by pid (and it is reaped) on drop if the test did
/// not wait for it.
pub struct Running {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    eofs: [Arc<AtomicBool>; 2],
    done: bool,
}

pub fn start(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let (out, e1) = collect(child.stdout.take().unwrap());
    let (err, e2) = collect(child.stderr.take().unwrap());
    Running { child, out, err, eofs: [e1, e2], done: false }
}

/// Runs a command (owned or borrowed) to its end.
pub fn run(mut cmd: impl BorrowMut<Command>) -> Outcome {
    start(cmd.borrow_mut()).wait()
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stdout(&self) -> String {
        lossy(&self.out)
    }

    /// Waits until stderr satisfies `cond`.
    pub fn wait_stderr(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let s = lossy(&self.err);
            cond(&s).then_some(s)
        })
    }

    /// Waits until stdout satisfies `cond`.
    pub fn wait_stdout(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let s = self.stdout();
            cond(&s).then_some(s)
        })
    }

    /// Waits (at most TIMEOUT) for the end, then for all of its output.
    pub fn wait(&mut self) -> Outcome {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > TIMEOUT {
                self.kill_tree();
                self.done = true;
                panic!("timed out; stdout: {:?} stderr: {:?}", lossy(&self.out), lossy(&self.err));
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.done = true;
        // The pipes may be held a little longer by exiting grandchildren.
        let start = Instant::now();
        while !self.eofs.iter().all(|e| e.load(Ordering::SeqCst)) && start.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
        Outcome { code: status.code(), signal: status.signal(), stdout: lossy(&self.out), stderr: lossy(&self.err) }
    }

    /// SIGKILLs the process and every descendant, by pid: when init is not PID 1
    /// of its own namespace, its children would outlive it (under `unshare
    /// --kill-child` the namespace dies with unshare anyway). The list is taken
    /// first, while the parent links still lead to us.
    fn kill_tree(&mut self) {
        let mut tree = vec![self.pid()];
        let mut i = 0;
        while i < tree.len() {
            tree.extend(children_of(tree[i]));
            i += 1;
        }
        for &pid in &tree[1..] {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill(); // the pid is ours until we reap it
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            self.kill_tree();
        }
    }
}

// ---- /proc from the host's side ---------------------------------------------------

/// The children of `pid` (made by any of its threads).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
    let mut kids = vec![];
    for t in tasks.flatten() {
        let list = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        kids.extend(list.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
    }
    kids
}

pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// (state, ppid) of a process, from /proc/PID/stat.
pub fn stat(pid: i32) -> Option<(char, i32)> {
    stat_at(&format!("/proc/{pid}/stat"))
}

pub fn stat_at(path: &str) -> Option<(char, i32)> {
    let s = fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running, i.e. neither gone nor a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

/// Proves, with no sleep, that no fatal signal sent to `pid` before this call is
/// pending or being acted on: SIGSTOP, sent after it, stops the process only
/// once the earlier signals are dealt with (the kernel takes the lowest-numbered
/// pending signal first, SIGSTOP is 19, and a fatal signal marks the whole
/// process exiting, after which SIGSTOP is dropped: it never stops). From an
/// ancestor pid namespace SIGSTOP reaches even a namespace's PID 1. Then SIGCONT.
/// Returns whether the process is alive after all.
pub fn alive_after_stop_barrier(pid: i32) -> bool {
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let state = wait_for("SIGSTOP to stop it, or it to die", || match stat(pid) {
        Some(('T', _)) => Some('T'),
        None => Some('-'),
        Some((s @ ('Z' | 'X'), _)) => Some(s),
        _ => None,
    });
    if state != 'T' {
        return false;
    }
    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    wait_for("SIGCONT to continue it", || (stat(pid).map(|s| s.0) != Some('T')).then_some(()));
    alive(pid)
}

/// The start time of a process (field 22 of /proc/PID/stat, in clock ticks since
/// boot): with the pid, what tells this process from a later one given the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split(' ').nth(19)?.parse().ok()
}

/// A process the test started indirectly (e.g. a grandchild), SIGKILLed by pid on
/// drop if it is still the same process (same start time), never a pid reused since.
pub struct KillOnDrop(pub i32, Option<u64>);

impl KillOnDrop {
    pub fn new(pid: i32) -> KillOnDrop {
        KillOnDrop(pid, start_time(pid))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.1.is_some() && start_time(self.0) == self.1 {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

/// The host pid of init, the only child of `unshare`. The pid is the same from
/// unshare's fork on, through the exec of a wrapper shell (pid1_restrict's
/// containers set loopback up first), of init, and with --exec of CMD: this waits
/// until the child is past unshare and that shell.
pub fn init_pid_under(unshare: &Running) -> i32 {
    wait_for("init under unshare", || {
        children_of(unshare.pid()).into_iter().find(|&p| !matches!(comm(p).as_str(), "" | "unshare" | "sh"))
    })
}

/// Orphans three processes, reads each one's parent while all three are alive,
/// then lets them exit and waits until each is gone from /proc (only reaping
/// removes a zombie) and lists any zombie child of init ($PPID) left.
/// The orphans block reading a fifo until EOF; this shell holds its only writer
/// (fd 3) and closes it once the parents are read: no orphan can be gone (or
/// reaped) before its parent is read, however slow the machine (a TCG VM).
pub const ORPHANS: &str = r#"
d=$(mktemp -d) && mkfifo "$d/go" && exec 3<>"$d/go" 4<"$d/go" && rm -r "$d" || exit 99
pids=$(sh -c 'for i in 1 2 3; do cat <&4 >/dev/null 2>&1 3>&- 4<&- & echo $!; done')
echo "orphans: $(echo $pids)"
for p in $pids; do echo "parent of $p: $(awk '/^PPid/ {print $2}' /proc/$p/status)"; done
exec 3>&- 4<&-
for p in $pids; do
  i=0
  while [ -e /proc/$p ]; do
    i=$((i+1)); if [ $i -gt 400 ]; then echo "left: $(cat /proc/$p/stat)"; break; fi; sleep 0.05
  done
done
for s in /proc/[0-9]*/stat; do
  { read l <$s; } 2>/dev/null || continue # (it may be gone since the glob)
  set -- ${l##*) }
  [ "$1" = Z ] && [ "$2" = $PPID ] && echo "zombie: $l"
done
echo end
"#;

pub fn check_orphans_reaped(o: &Outcome, reaper: &str) {
    assert_eq!(o.code, Some(0), "{o:?}");
    let orphans = o.stdout.lines().find_map(|l| l.strip_prefix("orphans: ")).expect("orphans line");
    assert_eq!(orphans.split(' ').count(), 3, "{o:?}");
    let parents: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("parent of")).collect();
    assert_eq!(parents.len(), 3, "{o:?}");
    for l in parents {
        assert!(l.ends_with(&format!(": {reaper}")), "orphan not re-parented to init: {l}\n{o:?}");
    }
    assert!(!o.stdout.contains("left:") && !o.stdout.contains("zombie:"), "{o:?}");
    assert!(o.stdout.ends_with("end\n"), "{o:?}");
}

// ---- a tiny root filesystem -------------------------------------------------------

/// Whether an ELF64 image has a PT_INTERP program header (needs a dynamic loader).
fn has_interp(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| u32::from_le_bytes(elf[phoff + i * size..][..4].try_into().unwrap()) == 3)
}

/// A layer made of busybox-static: /bin/busybox and the applets the tests use,
/// nothing else.
pub fn busybox_layer(dir: &Path) {
    let bb = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is missing: apt-get install -y busybox-static");
    assert!(!has_interp(&fs::read(bb).unwrap()), "{bb} is dynamically linked: apt-get install -y busybox-static");
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy(bb, dir.join("bin/busybox")).unwrap();
    let applets = [
        "sh", "ls", "cat", "echo", "grep", "head", "wc", "tr", "stat", "find", "readlink", "sleep", "mount", "umount",
        "mknod", "mkdir", "hostname", "ip", "ping", "ps", "su", "id", "true",
    ];
    for a in applets {
        symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
}

// ---- cgroups ----------------------------------------------------------------------

/// A cgroup the test creates (and removes on drop), e.g.
/// /sys/fs/cgroup/pids/pid1-test-...
pub struct Cgroup {
    pub dir: PathBuf,
    /// The line /proc/PID/cgroup shows for a member.
    pub line: String,
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The members have exited; the kernel may need a moment to empty it.
        for _ in 0..500 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .find(|l| l.split_once(" - ").is_some_and(|(_, r)| r.starts_with("cgroup2 ")))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()))
}

/// A new cgroup `name` in the cgroup v1 pids hierarchy and in the cgroup2 tree,
/// whichever of them this host has (at least one).
pub fn new_cgroups(name: &str) -> Vec<Cgroup> {
    let mut groups = Vec::new();
    if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        groups.push(Cgroup { dir: PathBuf::from("/sys/fs/cgroup/pids").join(name), line: format!(":pids:/{name}") });
    }
    if let Some(root) = cgroup2_mount() {
        groups.push(Cgroup { dir: root.join(name), line: format!("0::/{name}") });
    }
    assert!(!groups.is_empty(), "no cgroup v1 pids hierarchy and no cgroup2 mount");
    for g in &groups {
        fs::create_dir(&g.dir).unwrap();
    }
    groups
}

/// `--cgroup DIR` for each of `groups`, as init's arguments.
pub fn cgroup_flags(groups: &[Cgroup]) -> Vec<String> {
    groups.iter().flat_map(|g| ["--cgroup".to_string(), g.dir.to_str().unwrap().to_string()]).collect()
}
