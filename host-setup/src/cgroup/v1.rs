//! cgroup v1: one hierarchy per controller (cpu, cpuacct, memory), each mounted on
//! its own directory (or co-mounted, like Ubuntu's cpu,cpuacct). The tutorial's
//! `mkdir /sys/fs/cgroup/cpu/red; echo 40000 > .../cpu.cfs_quota_us; ...`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{devices, keyed_u64, read_u64, Limits, Op, Usage};
use crate::error::Result;

/// The controllers a container is placed in: cpu for the quota, cpuacct to measure
/// it, memory for the limit, pids against fork bombs, devices for the allow list.
pub const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "devices"];

/// Used when the host mounts them, not required: freezer for `hsrun pause`
/// (v2's cgroup.freeze needs no controller).
pub const OPTIONAL: [&str; 1] = ["freezer"];

/// Hierarchies an OCI container (explicit.rs) goes in too when mounted: cpuset
/// and blkio, for `linux.resources.cpu.cpus` and `blockIO`, always (so `hsrun
/// update` can set them later). The others are only looked up to say why a
/// resource is refused.
pub const EXPLICIT: [&str; 2] = ["cpuset", "blkio"];
const KNOWN: [&str; 3] = ["hugetlb", "net_cls", "net_prio"];

#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// controller -> mount point, e.g. "cpu" -> /sys/fs/cgroup/cpu (or .../cpu,cpuacct).
    by_controller: BTreeMap<String, PathBuf>,
}

impl Mounts {
    /// Read the v1 mounts from /proc/self/mountinfo: fstype "cgroup", controllers in
    /// the super options (`rw,cpu,cpuacct`).
    pub fn from_mountinfo(text: &str) -> Result<Mounts> {
        let mut by_controller = BTreeMap::new();
        for line in text.lines() {
            // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>"
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mut r = right.split_whitespace();
            if r.next() != Some("cgroup") {
                continue;
            }
            let super_opts = r.nth(1).unwrap_or("");
            let fields: Vec<&str> = left.split_whitespace().collect();
            let (Some(root), Some(mount_point)) = (fields.get(3), fields.get(4)) else { continue };
            // A bind mount of a sub-cgroup (root != "/") is not the hierarchy's top.
            if *root != "/" {
                continue;
            }
            for opt in super_opts.split(',') {
                if [&CONTROLLERS[..], &OPTIONAL, &EXPLICIT, &KNOWN].iter().any(|l| l.contains(&opt)) {
                    by_controller
                        .entry(opt.to_string())
                        .or_insert_with(|| PathBuf::from(crate::mountinfo::unescape(mount_point)));
                }
            }
        }
        Ok(Mounts { by_controller })
    }

