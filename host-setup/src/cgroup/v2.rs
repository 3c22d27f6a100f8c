//! cgroup v2: one unified tree. A controller works in a cgroup only if every
//! ancestor enabled it in `cgroup.subtree_control`; and a cgroup that has
//! controllers enabled for its children may hold no processes itself ("no internal
//! processes" rule; the root of the hierarchy is exempt). So: enable cpu and memory
//! in the root (if not yet: journalled and undone, subtree.rs) and in our parent,
//! never in the container's leaf, and put processes only into leaves.
//!
//! `/sys/fs/cgroup` need not be the hierarchy's root: in a container with its own
//! cgroup namespace (docker, podman, nspawn) it is some cgroup further down, which
//! has only the controllers its parent delegated and is not exempt from the no
//! internal processes rule. `check` finds both cases before anything is made and
//! says what to do.

use std::fs;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;

use super::{keyed_u64, read_u64, write, Limits, Op, Usage};
use crate::error::{Error, Result, SysContext};

pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

fn words(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).sys(|| format!("read {}", path.display()))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Whether `dir` is the root of the whole hierarchy (and not the root of a cgroup
/// namespace or a bind mount of a sub-cgroup): only the real root has no
/// `cgroup.type`.
fn is_hierarchy_root(dir: &Path) -> bool {
    !dir.join("cgroup.type").exists()
}

/// Before anything is made: every controller we need is available at `root`, the
/// tree is writable, and we can enable the controllers there if they are not yet.
pub fn check(root: &Path) -> Result<()> {
    if let Ok(st) = nix::sys::statvfs::statvfs(root) {
        if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return Err(crate::precondition!(
                "cgroup v2 at {} is mounted read-only, so no cgroup can be made: remount it read-write \
                 (mount -o remount,rw {0}); in a container, run it with the cgroup tree writable (e.g. --privileged)",
                root.display()
            ));
        }
    }
    let available = words(&root.join("cgroup.controllers"))?;
    let missing: Vec<&str> = CONTROLLERS.iter().copied().filter(|c| !available.iter().any(|a| a == c)).collect();
    if !missing.is_empty() {
        let proc_cgroups = fs::read_to_string("/proc/cgroups").unwrap_or_default();
        return Err(unavailable(root, &missing, &available, &proc_cgroups, is_hierarchy_root(root)));
    }
    // The controllers still to enable in root's subtree_control: impossible while
    // root holds processes, unless it is the hierarchy's root.
    let enabled = words(&root.join("cgroup.subtree_control"))?;
    let todo: Vec<&str> = CONTROLLERS.iter().copied().filter(|c| !enabled.iter().any(|e| e == c)).collect();
    if !todo.is_empty() && !is_hierarchy_root(root) {
        let pids = super::procs(root);
        if !pids.is_empty() {
            return Err(internal_processes(root, &todo, &pids));
        }
    }
    Ok(())
}

/// The error for controllers missing from `root`'s cgroup.controllers, with the
/// reason for each, found in /proc/cgroups ("name hierarchy num_cgroups enabled").
fn unavailable(root: &Path, missing: &[&str], available: &[String], proc_cgroups: &str, top: bool) -> Error {
    let reasons: Vec<String> = missing
        .iter()
        .map(|c| {
            let line =
                proc_cgroups.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.first() == Some(c));
            match line.as_deref() {
                None | Some([_]) => {
                    let config = if *c == "memory" { "CONFIG_MEMCG" } else { "CONFIG_CGROUP_SCHED" };
                    format!("the kernel has no {c} controller (built without {config})")
                }
                Some([_, _, _, enabled, ..]) if *enabled == "0" => {
                    format!("{c} is disabled on the kernel command line (cgroup_disable={c}): remove that and reboot")
                }
                Some([_, hierarchy, ..]) if *hierarchy != "0" => format!(
                    "{c} is bound to a cgroup v1 hierarchy (a mount -t cgroup -o {c}): unmount that, or boot with \
                     cgroup_no_v1={c} (systemd: systemd.unified_cgroup_hierarchy=1)"
                ),
                _ if !top => format!(
                    "{c} is not delegated: {} is not the root of the cgroup tree (a container's cgroup namespace \
                     or a delegated subtree) and its parent does not enable {c} for it; on the host, enable it in \
                     the parent's cgroup.subtree_control (echo +{c} > PARENT/cgroup.subtree_control; \
                     systemd: Delegate=yes in the unit)",
                    root.display()
                ),
                _ => format!("{c} is enabled in the kernel but not offered by the cgroup tree"),
            }
        })
        .collect();
    crate::precondition!(
        "cgroup v2 controller{} {} not available in {}/cgroup.controllers (it lists: {}): {}",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        root.display(),
        if available.is_empty() { "nothing".to_string() } else { available.join(" ") },
        reasons.join("; ")
    )
}

