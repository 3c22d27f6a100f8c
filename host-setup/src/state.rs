//! What host-setup made, on disk, so that `down`, `status`, `exec` and the recovery
//! of an interrupted setup know it without guessing.
//!
//! Each container has a journal: an append-only text file, one record a line. A
//! step appends "made netns RED" *before* it creates the namespace, so whatever
//! happens next (an error, Ctrl-C, SIGKILL) the journal names everything that may
//! exist, and undoing a record that turns out not to exist is a no-op. Nothing that
//! is not in the journal is ever removed.
//!
//! ```text
//! <state-dir>/layers/<layer>-<hash>/       built image layers (shared, cached)
//! <state-dir>/containers/<name>.lock       flock: one host-setup per container at a time
//! <state-dir>/containers/<name>.journal    the records below
//! <state-dir>/containers/<name>/           upper/ work/ merge/ console.log
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::cgroup::Limits;
use crate::error::{Error, Result, SysContext};
use crate::spec::{Layer, Net, Spec};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/host-setup";
pub const DEFAULT_CGROUP_PARENT: &str = "host-setup";

/// Where everything lives, from `--state-dir`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn new(state_dir: impl Into<PathBuf>) -> Paths {
        Paths { state_dir: state_dir.into() }
    }
    pub fn layers(&self) -> PathBuf {
        self.state_dir.join("layers")
    }
    pub fn containers(&self) -> PathBuf {
        self.state_dir.join("containers")
    }
    pub fn container(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }
    pub fn journal(&self, name: &str) -> PathBuf {
        self.containers().join(format!("{name}.journal"))
    }
    pub fn lock(&self, name: &str) -> PathBuf {
        self.containers().join(format!("{name}.lock"))
    }
    pub fn upper(&self, name: &str) -> PathBuf {
        self.container(name).join("upper")
    }
    pub fn work(&self, name: &str) -> PathBuf {
        self.container(name).join("work")
    }
    pub fn merge(&self, name: &str) -> PathBuf {
        self.container(name).join("merge")
    }
    pub fn console(&self, name: &str) -> PathBuf {
        self.container(name).join("console.log")
    }

    /// Names of the containers that have a journal, sorted.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.containers())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".journal").map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

/// Something host-setup created, and must remove on `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The container's directory (upper, work, merge, console.log).
    Dir(PathBuf),
    /// A named network namespace (/run/netns/NAME).
    Netns(String),
    /// A veth pair, by the end inside `netns`.
    Link { netns: String, iface: String },
    /// One cgroup directory of the container.
    Cgroup(PathBuf),
}

/// Which process a `started` record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The host-setup process that stays behind a background container as init's
    /// parent, to collect its exit status.
    Supervisor,
    /// The container's PID 1.
    Init,
}

/// A process, named so that a recycled pid is not mistaken for it: the pid plus its
/// start time (field 22 of /proc/PID/stat, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// One field of the spec: `spec address 11.11.11.2/24`.
    Spec(String, String),
    /// A built layer directory in use (for init's lowerdir and for pruning).
    Layer(PathBuf),
    Made(Resource),
    Started(Role, Proc),
    /// init reported that the main process runs.
    Ready,
    /// init ended: its exit code (128+N for a signal), and the cgroup's OOM kills.
    Exited {
        code: i32,
        oom_kills: u64,
    },
}

// --- text form ------------------------------------------------------------------

/// Tokens are separated by spaces; `\`, space, tab and newline are escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' => out.push_str("\\s"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push_str("\\e");
    }
    out
}

fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('s') => out.push(' '),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('e') => {}
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

