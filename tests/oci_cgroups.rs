//! hsrun's `linux.resources` beyond memory/cpu/pids, read back from the kernel's
//! cgroup files: cpusets (v1: every dir the runtime makes gets its parent's
//! cpus and mems, or no task could join it), memory.disableOOMKiller and
//! swappiness (v1's memory.oom_control and memory.swappiness; refused on v2),
//! blockIO throttles on a real disk of this machine (v1 blkio.throttle.*, v2
//! io.max), `hsrun update` of each, the refusals (a weight without BFQ/CFQ,
//! hugepageLimits, network) naming the config.json path, and no cgroup dir left
//! in any hierarchy after delete. Each test has its own --root, bundle and cgroup
//! parent (lab_tests::hsrun_world, label `hscg`), all removed on drop.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use lab_tests::hsrun_world::{hierarchies, World};
use lab_tests::text;
use serde_json::{json, Value};

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn read(f: &Path) -> String {
    std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display())).trim().to_string()
}

/// One test's hsrun world, with a busybox rootfs its containers share.
struct Oci(World);

impl std::ops::Deref for Oci {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl Oci {
    fn new() -> Oci {
        let w = World::new("hscg");
        let rootfs = w.dir.path("rootfs");
        for d in ["bin", "proc", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is missing");
        for a in ["sh", "sleep", "cat"] {
            symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        Oci(w)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "hsrun {}: {}", args.join(" "), text(&o));
        o
    }

    /// `hsrun create` of a container with `resources` in cgroup PARENT/`sub`ID;
    /// the failed create's output, or the started container's id.
    fn create(&self, name: &str, sub: &str, resources: Value) -> Result<String, String> {
        self.create_id(&self.id(name), sub, resources)
    }

    /// `create` of container `id` (named by `World::id`).
    fn create_id(&self, id: &str, sub: &str, resources: Value) -> Result<String, String> {
        let id = id.to_string();
        let bundle = self.dir.path(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sleep", "1000"], "cwd": "/", "env": ["PATH=/bin"]},
            "root": {"path": self.dir.s("rootfs")},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {
                "cgroupsPath": format!("/{}/{sub}{id}", self.parent),
                "namespaces": [{"type": "pid"}, {"type": "mount"}],
                "resources": resources
            }
        });
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let err = self.dir.path(&format!("{id}.stderr"));
        let st = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), &id])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let msg = std::fs::read_to_string(&err).unwrap_or_default();
        if !st.success() {
            assert_eq!(st.code(), Some(1), "{msg}");
            return Err(msg);
        }
        self.ok(&["start", &id]);
        Ok(id)
    }

    fn saved(&self, id: &str) -> Value {
        let p = self.root.join("containers").join(id).join("oci.json");
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    }

    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        self.saved(id)["cgroup_dirs"].as_array().unwrap().iter().map(|d| PathBuf::from(d.as_str().unwrap())).collect()
    }

    /// The container's `file` (v1: in the hierarchy that has it).
    fn file(&self, id: &str, name: &str) -> PathBuf {
        let dirs = self.dirs(id);
        dirs.iter().map(|d| d.join(name)).find(|f| f.exists()).unwrap_or_else(|| panic!("no {name} in {dirs:?}"))
    }

    /// `hsrun update --resources -` with `doc` on stdin.
    fn update(&self, id: &str, doc: Value) -> Output {
        let mut child = self
            .cmd(&["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(doc.to_string().as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Delete, then: no dir of the container (nor `sub`, nor the parent) in any hierarchy.
    fn delete_leaves_nothing(&self, id: &str, sub: &str) {
        let dirs = self.dirs(id);
        self.ok(&["delete", "--force", id]);
        for d in &dirs {
            assert!(!d.exists(), "{} left after delete", d.display());
        }
        for h in hierarchies() {
            let p = h.join(&self.parent);
            let left = if sub.is_empty() { p.clone() } else { p.join(sub.trim_end_matches('/')) };
            assert!(!left.exists(), "{} left after delete", left.display());
        }
        assert_eq!(self.leftovers(id), Vec::<String>::new(), "after delete");
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn refused(e: &str) -> bool {
    e.contains("EINVAL") || e.contains("ERANGE")
}

#[test]
fn cpusets_are_set_filled_updated_and_removed() {
    let oci = Oci::new();
    let all = if cpu_count() > 1 { format!("0-{}", cpu_count() - 1) } else { "0".into() };
    // Nested: the runtime makes PARENT and PARENT/nest too (v1: each filled from its parent).
    let id = oci.create("cpus", "nest/", json!({"cpu": {"cpus": "0", "mems": "0"}})).unwrap();
    assert_eq!(read(&oci.file(&id, "cpuset.cpus")), "0");
    assert_eq!(read(&oci.file(&id, "cpuset.mems")), "0");
    let effective = if v2() { "cpuset.cpus.effective" } else { "cpuset.effective_cpus" };
    assert_eq!(read(&oci.file(&id, effective)), "0");
    // The container's process is in it and bound to CPU 0.
    let pid = oci.saved(&id)["pid"].as_i64().unwrap();
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    assert!(status.lines().any(|l| l.split_whitespace().eq(["Cpus_allowed_list:", "0"])), "{status}");
    let cs = oci.file(&id, "cpuset.cpus").parent().unwrap().to_path_buf();
    assert!(read(&cs.join("cgroup.procs")).lines().any(|l| l == pid.to_string()));
    if !v2() {
        // The intermediate dirs got their parent's values (an empty one takes no task).
        let top = cs.parent().unwrap().parent().unwrap().parent().unwrap();
        for d in [cs.parent().unwrap(), cs.parent().unwrap().parent().unwrap()] {
            assert_eq!(read(&d.join("cpuset.cpus")), read(&top.join("cpuset.cpus")), "{}", d.display());
            assert_eq!(read(&d.join("cpuset.mems")), read(&top.join("cpuset.mems")), "{}", d.display());
        }
    }
    // update: the flags, then --resources.
    oci.ok(&["update", "--cpuset-cpus", &all, "--cpuset-mems", "0", &id]);
    assert_eq!(read(&oci.file(&id, "cpuset.cpus")), all);
    let o = oci.update(&id, json!({"cpu": {"cpus": "0"}}));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&oci.file(&id, "cpuset.cpus")), "0");
    // A CPU the parent does not have: the kernel's EINVAL (ERANGE past the last
    // possible CPU), naming the file and the value.
    let o = oci.run(&["update", "--cpuset-cpus", "0-999", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("cpuset.cpus") && text(&o).contains("0-999") && refused(&text(&o)), "{}", text(&o));
    oci.delete_leaves_nothing(&id, "nest/");
    // At create: refused the same way, and nothing is left.
    let bad = oci.id("bad");
    let e = oci.create_id(&bad, "", json!({"cpu": {"cpus": "0-999"}})).unwrap_err();
    assert!(e.contains("cpuset.cpus") && e.contains("0-999") && refused(&e), "{e}");
    assert!(e.contains("not within the parent's"), "{e}");
    assert_eq!(oci.leftovers(&bad), Vec::<String>::new(), "after a failed create");
}

#[test]
fn oom_killer_off_and_swappiness_on_v1_refused_on_v2() {
    let oci = Oci::new();
    let mem = json!({"memory": {"limit": 64 << 20, "swappiness": 10, "disableOOMKiller": true, "kernelTCP": 32 << 20}});
    if v2() {
        let e = oci.create("oom", "", mem).unwrap_err();
        assert!(e.contains("config.json: linux.resources.memory.swappiness"), "{e}");
        let e = oci.create("oom2", "", json!({"memory": {"limit": 64 << 20, "disableOOMKiller": true}})).unwrap_err();
        assert!(e.contains("config.json: linux.resources.memory.disableOOMKiller") && e.contains("v2"), "{e}");
        for h in hierarchies() {
            assert!(!h.join(&oci.parent).exists(), "{} left", h.join(&oci.parent).display());
        }
        return;
    }
    let id = oci.create("oom", "", mem).unwrap();
    let oom = read(&oci.file(&id, "memory.oom_control"));
    assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    assert_eq!(read(&oci.file(&id, "memory.swappiness")), "10");
    assert_eq!(read(&oci.file(&id, "memory.kmem.tcp.limit_in_bytes")), (32u64 << 20).to_string());
    let o = oci.update(&id, json!({"memory": {"swappiness": 60}}));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&oci.file(&id, "memory.swappiness")), "60");
    // Not given: the OOM killer stays on.
    let on = oci.create("on", "", json!({"memory": {"limit": 64 << 20}})).unwrap();
    assert!(read(&oci.file(&on, "memory.oom_control")).lines().any(|l| l == "oom_kill_disable 0"));
    oci.ok(&["delete", "--force", &on]);
    oci.delete_leaves_nothing(&id, "");
}

/// A whole disk of this machine, "MAJ:MIN": the one under / (its disk if / is on a
/// partition), else the first of /sys/block (the VM's root is an initramfs: loop0).
fn disk() -> String {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = mi.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.get(4) == Some(&"/"));
    let dev = root.map(|f| f[2].to_string()).unwrap_or_default();
    let sys = PathBuf::from(format!("/sys/dev/block/{dev}"));
    if sys.exists() {
        let sys = sys.canonicalize().unwrap();
        let disk = if sys.join("partition").exists() { sys.parent().unwrap().to_path_buf() } else { sys };
        return read(&disk.join("dev"));
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir("/sys/block").unwrap().flatten().map(|e| e.path()).collect();
    all.sort();
    read(&all.first().expect("no block device on this machine").join("dev"))
}

#[test]
fn block_io_throttles_are_written_and_updated() {
    let oci = Oci::new();
    let dev = disk();
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let t = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let id = oci
        .create(
            "blk",
            "",
            json!({"blockIO": {"weight": 0, "throttleReadBpsDevice": t(1 << 20), "throttleWriteBpsDevice": t(2 << 20),
                "throttleReadIOPSDevice": t(300), "throttleWriteIOPSDevice": t(400)}}),
        )
        .unwrap();
    if v2() {
        let max = read(&oci.file(&id, "io.max"));
        assert!(max.lines().any(|l| l == format!("{dev} rbps=1048576 wbps=2097152 riops=300 wiops=400")), "{max}");
    } else {
        for (f, v) in [("read_bps", 1u64 << 20), ("write_bps", 2 << 20), ("read_iops", 300), ("write_iops", 400)] {
            let got = read(&oci.file(&id, &format!("blkio.throttle.{f}_device")));
            assert_eq!(got, format!("{dev} {v}"), "blkio.throttle.{f}_device");
        }
    }
    let o = oci.update(&id, json!({"blockIO": {"weight": 0, "throttleWriteBpsDevice": t(5 << 20)}}));
    assert!(o.status.success(), "{}", text(&o));
    if v2() {
        let max = read(&oci.file(&id, "io.max"));
        assert!(
            max.lines().any(|l| l.starts_with(&dev) && l.contains("wbps=5242880") && l.contains("rbps=1048576")),
            "{max}"
        );
    } else {
        assert_eq!(read(&oci.file(&id, "blkio.throttle.write_bps_device")), format!("{dev} 5242880"));
    }
    oci.delete_leaves_nothing(&id, "");
}

#[test]
fn a_weight_is_written_where_the_kernel_has_the_file_else_refused() {
    let oci = Oci::new();
    // Docker's `"weight": 0` is "no weight": accepted.
    let id = oci.create("w0", "", json!({"blockIO": {"weight": 0}})).unwrap();
    oci.delete_leaves_nothing(&id, "");
    match oci.create("w", "", json!({"blockIO": {"weight": 500}})) {
        Ok(id) => {
            let names = if v2() { ["io.bfq.weight", "io.weight"] } else { ["blkio.weight", "blkio.bfq.weight"] };
            let f = oci.dirs(&id).iter().flat_map(|d| names.map(|n| d.join(n))).find(|f| f.exists()).unwrap();
            assert!(read(&f).lines().any(|l| l == "default 500" || l == "500"), "{}: {}", f.display(), read(&f));
            oci.delete_leaves_nothing(&id, "");
        }
        Err(e) => {
            assert!(e.contains("config.json: linux.resources.blockIO.weight"), "{e}");
            let name = if v2() { "io.weight" } else { "blkio.weight" };
            assert!(e.contains(name), "{e}");
            if !v2() {
                // This is what makes it a refusal: the kernel has no weight file at all.
                let b = Path::new("/sys/fs/cgroup/blkio");
                assert!(!b.join("blkio.weight").exists() && !b.join("blkio.bfq.weight").exists(), "{e}");
            }
            for h in hierarchies() {
                assert!(!h.join(&oci.parent).exists(), "{} left", h.join(&oci.parent).display());
            }
        }
    }
}

#[test]
fn hugepages_and_network_are_refused_naming_what_is_missing() {
    let oci = Oci::new();
    let e = oci.create("huge", "", json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]})).unwrap_err();
    assert!(e.contains("config.json: linux.resources.hugepageLimits"), "{e}");
    assert!(e.contains(if v2() { "hugetlb" } else { "no hugetlb cgroup hierarchy" }), "{e}");
    let e = oci.create("net", "", json!({"network": {"classID": 1048577}})).unwrap_err();
    assert!(e.contains("config.json: linux.resources.network"), "{e}");
    assert!(e.contains("net_cls"), "{e}");
    let e = oci.create("prio", "", json!({"network": {"priorities": [{"name": "eth0", "priority": 5}]}})).unwrap_err();
    assert!(e.contains("config.json: linux.resources.network") && e.contains("net_prio"), "{e}");
    for h in hierarchies() {
        assert!(!h.join(&oci.parent).exists(), "{} left after a refused create", h.join(&oci.parent).display());
    }
}

/// A nested cgroupsPath's parents: those the runtime made go with the container
/// (journalled as it made them), one that was there (the engine's: containerd's
/// namespace, a Kubernetes pod) stays, even when empty.
#[test]
fn parents_made_are_removed_a_parent_already_there_is_kept() {
    let oci = Oci::new();
    let id = oci.create("made", "nest/", json!({})).unwrap();
    oci.delete_leaves_nothing(&id, "nest/");
    for h in hierarchies() {
        let p = h.join(&oci.parent);
        assert!(!p.exists(), "{} (made by the container) left after delete", p.display());
    }
    // Now the parent is someone else's: made by the test (v1 cpuset: filled, or no task could join).
    for h in hierarchies() {
        let p = h.join(&oci.parent);
        std::fs::create_dir(&p).unwrap();
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if !v2() && h.join(f).exists() {
                std::fs::write(p.join(f), read(&h.join(f))).unwrap();
            }
        }
    }
    let id = oci.create("kept", "", json!({})).unwrap();
    let dirs = oci.dirs(&id);
    oci.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    for h in hierarchies() {
        let p = h.join(&oci.parent);
        assert!(p.is_dir(), "{}: a parent the container did not make was removed", p.display());
    }
}