/// The error for a cgroup that must enable controllers for its children but holds
/// processes itself.
fn internal_processes(dir: &Path, todo: &[&str], pids: &[i32]) -> Error {
    let d = dir.display();
    let shown: Vec<String> = pids.iter().take(8).map(i32::to_string).collect();
    crate::precondition!(
        "cannot enable {} in {d}/cgroup.subtree_control: {d} holds processes of its own (pid{} {}{}) and cgroup v2 \
         lets a cgroup with processes enable no controller for its children (the no internal processes rule); \
         move them into a leaf cgroup first (mkdir {d}/init; for p in $(cat {d}/cgroup.procs); do echo $p > \
         {d}/init/cgroup.procs; done), or enable {} for it from the host",
        todo.join(", "),
        if pids.len() > 1 { "s" } else { "" },
        shown.join(" "),
        if pids.len() > 8 { " ..." } else { "" },
        todo.join(", ")
    )
}

/// Enable our controllers for the children of `dir`, one at a time (so a failure
/// names the controller), those not enabled yet.
pub(super) fn enable_for_children(dir: &Path, controllers: &[&str]) -> Result<()> {
    let enabled = words(&dir.join("cgroup.subtree_control"))?;
    for c in controllers.iter().filter(|c| !enabled.iter().any(|e| e == *c)) {
        enable_one(dir, c)?;
    }
    Ok(())
}

/// `echo +c > dir/cgroup.subtree_control`, with why it failed.
pub(super) fn enable_one(dir: &Path, c: &str) -> Result<()> {
    write(&dir.join("cgroup.subtree_control"), &format!("+{c}")).map_err(|e| match e.errno() {
        Some(Errno::EBUSY) => internal_processes(dir, &[c], &super::procs(dir)),
        Some(errno) => e.hint(subtree_hint(dir, c, errno)),
        None => e,
    })
}

/// Why writing `+c` into `dir`'s cgroup.subtree_control failed with `errno`.
fn subtree_hint(dir: &Path, c: &str, errno: Errno) -> String {
    let d = dir.display();
    match errno {
        Errno::ENOENT => format!(
            "{c} is not in {d}/cgroup.controllers: the parent cgroup does not delegate it \
             (echo +{c} > PARENT/cgroup.subtree_control; systemd: Delegate=yes)"
        ),
        Errno::EOPNOTSUPP => format!("{d} is a threaded cgroup (see its cgroup.type); {c} needs a domain cgroup"),
        Errno::EINVAL if c == "cpu" => "the kernel refuses the cpu controller while a realtime (SCHED_FIFO/SCHED_RR) \
             process runs outside the root cgroup (CONFIG_RT_GROUP_SCHED): move it to the root cgroup or make it \
             SCHED_OTHER"
            .to_string(),
        Errno::EACCES | Errno::EPERM | Errno::EROFS => {
            format!("{d} may not be changed here (a read-only cgroup tree, or a subtree delegated to another user)")
        }
        _ => format!("enabling {c} for the children of {d} failed"),
    }
}