    pub fn check(&self) -> Result<()> {
        let missing: Vec<&str> = CONTROLLERS.iter().copied().filter(|c| !self.by_controller.contains_key(*c)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(crate::precondition!(
            "cgroup v1 controller{} {} not mounted under {}; mount them (e.g. mount -t cgroup -o {} cgroup /sys/fs/cgroup/{}) or boot with cgroup v2",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            super::CGROUP_ROOT,
            missing[0],
            missing[0]
        ))
    }

    /// Distinct mount points in controller order (co-mounted controllers share one).
    fn mount_points(&self) -> Vec<&PathBuf> {
        let mut out: Vec<&PathBuf> = Vec::new();
        for c in CONTROLLERS.iter().chain(&OPTIONAL) {
            if let Some(p) = self.by_controller.get(*c) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The mount point of `controller`'s hierarchy, if the host has one.
    pub fn mount(&self, controller: &str) -> Option<&PathBuf> {
        self.by_controller.get(controller)
    }

    /// The mkdirs of an OCI container's cgroup `rel`: one per hierarchy of
    /// `dirs`, and the cpuset and blkio ones; the cpuset one fills what it makes.
    pub fn explicit_mkdirs(&self, rel: &str) -> Vec<Op> {
        let mut points = self.mount_points();
        for c in EXPLICIT {
            if let Some(p) = self.by_controller.get(c) {
                if !points.contains(&p) {
                    points.push(p);
                }
            }
        }
        let cpuset = self.by_controller.get("cpuset");
        let mut ops = vec![];
        for m in points {
            let cpuset_top = (Some(m) == cpuset).then(|| m.clone());
            let dir = m.join(rel);
            for a in super::missing_ancestors(m, &dir) {
                ops.push(Op::MkdirAncestor { dir: a, cpuset_top: cpuset_top.clone() });
            }
            ops.push(match cpuset_top {
                Some(top) => Op::MkdirCpuset { top, dir },
                None => Op::Mkdir { dir, enable_in: vec![], controllers: vec![] },
            });
        }
        ops
    }

    pub fn dirs(&self, parent: &str, name: &str) -> Vec<PathBuf> {
        self.mount_points().into_iter().map(|m| m.join(parent).join(name)).collect()
    }

    /// The dir of cgroup `rel` in `controller`'s hierarchy, if it is mounted.
    pub fn controller_dir(&self, controller: &str, rel: &str) -> Option<PathBuf> {
        self.by_controller.get(controller).map(|m| m.join(rel))
    }

    fn dir_of(&self, controller: &str, parent: &str, name: &str) -> Option<PathBuf> {
        self.by_controller.get(controller).map(|m| m.join(parent).join(name))
    }

    /// The tutorial's `mkdir /sys/fs/cgroup/cpu/red; echo 40000 > cpu.cfs_quota_us; ...`,
    /// for each hierarchy a container goes in.
    pub fn ops(&self, parent: &str, name: &str, limits: &Limits) -> Vec<Op> {
        let mut ops: Vec<Op> = self
            .dirs(parent, name)
            .into_iter()
            .map(|dir| Op::Mkdir { dir, enable_in: vec![], controllers: vec![] })
            .collect();
        if let Some(cpu) = self.dir_of("cpu", parent, name) {
            // Period first: the quota is checked against it.
            ops.push(Op::write(&cpu, "cpu.cfs_period_us", limits.cpu_period_us));
            ops.push(Op::write(&cpu, "cpu.cfs_quota_us", limits.cpu_quota_us));
        }
        if let Some(mem) = self.dir_of("memory", parent, name) {
            // memory.memsw.limit_in_bytes (memory + swap) must always be >= memory.limit_in_bytes
            // (EINVAL otherwise): on a new cgroup both are unlimited, so set the
            // memory limit first, then pin memsw to it — no swap for the container.
            ops.push(Op::write(&mem, "memory.limit_in_bytes", limits.memory_bytes));
            ops.push(Op::Write {
                file: mem.join("memory.memsw.limit_in_bytes"),
                value: limits.memory_bytes.to_string(),
                if_exists: true,
            });
            ops.push(Op::write(&mem, "memory.swappiness", 0));
        }
        if let (Some(pids), Some(max)) = (self.dir_of("pids", parent, name), limits.pids_max) {
            ops.push(Op::write(&pids, "pids.max", max));
        }
        if let (Some(dev), true) = (self.dir_of("devices", parent, name), limits.restrict_devices) {
            // Deny all, then allow the short list: a new cgroup starts as its parent,
            // which allows everything.
            ops.push(Op::write(&dev, "devices.deny", "a"));
            ops.extend(devices::ALLOWED.iter().map(|r| Op::write(&dev, "devices.allow", r.v1_line())));
        }
        ops
    }

    /// The file whose "oom_kill" line counts the container's OOM kills.
    pub fn oom_file(&self, dirs: &[PathBuf]) -> Option<PathBuf> {
        let mount = self.by_controller.get("memory")?;
        dirs.iter().find(|d| d.starts_with(mount)).map(|d| d.join("memory.oom_control"))
    }

    /// Readings from the container's dirs (found by the controller's mount point).
    pub fn usage(&self, dirs: &[PathBuf]) -> Usage {
        let under = |controller: &str| -> Option<&PathBuf> {
            let mount = self.by_controller.get(controller)?;
            dirs.iter().find(|d| d.starts_with(mount))
        };
        let mut u = Usage::default();
        if let Some(d) = under("cpuacct") {
            u.cpu_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
        }
        if let Some(d) = under("memory") {
            u.memory_bytes = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            u.oom_kills = keyed_u64(&d.join("memory.oom_control"), "oom_kill").unwrap_or(0);
        }
        if let Some(d) = under("pids") {
            u.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const UBUNTU: &str = "\
30 25 0:26 / /sys/fs/cgroup rw shared:9 - tmpfs tmpfs ro,mode=755
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/pids rw,nosuid shared:17 - cgroup cgroup rw,pids
38 30 0:34 / /sys/fs/cgroup/devices rw,nosuid shared:18 - cgroup cgroup rw,devices
90 80 0:32 /docker/abc /mnt/bind rw - cgroup cgroup rw,memory
";

    #[test]
    fn separate_mounts_give_one_dir_each() {
        let m = Mounts::from_mountinfo(HYBRID).unwrap();
        m.check().unwrap();
        let dirs: Vec<String> = m.dirs("host-setup", "red").iter().map(|d| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu/host-setup/red",
                "/sys/fs/cgroup/cpuacct/host-setup/red",
                "/sys/fs/cgroup/memory/host-setup/red",
                "/sys/fs/cgroup/pids/host-setup/red",
                "/sys/fs/cgroup/devices/host-setup/red"
            ]
        );
    }

    #[test]
    fn co_mounted_controllers_share_a_dir_and_bind_mounts_are_ignored() {
        let m = Mounts::from_mountinfo(UBUNTU).unwrap();
        m.check().unwrap();
        let dirs: Vec<String> = m.dirs("p", "blue").iter().map(|d| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu,cpuacct/p/blue",
                "/sys/fs/cgroup/memory/p/blue",
                "/sys/fs/cgroup/pids/p/blue",
                "/sys/fs/cgroup/devices/p/blue"
            ]
        );
    }

    #[test]
    fn missing_controller_is_a_precondition_error() {
        let m = Mounts::from_mountinfo("35 30 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n").unwrap();
        let e = m.check().unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("cpuacct, memory, pids, devices not mounted"), "{e}");
    }

    #[test]
    fn ops_are_the_tutorial() {
        let m = Mounts::from_mountinfo(HYBRID).unwrap();
        let l = Limits { pids_max: Some(512), restrict_devices: true, ..Limits::TUTORIAL };
        let text = m.ops("host-setup", "red", &l).iter().flat_map(Op::shell).collect::<Vec<_>>().join("\n");
        assert!(text.contains("echo 512 > /sys/fs/cgroup/pids/host-setup/red/pids.max"));
        assert!(text.contains("echo a > /sys/fs/cgroup/devices/host-setup/red/devices.deny"));
        assert!(text.contains("echo 'c 1:3 rwm' > /sys/fs/cgroup/devices/host-setup/red/devices.allow"));
        assert!(text.contains("echo 40000 > /sys/fs/cgroup/cpu/host-setup/red/cpu.cfs_quota_us"));
        assert!(text.contains("echo 209715200 > /sys/fs/cgroup/memory/host-setup/red/memory.limit_in_bytes"));
        assert!(text.contains("echo 0 > /sys/fs/cgroup/memory/host-setup/red/memory.swappiness"));
        assert!(text.starts_with("mkdir -p /sys/fs/cgroup/cpu/host-setup/red\n"), "{text}");
        let ops = m.ops("host-setup", "red", &l);
        let period = ops.iter().position(|o| o.shell()[0].contains("cfs_period_us")).unwrap();
        let quota = ops.iter().position(|o| o.shell()[0].contains("cfs_quota_us")).unwrap();
        assert!(period < quota, "the period is written before the quota");
        let mem = ops.iter().position(|o| o.shell()[0].contains("memory.limit_in_bytes")).unwrap();
        let memsw = ops.iter().position(|o| o.shell()[0].contains("memsw")).unwrap();
        assert!(mem < memsw, "memory before memsw (memsw >= memory at all times)");
    }
}