impl Record {
    pub fn to_line(&self) -> String {
        let words: Vec<String> = match self {
            Record::Spec(k, v) => vec!["spec".into(), quote(k), quote(v)],
            Record::Layer(p) => vec!["layer".into(), quote(&p.to_string_lossy())],
            Record::Made(r) => {
                let mut w = vec!["made".to_string()];
                match r {
                    Resource::Dir(p) => w.extend(["dir".into(), quote(&p.to_string_lossy())]),
                    Resource::Netns(n) => w.extend(["netns".into(), quote(n)]),
                    Resource::Link { netns, iface } => w.extend(["link".into(), quote(netns), quote(iface)]),
                    Resource::Cgroup(p) => w.extend(["cgroup".into(), quote(&p.to_string_lossy())]),
                }
                w
            }
            Record::Started(role, p) => {
                let role = match role {
                    Role::Supervisor => "supervisor",
                    Role::Init => "init",
                };
                vec!["started".into(), role.into(), p.pid.to_string(), p.start.to_string()]
            }
            Record::Ready => vec!["ready".into()],
            Record::Exited { code, oom_kills } => vec!["exited".into(), code.to_string(), oom_kills.to_string()],
        };
        words.join(" ")
    }

    pub fn parse(line: &str) -> Option<Record> {
        let w: Vec<String> = line.split(' ').map(unquote).collect();
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        Some(match w.as_slice() {
            ["spec", k, v] => Record::Spec(k.to_string(), v.to_string()),
            ["layer", p] => Record::Layer(p.into()),
            ["made", "dir", p] => Record::Made(Resource::Dir(p.into())),
            ["made", "netns", n] => Record::Made(Resource::Netns(n.to_string())),
            ["made", "link", n, i] => Record::Made(Resource::Link { netns: n.to_string(), iface: i.to_string() }),
            ["made", "cgroup", p] => Record::Made(Resource::Cgroup(p.into())),
            ["started", role, pid, start] => {
                let role = match *role {
                    "supervisor" => Role::Supervisor,
                    "init" => Role::Init,
                    _ => return None,
                };
                Record::Started(role, Proc { pid: pid.parse().ok()?, start: start.parse().ok()? })
            }
            ["ready"] => Record::Ready,
            ["exited", code, oom] => Record::Exited { code: code.parse().ok()?, oom_kills: oom.parse().ok()? },
            _ => return None,
        })
    }
}

/// The spec as journal records, and back.
pub fn spec_records(spec: &Spec) -> Vec<Record> {
    let mut out = vec![];
    let mut put = |k: &str, v: String| out.push(Record::Spec(k.into(), v));
    put("name", spec.name.clone());
    put("netns", spec.netns.clone());
    put("hostname", spec.hostname.clone());
    if let Some(n) = &spec.net {
        put("iface", n.iface.clone());
        put("address", format!("{}/{}", n.addr, n.prefix_len));
        if let Some(p) = &n.peer {
            put("peer", p.clone());
        }
    }
    put("cpu", format!("{}/{}", spec.limits.cpu_quota_us, spec.limits.cpu_period_us));
    put("memory", spec.limits.memory_bytes.to_string());
    put("pids", spec.limits.pids_max.map(|p| p.to_string()).unwrap_or_else(|| "none".into()));
    put("devices", if spec.limits.restrict_devices { "restricted" } else { "all" }.to_string());
    for l in &spec.layers {
        match l {
            Layer::Builtin(n) => put("layer", format!("builtin:{n}")),
            Layer::Dir(d) => put("layer", format!("dir:{}", d.display())),
        }
    }
    for a in &spec.command {
        put("arg", a.clone());
    }
    put("pid1", spec.pid1.as_str().to_string());
    put("privileged", spec.privileged.to_string());
    out
}