/// The hierarchy's root is exempt from the no internal processes rule (and check()
/// refused a namespace root holding processes); systemd hosts have memory and pids
/// enabled there already, rarely cpu. The root is not ours: what we enable there
/// is claimed for this container and given back by the last one (subtree.rs). Our
/// parent only ever holds cgroups, never processes; the leaf gets limits only — its
/// cgroup.subtree_control stays empty, so that init and everything it starts may
/// live in it.
pub fn ops(root: &Path, parent: &str, name: &str, limits: &Limits) -> Vec<Op> {
    let parent_dir = root.join(parent);
    let dir = parent_dir.join(name);
    let mut ops = vec![
        Op::Enable { dir: root.to_path_buf(), user: dir.clone(), controllers: CONTROLLERS.to_vec() },
        Op::Mkdir { dir: dir.clone(), enable_in: vec![parent_dir], controllers: CONTROLLERS.to_vec() },
        Op::write(&dir, "cpu.max", format!("{} {}", limits.cpu_quota_us, limits.cpu_period_us)),
        Op::write(&dir, "memory.max", limits.memory_bytes),
        // Without swap accounting (no CONFIG_MEMCG_SWAP, or swapaccount=0) the file is
        // absent and the container cannot swap through this cgroup anyway.
        Op::Write { file: dir.join("memory.swap.max"), value: "0".into(), if_exists: true },
    ];
    if let Some(max) = limits.pids_max {
        ops.push(Op::write(&dir, "pids.max", max));
    }
    if limits.restrict_devices {
        ops.push(Op::DeviceFilter(dir));
    }
    ops
}

