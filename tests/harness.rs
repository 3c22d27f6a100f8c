//! Shared helpers for the integration tests. They run as root on the real kernel,
//! beside other tests: everything they make has a test-unique name (state dir,
//! cgroup parent, container and netns names) and is removed by a Drop guard even
//! when an assertion fails.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod journal;
pub use journal::pid_in_journal;
pub mod child_fd;
pub mod footprint;
pub mod hsrun_world;
pub mod oci_image_fixture;
pub mod standin;

/// Where the project's binaries were built (`tests/run` builds them first).
/// `HS_BIN_DIR` overrides it, e.g. to test installed binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/x86_64-unknown-linux-gnu").join(profile)
}

/// Path of one of the project's binaries: "host-setup", "init" or "escape_chroot".
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is not built: run `tests/run` (or cargo build --release) first", p.display());
    p
}

/// These tests change kernel state; they need root and never skip.
pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "the integration tests need root: run `sudo tests/run`");
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A number unique within this test process.
pub fn seq() -> usize {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// A fresh directory /tmp/lab-test-<pid>-<n>-<tag>, unique to the test that made
/// it, removed on drop (even when the test fails). `.0` is its path.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = PathBuf::from(format!("/tmp/lab-test-{}-{}-{tag}", std::process::id(), seq()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// `rel` inside the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// The path of `rel` as a string, for command lines.
    pub fn s(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

/// A copy of the binary `path` in a fresh directory that every user can enter
/// (0755), for running it as another user: the checkout itself may sit under a
/// directory only its owner can enter (root's home, a `mktemp -d` dir).
pub fn world_readable_copy(path: &Path) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("bin");
    let name = path.file_name().expect("a file name");
    let to = dir.0.join(name);
    std::fs::copy(path, &to).unwrap_or_else(|e| panic!("cp {} {}: {e}", path.display(), to.display()));
    for (p, mode) in [(&dir.0, 0o755), (&to, 0o755)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", p.display()));
    }
    dir
}

/// stdout + stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A private host-setup world: its own state dir and cgroup parent, and unique
/// container names. Drop takes every container down and removes both.
pub struct Lab {
    pub state_dir: PathBuf,
    pub cgroup_parent: String,
    tag: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl Lab {
    pub fn new() -> Lab {
        require_root();
        let tag = format!("{}{}", std::process::id() % 100_000, seq());
        let state_dir = PathBuf::from(format!("/tmp/hs-test-{tag}"));
        let _ = std::fs::remove_dir_all(&state_dir);
        Lab { state_dir, cgroup_parent: format!("hs-test-{tag}"), tag, names: Default::default() }
    }

    /// The lab's unique tag (container names are `t<tag><suffix>`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// A container name unique to this lab: `t<tag><suffix>` (at most 15 chars).
    pub fn name(&self, suffix: &str) -> String {
        let n = format!("t{}{}", self.tag, suffix);
        assert!(n.len() <= 15, "{n} is too long for a container name");
        self.names.lock().unwrap().push(n.clone());
        n
    }

    /// `host-setup ARGS` in this lab.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_of(&bin("host-setup"), args)
    }

    /// `PROGRAM ARGS` in this lab (`program`: a host-setup binary, e.g. a copy).
    pub fn cmd_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.env("HOST_SETUP_STATE_DIR", &self.state_dir)
            .env("HOST_SETUP_CGROUP_PARENT", &self.cgroup_parent)
            .env_remove("RUST_LOG")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run host-setup")
    }

    /// Run and require exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "host-setup {}: {}", args.join(" "), text(&o));
        o
    }

    /// `host-setup exec NAME CMD...`
    pub fn exec(&self, name: &str, cmd: &[&str]) -> Output {
        let mut a = vec!["exec", name, "--"];
        a.extend_from_slice(cmd);
        self.run(&a)
    }

    /// Bring up a pair the way red and blue are (veth0 11.11.11.2/24 <-> veth1
    /// 11.11.11.3/24), under this lab's unique names; returns (a, b).
    pub fn pair(&self) -> (String, String) {
        let (a, b) = (self.name("a"), self.name("b"));
        self.ok(&["up", &a, "--address", "11.11.11.2/24", "--iface", "veth0", "--peer", &b]);
        self.ok(&["up", &b, "--address", "11.11.11.3/24", "--iface", "veth1", "--peer", &a]);
        (a, b)
    }

    /// The container's cgroup directories, as host-setup makes them.
    pub fn cgroup_dirs(&self, name: &str) -> Vec<PathBuf> {
        host_setup::cgroup::Cgroups::detect().unwrap().dirs(&self.cgroup_parent, name)
    }

    pub fn usage(&self, name: &str) -> host_setup::cgroup::Usage {
        host_setup::cgroup::Cgroups::detect().unwrap().usage(&self.cgroup_dirs(name))
    }

    /// Init's host pid, from `status`.
    pub fn init_pid(&self, name: &str) -> i32 {
        let o = self.ok(&["status", name]);
        let s = stdout(&o);
        let pid = s
            .split("init pid ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok());
        pid.unwrap_or_else(|| panic!("no init pid in status:\n{s}"))
    }

    /// The host pid of the container's `role` ("supervisor" or "init") as its
    /// journal recorded it (the newest record), if it has one.
    pub fn journal_pid(&self, name: &str, role: &str) -> Option<i32> {
        let path = self.state_dir.join("containers").join(format!("{name}.journal"));
        pid_in_journal(&std::fs::read_to_string(path).ok()?, role)
    }

    /// Everything of this lab that is still on the host (should be empty after down).
    pub fn leftovers(&self, names: &[&str]) -> Vec<String> {
        let mut left = vec![];
        for n in names {
            let ns = format!("/run/netns/{}", n.to_uppercase());
            if Path::new(&ns).exists() {
                left.push(ns);
            }
            for d in self.cgroup_dirs(n) {
                if d.exists() {
                    left.push(d.display().to_string());
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for l in mounts.lines() {
            if l.contains(&*self.state_dir.to_string_lossy()) {
                left.push(format!("mount: {l}"));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.state_dir.join("containers")) {
            for e in rd.flatten() {
                left.push(e.path().display().to_string());
            }
        }
        left
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let names = self.names.lock().unwrap().clone();
        for n in &names {
            let _ = self.cmd(&["down", "--timeout", "1", n]).output();
        }
        if let Ok(cg) = host_setup::cgroup::Cgroups::detect() {
            for d in host_setup::cgroup::parents(&cg.dirs(&self.cgroup_parent, "x")) {
                let _ = std::fs::remove_dir(&d);
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A command running on a new pseudo-terminal, as a terminal emulator starts a
/// shell: its own session with the pty as controlling terminal.
pub struct OnPty {
    pub child: std::process::Child,
    pub master: std::fs::File,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl OnPty {
    pub fn spawn(mut cmd: Command) -> OnPty {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
            // Not inherited by other tests' children.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut r, o) = (master.try_clone().unwrap(), out.clone());
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnPty { child, master, out }
    }

    pub fn say(&mut self, s: &str) {
        use std::io::Write;
        self.master.write_all(s.as_bytes()).unwrap();
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Wait (up to 30 s) until the terminal shows `what`.
    pub fn expect(&self, what: &str) {
        wait_for(&format!("{what:?} on the terminal"), || self.output().contains(what).then_some(()));
        let _ = what;
    }

    /// The terminal's foreground process group.
    pub fn foreground(&self) -> i32 {
        nix::unistd::tcgetpgrp(&self.master).map(|p| p.as_raw()).unwrap_or(-1)
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` every 20 ms until it gives Some, for at most 30 s.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Mount points at or under `dir` (mountinfo's 5th field, compared by whole
/// path components: /tmp/x-1 is not under /tmp/x-14's neighbour /tmp/x-1).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == d || p.strip_prefix(d).is_some_and(|rest| rest.starts_with('/')))
        .map(str::to_string)
        .collect()
}

/// Pids of the processes below `root` (children, grandchildren, ...) named `comm`.
pub fn descendants_named(root: i32, comm: &str) -> Vec<i32> {
    let mut out = vec![];
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for k in kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()) {
            let c = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
            if c.trim() == comm {
                out.push(k);
            }
            todo.push(k);
        }
    }
    out
}

/// A block device (major, minor) that root on this host can open: the root
/// filesystem's disk, or else loop0 (some sandboxes, this project's machine among
/// them, forbid even the host's root to open its disk).
pub fn openable_block_device() -> (u32, u32) {
    let st = nix::sys::stat::stat("/").unwrap();
    let (maj, min) = (nix::sys::stat::major(st.st_dev) as u32, nix::sys::stat::minor(st.st_dev) as u32);
    let dir = std::env::temp_dir().join(format!("hs-blk-{}-{}", std::process::id(), seq()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = dir.join("b");
    let opens = |maj: u32, min: u32| {
        let _ = std::fs::remove_file(&node);
        let dev = nix::sys::stat::makedev(maj as u64, min as u64);
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            dev,
        )
        .is_ok()
            && std::fs::File::open(&node).is_ok()
    };
    let found = if maj != 0 && opens(maj, min) { (maj, min) } else { (7, 0) };
    let _ = std::fs::remove_dir_all(&dir);
    found
}