fn spec_from_records(records: &[Record]) -> Option<Spec> {
    let mut s = Spec {
        name: String::new(),
        netns: String::new(),
        hostname: String::new(),
        net: None,
        limits: Limits { cpu_quota_us: 0, cpu_period_us: 0, memory_bytes: 0, pids_max: None, restrict_devices: false },
        layers: vec![],
        command: vec![],
        pid1: Default::default(),
        privileged: false,
    };
    let (mut iface, mut addr, mut peer) = (None, None, None);
    for r in records {
        let Record::Spec(k, v) = r else { continue };
        match k.as_str() {
            "name" => s.name = v.clone(),
            "netns" => s.netns = v.clone(),
            "hostname" => s.hostname = v.clone(),
            "iface" => iface = Some(v.clone()),
            "address" => addr = crate::spec::parse_cidr(v).ok(),
            "peer" => peer = Some(v.clone()),
            "cpu" => {
                let (q, p) = v.split_once('/')?;
                s.limits.cpu_quota_us = q.parse().ok()?;
                s.limits.cpu_period_us = p.parse().ok()?;
            }
            "memory" => s.limits.memory_bytes = v.parse().ok()?,
            "pids" => s.limits.pids_max = v.parse().ok(),
            "devices" => s.limits.restrict_devices = v == "restricted",
            "layer" => s.layers.push(match v.split_once(':')? {
                ("builtin", n) => Layer::Builtin(n.into()),
                (_, d) => Layer::Dir(d.into()),
            }),
            "arg" => s.command.push(v.clone()),
            "pid1" => s.pid1 = crate::spec::Pid1::parse(v)?,
            "privileged" => s.privileged = v == "true",
            _ => {}
        }
    }
    if let (Some(iface), Some((addr, prefix_len))) = (iface, addr) {
        s.net = Some(Net { iface, addr, prefix_len, peer });
    }
    (!s.name.is_empty()).then_some(s)
}

// --- the journal ----------------------------------------------------------------

/// A container's journal, read back.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub records: Vec<Record>,
}

impl Journal {
    /// Read `<name>.journal`; None if there is none (the container is not up).
    pub fn read(paths: &Paths, name: &str) -> Result<Option<Journal>> {
        let path = paths.journal(name);
        match fs::read_to_string(&path) {
            Ok(text) => {
                // A torn last line (killed mid-write) is skipped, not fatal.
                let records = text.lines().filter_map(Record::parse).collect();
                Ok(Some(Journal { records }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).sys(|| format!("read {}", path.display())),
        }
    }

    pub fn spec(&self) -> Option<Spec> {
        spec_from_records(&self.records)
    }

    /// The init binary the container was started with (`exec` uses the same).
    pub fn init_bin(&self) -> Option<PathBuf> {
        self.records.iter().find_map(|r| match r {
            Record::Spec(k, v) if k == "init" => Some(PathBuf::from(v)),
            _ => None,
        })
    }

    pub fn proc(&self, role: Role) -> Option<Proc> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Started(r, p) if *r == role => Some(*p),
            _ => None,
        })
    }

    pub fn made(&self) -> impl DoubleEndedIterator<Item = &Resource> {
        self.records.iter().filter_map(|r| match r {
            Record::Made(m) => Some(m),
            _ => None,
        })
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.made()
            .filter_map(|r| match r {
                Resource::Cgroup(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Layer(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn has_netns(&self) -> bool {
        self.made().any(|r| matches!(r, Resource::Netns(_)))
    }

    pub fn is_ready(&self) -> bool {
        self.records.contains(&Record::Ready)
    }

    pub fn exited(&self) -> Option<(i32, u64)> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Exited { code, oom_kills } => Some((*code, *oom_kills)),
            _ => None,
        })
    }
}

/// Appends records to a journal. O_APPEND: the supervisor appends to the same file
/// from another process; each record is one write() of one line.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
}

