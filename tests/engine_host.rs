//! What a container engine leaves on the host, and its removal, for
//! tests/clients.rs: a scratch directory per engine, the cgroups and fixed run
//! directories recorded before the engine runs, and a clean-up that removes only
//! what appeared (rmdir, deepest first), every mount under the scratch directory,
//! and any process whose command line names it.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab_tests::TempDir;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A temporary directory for one engine, and what the engine may leave outside
/// it, recorded before it runs so that only what it made is removed.
pub struct Scratch {
    pub tmp: TempDir,
    cgroup: &'static str,
    cgroups_before: BTreeSet<PathBuf>,
    run_dirs: Vec<(PathBuf, bool)>,
}

/// Every cgroup hierarchy's mount point (v1 and cgroup2), from mountinfo.
fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    mi.lines()
        .filter(|l| l.split_once(" - ").is_some_and(|(_, r)| r.starts_with("cgroup ") || r.starts_with("cgroup2 ")))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()))
        .collect()
}

/// `<hierarchy>/<name>` in every hierarchy, and every directory below it.
fn cgroup_dirs(name: &str) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<PathBuf> = cgroup_mounts().into_iter().map(|m| m.join(name)).filter(|d| d.is_dir()).collect();
    while let Some(d) = todo.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            todo.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        found.insert(d);
    }
    found
}

/// Pids of processes whose command line names `dir` (an engine's helpers: conmon,
/// containerd-shim, ... all get paths under the test's directory).
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_str().unwrap().as_bytes();
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else { return vec![] };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .filter(|p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// Mount points at or under `dir`, deepest first.
fn mounts_deepest_first(dir: &Path) -> Vec<String> {
    let mut m = lab_tests::mounts_under(dir);
    m.sort_by_key(|p| std::cmp::Reverse(p.len()));
    m.dedup();
    m
}

impl Scratch {
    /// `cgroup`: the parent cgroup the engine makes; `run_dirs`: fixed host
    /// directories it makes, parents first.
    pub fn new(tag: &str, cgroup: &'static str, run_dirs: &[&str]) -> Scratch {
        lab_tests::require_root();
        let run_dirs = run_dirs.iter().map(|d| (PathBuf::from(d), Path::new(d).exists())).collect();
        Scratch { tmp: TempDir::new(tag), cgroup, cgroups_before: cgroup_dirs(cgroup), run_dirs }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path(rel)
    }

    pub fn s(&self, rel: &str) -> String {
        self.tmp.s(rel)
    }

    /// Removes what the engine left (processes naming the directory, mounts under
    /// it, the cgroups and run directories that appeared) and returns what is
    /// still there afterwards. Safe to call twice.
    pub fn clean(&self) -> Vec<String> {
        let mut left = vec![];
        // An engine's helper may need a moment to exit after the client returns.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_naming(&self.tmp.0).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in processes_naming(&self.tmp.0) {
            // Ours: its command line names the test's own directory.
            left.push(format!("process {pid} ({}) was still running: SIGKILL", crate::dropin::comm(pid)));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for m in mounts_deepest_first(&self.tmp.0) {
            eprintln!("unmounting {m}: left by the engine");
            if let Err(e) = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH) {
                left.push(format!("umount2({m}, MNT_DETACH): {e}"));
            }
        }
        let mut new: Vec<PathBuf> = cgroup_dirs(self.cgroup).difference(&self.cgroups_before).cloned().collect();
        new.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in new {
            eprintln!("removing cgroup {}: left by the engine", d.display());
            // The last member's exit may take the kernel a moment to account.
            let mut r = fs::remove_dir(&d);
            for _ in 0..100 {
                if !matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EBUSY)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                r = fs::remove_dir(&d);
            }
            match r {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => left.push(format!("rmdir {}: {e}", d.display())),
                _ => {}
            }
        }
        for (d, existed) in self.run_dirs.iter().rev() {
            if !existed && d.exists() {
                if let Err(e) = fs::remove_dir(d) {
                    left.push(format!("rmdir {}: {e}", d.display()));
                }
            }
        }
        left
    }

    /// The test's last step: nothing of the engine may be left.
    pub fn assert_clean(&self) {
        let left = self.clean();
        assert!(left.is_empty(), "left on the host after the run:\n{}", left.join("\n"));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for l in self.clean() {
            eprintln!("still left: {l}");
        }
    }
}