pub fn usage(dir: &Path) -> Usage {
    Usage {
        cpu_ns: keyed_u64(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        memory_bytes: read_u64(&dir.join("memory.current")).unwrap_or(0),
        oom_kills: keyed_u64(&dir.join("memory.events"), "oom_kill").unwrap_or(0),
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
    }
}

/// `populated` from the cgroup's cgroup.events: whether any process is in it or
/// below it. None on v1 (no such file) or if it is gone.
pub fn populated(dir: &Path) -> Option<bool> {
    keyed_u64(&dir.join("cgroup.events"), "populated").map(|n| n != 0)
}

/// Wait until the cgroup holds no process any more (cgroup.events: populated 0),
/// or until `deadline`. Killed processes leave their cgroup only once they have
/// exited, which takes a while for one freeing a lot of memory. The kernel
/// notifies a change of cgroup.events as POLLPRI. True once it is empty.
pub fn wait_until_empty(dir: &Path, deadline: Instant) -> bool {
    let path = dir.join("cgroup.events");
    let Ok(mut f) = fs::File::open(&path) else { return true };
    let mut text = String::new();
    loop {
        text.clear();
        if f.rewind().and_then(|_| f.read_to_string(&mut text)).is_err() {
            return true; // the cgroup is gone
        }
        let busy = text.lines().any(|l| l.split_whitespace().eq(["populated", "1"]));
        if !busy {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::debug!("{} still populated", dir.display());
            return false;
        }
        let ms = left.as_millis().min(100) as u16;
        let mut pfd = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&f), nix::poll::PollFlags::POLLPRI)];
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cg2-unit-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn controllers_are_enabled_in_parents_never_in_the_leaf() {
        let l = Limits::TUTORIAL;
        let lines: Vec<String> =
            ops(Path::new("/sys/fs/cgroup"), "host-setup", "red", &l).iter().flat_map(Op::shell).collect();
        assert!(lines[0].contains("/sys/fs/cgroup/cgroup.subtree_control"), "{lines:?}");
        assert!(lines[1].contains("/sys/fs/cgroup/host-setup/cgroup.subtree_control"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("red/cgroup.subtree_control")));
        assert!(lines.contains(&"echo '40000 100000' > /sys/fs/cgroup/host-setup/red/cpu.max".to_string()));
    }

    #[test]
    fn missing_controllers_are_named() {
        let dir = tmp("missing");
        fs::write(dir.join("cgroup.controllers"), "pids io\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        let e = check(&dir).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = e.to_string();
        assert!(e.starts_with("cgroup v2 controllers cpu, memory not available"), "{e}");
        assert!(e.contains("it lists: pids io"), "{e}");
        fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        check(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpu\t0\t80\t1\nmemory\t0\t80\t1\npids\t0\t80\t1\n";

    #[test]
    fn each_missing_controller_gets_its_reason() {
        let root = Path::new("/sys/fs/cgroup");
        let avail = vec!["cpu".to_string()];
        // Below the tree's root (a container's cgroup namespace): not delegated.
        let e = unavailable(root, &["memory"], &avail, PROC_CGROUPS, false).to_string();
        assert!(e.starts_with("cgroup v2 controller memory not available in /sys/fs/cgroup/cgroup.controllers (it lists: cpu): memory is not delegated"), "{e}");
        assert!(e.contains("echo +memory > PARENT/cgroup.subtree_control"), "{e}");
        // Disabled at boot.
        let e = unavailable(root, &["memory"], &avail, "memory\t0\t1\t0\n", true).to_string();
        assert!(e.contains("cgroup_disable=memory"), "{e}");
        // Bound to a v1 hierarchy.
        let e = unavailable(root, &["memory"], &avail, "memory\t7\t1\t1\n", true).to_string();
        assert!(e.contains("bound to a cgroup v1 hierarchy") && e.contains("cgroup_no_v1=memory"), "{e}");
        // Not in the kernel at all.
        let e = unavailable(root, &["cpu", "memory"], &[], "pids\t0\t1\t1\n", true).to_string();
        assert!(e.contains("no cpu controller (built without CONFIG_CGROUP_SCHED)"), "{e}");
        assert!(e.contains("no memory controller (built without CONFIG_MEMCG)"), "{e}");
        assert!(e.contains("(it lists: nothing)"), "{e}");
    }

    #[test]
    fn a_namespace_root_with_processes_is_refused_before_anything_is_made() {
        let dir = tmp("internal");
        fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "io\n").unwrap();
        fs::write(dir.join("cgroup.procs"), "1\n17\n").unwrap();
        // The hierarchy's root (no cgroup.type) is exempt from the rule.
        check(&dir).unwrap();
        // A cgroup namespace's root is not.
        fs::write(dir.join("cgroup.type"), "domain\n").unwrap();
        let e = check(&dir).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = e.to_string();
        assert!(
            e.starts_with(&format!("cannot enable cpu, memory, pids in {}/cgroup.subtree_control", dir.display())),
            "{e}"
        );
        assert!(e.contains("pids 1 17") && e.contains("no internal processes rule"), "{e}");
        // Nothing to enable: no problem.
        fs::write(dir.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        check(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn subtree_control_errors_say_why() {
        let d = Path::new("/sys/fs/cgroup/host-setup");
        assert!(subtree_hint(d, "memory", Errno::ENOENT).contains("parent cgroup does not delegate it"));
        assert!(subtree_hint(d, "cpu", Errno::EOPNOTSUPP).contains("threaded"));
        assert!(subtree_hint(d, "cpu", Errno::EINVAL).contains("realtime"));
    }

    #[test]
    fn populated_is_read_from_cgroup_events() {
        let dir = tmp("events");
        assert_eq!(populated(&dir), None);
        fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        assert_eq!(populated(&dir), Some(false));
        assert!(wait_until_empty(&dir, Instant::now()));
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(populated(&dir), Some(true));
        assert!(!wait_until_empty(&dir, Instant::now() + std::time::Duration::from_millis(30)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