impl JournalWriter {
    pub fn open(paths: &Paths, name: &str) -> Result<JournalWriter> {
        let path = paths.journal(name);
        let file =
            OpenOptions::new().append(true).create(true).open(&path).sys(|| format!("open {}", path.display()))?;
        Ok(JournalWriter { file, path })
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// A writer that keeps nothing (`--explain` runs the steps' descriptions only).
    pub fn discard() -> Result<JournalWriter> {
        let path = PathBuf::from("/dev/null");
        let file = OpenOptions::new().append(true).open(&path).sys(|| "open /dev/null".into())?;
        Ok(JournalWriter { file, path })
    }

    pub fn append(&mut self, r: &Record) -> Result<()> {
        log::trace!("journal {}: {}", self.path.display(), r.to_line());
        self.file
            .write_all(format!("{}\n", r.to_line()).as_bytes())
            .sys(|| format!("write {}", self.path.display()))?;
        crate::fault::recorded()
    }
}

// --- the per-container lock -----------------------------------------------------

/// An exclusive flock on `<name>.lock`, held for the whole of one command on that
/// container. `down` deletes the file while holding it; a waiter then holds a lock
/// on a deleted file, so after locking we check that the path still names the file
/// we locked, and start over if not.
pub struct Lock {
    file: Option<File>,
    path: PathBuf,
    journal: PathBuf,
}

impl Lock {
    /// Take the lock, waiting for another host-setup on the same container.
    /// `on_wait` is called once if we have to wait.
    pub fn acquire(paths: &Paths, name: &str, on_wait: impl FnOnce()) -> Result<Lock> {
        let dir = paths.containers();
        fs::create_dir_all(&dir).sys(|| format!("mkdir -p {}", dir.display()))?;
        let path = paths.lock(name);
        let mut on_wait = Some(on_wait);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .sys(|| format!("open {}", path.display()))?;
            let fd = file.as_raw_fd();
            if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                if let Some(f) = on_wait.take() {
                    f();
                }
                if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                    return Err(std::io::Error::last_os_error()).sys(|| format!("flock {}", path.display()));
                }
            }
            let held = file.metadata().sys(|| format!("stat {}", path.display()))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Lock { file: Some(file), path, journal: paths.journal(name) });
                }
                _ => continue, // deleted by a `down` while we waited: lock the new file
            }
        }
    }

    /// At the end of a command: if the container has no journal (it is gone, or
    /// never came to be), delete the lock file too, while still holding the lock.
    pub fn finish(self) {
        if !self.journal.exists() {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// In a forked child that must not keep the lock held: close our copy.
    pub fn release_in_child(&mut self) {
        self.file.take();
    }
}

/// A short-lived lock shared by all containers of a state dir: only one host-setup
/// at a time decides whether a veth pair is still to be made. It is an flock on the
/// containers directory itself, so no lock file is left behind. Released when the
/// returned handle is dropped.
pub fn global_lock(paths: &Paths) -> Result<File> {
    let dir = paths.containers();
    fs::create_dir_all(&dir).sys(|| format!("mkdir -p {}", dir.display()))?;
    let file = File::open(&dir).sys(|| format!("open {}", dir.display()))?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).sys(|| format!("flock {}", dir.display()));
    }
    Ok(file)
}

// --- processes ------------------------------------------------------------------

/// Start time of `pid` (field 22 of /proc/PID/stat) and whether it is a zombie.
pub fn proc_stat(pid: i32) -> Option<(u64, bool)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ..." — comm may contain spaces and ')': split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z" || *state == "X"))
}

impl Proc {
    pub fn of(pid: i32) -> Result<Proc> {
        let (start, _) = proc_stat(pid).ok_or_else(|| crate::failed!("read /proc/{pid}/stat: the process is gone"))?;
        Ok(Proc { pid, start })
    }

    /// Still running (not a zombie) and still the same process.
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((start, false)) if start == self.start)
    }

    /// Exists, zombie or not, as the same process.
    pub fn exists(&self) -> bool {
        matches!(proc_stat(self.pid), Some((start, _)) if start == self.start)
    }

    /// Send a signal, only if the pid still names this process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys(format!("kill -{} {}", sig.as_str().trim_start_matches("SIG"), self.pid), e)),
        }
    }
}

