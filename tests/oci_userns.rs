//! hsrun with a user namespace from config.json: several uid and gid ranges
//! written by the host, one joined by path, bad maps refused. Checked against the
//! kernel: /proc/PID/uid_map, owners on disk, capabilities, devices, /sys and
//! /proc inside. Each test has its own --root, cgroup parent and host ids.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::hsrun_world::World;
use lab_tests::{seq, text};
use serde_json::{json, Value};

struct Oci(World);

impl std::ops::Deref for Oci {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl Oci {
    fn new() -> Oci {
        Oci(World::new("hsrun-userns-test"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "hsrun {}: {}", args.join(" "), text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// busybox-static as the root (a plain dir owned by the host's root, as the
    /// bundle has it); /data belongs to the container's root (`owner`: host ids).
    fn bundle(&self, id: &str, script: &str, owner: (u32, u32), patch: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.dir.path(id);
        let bin_dir = b.join("rootfs/bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "data"] {
            std::fs::create_dir_all(b.join("rootfs").join(d)).unwrap();
        }
        std::os::unix::fs::chown(b.join("rootfs/data"), Some(owner.0), Some(owner.1)).unwrap();
        std::fs::copy("/bin/busybox", bin_dir.join("busybox")).expect("busybox-static is missing");
        for a in ["sh", "cat", "echo", "id", "ls", "grep", "touch", "chown", "head", "wc", "stat"] {
            std::os::unix::fs::symlink("busybox", bin_dir.join(a)).unwrap();
        }
        let caps = ["CAP_CHOWN", "CAP_KILL"];
        let mut c = json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"],
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs"},
            "hostname": "userns",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "cgroupsPath": format!("/{}/{id}", self.parent),
                "resources": {"pids": {"limit": 64}},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                               {"type": "mount"}, {"type": "user"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        patch(&mut c);
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        b
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    fn wait_stopped(&self, id: &str) {
        for _ in 0..400 {
            if self.state(id)["status"] == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("{id} never stopped: {}", self.state(id));
    }

    /// `create` with its output in a file (the process inherits it).
    fn create(&self, id: &str, bundle: &Path) -> (bool, String) {
        let log = self.dir.path(&format!("create-{}.log", seq()));
        let f = std::fs::File::create(&log).unwrap();
        let st = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), id])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(&log).unwrap())
    }
}

/// Host ids no one uses, per test process: far above useradd's ranges and the pool's.
fn base() -> u32 {
    1_800_000_000 + (std::process::id() % 1000) * 50_000
}

/// /proc/PID/uid_map's lines as (inside, outside, count).
fn map_of(pid: i64, file: &str) -> Vec<(u32, u32, u32)> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    t.lines()
        .map(|l| {
            let v: Vec<u32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

fn ns_of(pid: impl std::fmt::Display) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap().display().to_string()
}

const SCRIPT: &str = "id > /data/id; touch /data/root-made; touch /data/chowned && chown 1000:1000 /data/chowned; \
     grep CapEff /proc/self/status > /data/caps; echo hi > /dev/null && echo null-ok > /data/null; \
     head -c 5 /dev/zero | wc -c > /data/zero; ls /sys/kernel > /data/sys; ls /sys/fs/cgroup > /data/cgroup; \
     ls /proc/1 > /data/proc; d=/sys/fs/cgroup; [ -e $d/cgroup.procs ] || d=$d/pids; \
     stat -c '%u %g' $d/cgroup.procs > /data/cgowner; grep -x $$ $d/cgroup.procs > /data/cgprocs; \
     grep -cE ' /sys/fs/cgroup(/[^ ]*)? ro,' /proc/self/mountinfo > /data/cgro";

#[test]
fn several_ranges_are_the_kernels_maps_and_owners() {
    let o = Oci::new();
    let id = o.id("maps");
    let b = base();
    let uids = [(0, b, 1000), (1000, b + 5000, 100)];
    let gids = [(0, b + 10_000, 1000), (1000, b + 20_000, 100)];
    let m = |v: &[(u32, u32, u32)]| -> Value {
        v.iter().map(|(c, h, n)| json!({"containerID": c, "hostID": h, "size": n})).collect()
    };
    let bundle = o.bundle(&id, SCRIPT, (b, b + 10_000), |c| {
        c["linux"]["uidMappings"] = m(&uids);
        c["linux"]["gidMappings"] = m(&gids);
    });
    let (ok, out) = o.create(&id, &bundle);
    assert!(ok, "create: {out}");
    let pid = o.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(map_of(pid, "uid_map"), uids, "uid_map is the config's");
    assert_eq!(map_of(pid, "gid_map"), gids, "gid_map is the config's");
    assert_ne!(ns_of(pid), ns_of("self"), "a user namespace of its own");
    o.ok(&["start", &id]);
    o.wait_stopped(&id);
    let data = bundle.join("rootfs/data");
    let read = |f: &str| std::fs::read_to_string(data.join(f)).unwrap_or_else(|e| panic!("{f}: {e}; {out}"));
    assert!(read("id").starts_with("uid=0 gid=0"), "root inside: {}", read("id"));
    let owner = |f: &str| {
        let md = std::fs::metadata(data.join(f)).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(owner("root-made"), (b, b + 10_000), "container root's file is the mapped host ids' on disk");
    assert_eq!(owner("chowned"), (b + 5000, b + 20_000), "container id 1000 is the second range's first host id");
    assert_eq!(read("caps").trim(), "CapEff:\t0000000000000021", "CAP_CHOWN and CAP_KILL only");
    assert_eq!(read("null"), "null-ok\n", "/dev/null is writable");
    assert_eq!(read("zero").trim(), "5", "/dev/zero is readable");
    assert!(!read("sys").is_empty(), "/sys is there");
    // The container's own cgroup (v2: /sys/fs/cgroup itself, v1: its pids dir),
    // bound from the host's tree: its files are the host root's, unmapped inside
    // (the overflow ids), and cgroup.procs lists the script's shell by its pid there.
    assert!(!read("cgroup").is_empty(), "/sys/fs/cgroup is there");
    let overflow = |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).unwrap().trim().to_string();
    let unmapped = format!("{} {}\n", overflow("overflowuid"), overflow("overflowgid"));
    assert_eq!(read("cgowner"), unmapped, "the host root's cgroup.procs, seen from the userns; ls: {}", read("cgroup"));
    assert!(!read("cgprocs").is_empty(), "the shell is in its cgroup's cgroup.procs; ls: {}", read("cgroup"));
    assert_ne!(read("cgro").trim(), "0", "/sys/fs/cgroup is read-only");
    assert!(read("proc").contains("status"), "/proc is there: {}", read("proc"));
    o.ok(&["delete", &id]);
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

/// A process of ours in a user namespace of its own whose maps the test writes.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_user_namespace_joined_by_path() {
    let o = Oci::new();
    let b = base() + 30_000;
    let own = ns_of("self");
    let holder = Holder(Command::new("unshare").args(["--user", "sleep", "600"]).spawn().unwrap());
    let hpid = holder.0.id();
    for _ in 0..400 {
        if ns_of(hpid) != own {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_ne!(ns_of(hpid), own, "unshare made its user namespace");
    std::fs::write(format!("/proc/{hpid}/uid_map"), format!("0 {b} 2000\n")).unwrap();
    std::fs::write(format!("/proc/{hpid}/gid_map"), format!("0 {b} 2000\n")).unwrap();
    let path = format!("/proc/{hpid}/ns/user");
    let id = o.id("joined");
    let bundle = o.bundle(&id, SCRIPT, (b, b), |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        ns.push(json!({"type": "user", "path": path}));
    });
    let (ok, out) = o.create(&id, &bundle);
    assert!(ok, "create: {out}");
    let pid = o.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(ns_of(pid), ns_of(hpid), "the container is in the namespace at {path}");
    assert_eq!(map_of(pid, "uid_map"), [(0, b, 2000)]);
    o.ok(&["start", &id]);
    o.wait_stopped(&id);
    let data = bundle.join("rootfs/data");
    let md = std::fs::metadata(data.join("root-made")).unwrap_or_else(|e| panic!("root-made: {e}; {out}"));
    assert_eq!((md.uid(), md.gid()), (b, b), "made by the joined namespace's root");
    assert_eq!(std::fs::read_to_string(data.join("zero")).unwrap().trim(), "5");
    assert!(std::fs::read_to_string(data.join("proc")).unwrap().contains("status"));
    o.ok(&["delete", &id]);
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    // A path that is not a user namespace: refused, nothing left.
    let id = o.id("wrong");
    let bundle = o.bundle(&id, "true", (b, b), |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        ns.push(json!({"type": "user", "path": format!("/proc/{hpid}/ns/uts")}));
    });
    let (ok, out) = o.create(&id, &bundle);
    assert!(!ok && out.contains("join the user namespace") && out.contains("EINVAL"), "{out}");
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

#[test]
fn bad_maps_are_refused_at_create() {
    let o = Oci::new();
    let b = base() + 40_000;
    let cases: [(&str, Value, Value); 3] = [
        (
            "linux.uidMappings[1]: overlaps linux.uidMappings[0]",
            json!([{"containerID": 0, "hostID": b, "size": 100}, {"containerID": 50, "hostID": b + 500, "size": 10}]),
            json!([{"containerID": 0, "hostID": b, "size": 100}]),
        ),
        (
            "linux.uidMappings: container id 0 is not mapped",
            json!([{"containerID": 1, "hostID": b, "size": 100}]),
            json!([{"containerID": 0, "hostID": b, "size": 100}]),
        ),
        (
            "linux.gidMappings[0]: size 0",
            json!([{"containerID": 0, "hostID": b, "size": 100}]),
            json!([{"containerID": 0, "hostID": b, "size": 0}]),
        ),
    ];
    for (want, uids, gids) in cases {
        let id = o.id("bad");
        let bundle = o.bundle(&id, "true", (b, b), |c| {
            c["linux"]["uidMappings"] = uids;
            c["linux"]["gidMappings"] = gids;
        });
        let (ok, out) = o.create(&id, &bundle);
        assert!(!ok && out.contains(want), "want {want:?}: {out}");
        assert_eq!(o.leftovers(&id), Vec::<String>::new());
    }
    // Maps without a user namespace.
    let id = o.id("nouserns");
    let bundle = o.bundle(&id, "true", (b, b), |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": b, "size": 1}]);
    });
    let (ok, out) = o.create(&id, &bundle);
    assert!(!ok && out.contains("linux.uidMappings: given without a user namespace"), "{out}");
}