/// Remove a directory tree without following symlinks and without crossing into
/// another filesystem (a mount inside would be skipped and reported, never emptied).
pub fn remove_tree(path: &Path) -> Result<bool> {
    let top = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).sys(|| format!("stat {}", path.display())),
    };
    fn walk(p: &Path, dev: u64) -> Result<()> {
        for entry in fs::read_dir(p).sys(|| format!("read {}", p.display()))? {
            let entry = entry.sys(|| format!("read {}", p.display()))?;
            let child = entry.path();
            let m = fs::symlink_metadata(&child).sys(|| format!("stat {}", child.display()))?;
            if m.is_dir() {
                if m.dev() != dev {
                    return Err(crate::failed!(
                        "not removing {}: another filesystem is mounted there",
                        child.display()
                    ));
                }
                walk(&child, dev)?;
                fs::remove_dir(&child).sys(|| format!("rmdir {}", child.display()))?;
            } else {
                fs::remove_file(&child).sys(|| format!("rm {}", child.display()))?;
            }
        }
        Ok(())
    }
    if top.is_dir() {
        walk(path, top.dev())?;
        fs::remove_dir(path).sys(|| format!("rmdir {}", path.display()))?;
    } else {
        fs::remove_file(path).sys(|| format!("rm {}", path.display()))?;
    }
    Ok(true)
}

/// Addresses of all containers in this state dir, except `except` (for the "already
/// used" check).
pub fn addresses_in_use(paths: &Paths, except: &str) -> Vec<(String, Ipv4Addr)> {
    paths
        .container_names()
        .into_iter()
        .filter(|n| n != except)
        .filter_map(|n| {
            let spec = Journal::read(paths, &n).ok()??.spec()?;
            Some((n, spec.net?.addr))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Options;

    #[test]
    fn records_round_trip() {
        let recs = [
            Record::Spec("arg".into(), "echo hi\tthere \\ \n".into()),
            Record::Spec("arg".into(), "".into()),
            Record::Layer("/var/lib/host-setup/layers/tools-0123".into()),
            Record::Made(Resource::Dir("/a b/c".into())),
            Record::Made(Resource::Netns("RED".into())),
            Record::Made(Resource::Link { netns: "RED".into(), iface: "veth0".into() }),
            Record::Made(Resource::Cgroup("/sys/fs/cgroup/cpu/host-setup/red".into())),
            Record::Started(Role::Init, Proc { pid: 42, start: 123456 }),
            Record::Started(Role::Supervisor, Proc { pid: 41, start: 123455 }),
            Record::Ready,
            Record::Exited { code: 137, oom_kills: 1 },
        ];
        for r in recs {
            let line = r.to_line();
            assert!(!line.contains('\n'), "{line:?}");
            assert_eq!(Record::parse(&line), Some(r), "{line}");
        }
        assert_eq!(Record::parse("made netns"), None); // torn line
        assert_eq!(Record::parse("garbage"), None);
    }

    #[test]
    fn spec_round_trips_through_the_journal() {
        for (name, opts) in [
            ("red", Options::default()),
            ("solo", Options { command: vec!["sh".into(), "-c".into(), "echo a b".into()], ..Default::default() }),
            (
                "green",
                Options {
                    address: Some("10.1.2.3/16".into()),
                    peer: Some("yellow".into()),
                    layers: vec!["/".into()],
                    memory: Some("1G".into()),
                    ..Default::default()
                },
            ),
        ] {
            let spec = Spec::new(name, &opts).unwrap();
            let lines: Vec<String> = spec_records(&spec).iter().map(Record::to_line).collect();
            let back: Vec<Record> = lines.iter().filter_map(|l| Record::parse(l)).collect();
            assert_eq!(spec_from_records(&back), Some(spec));
        }
    }

    #[test]
    fn proc_stat_of_self() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!Proc { pid: me.pid, start: me.start + 1 }.alive(), "another start time is another process");
    }

    #[test]
    fn remove_tree_removes_and_is_idempotent() {
        let d = std::env::temp_dir().join(format!("hs-rt-{}", std::process::id()));
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", d.join("a/link")).unwrap();
        assert!(remove_tree(&d).unwrap());
        assert!(!d.exists());
        assert!(Path::new("/etc/passwd").exists(), "symlinks are not followed");
        assert!(!remove_tree(&d).unwrap());
    }
}
