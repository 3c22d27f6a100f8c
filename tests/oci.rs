//! hsrun, the OCI runtime: bundles made here from busybox-static, driven with
//! runc's command line as engines do, checked against the kernel. Each test has
//! its own --root, cgroup parent and ids, removed even when it fails.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lab_tests::hsrun_world::World;
use lab_tests::{bin, seq, text};
use serde_json::{json, Value};

/// One test's world: a state root, a cgroup parent, bundles; Drop deletes every
/// container it made (--force) and removes the rest.
struct Oci(World);

impl std::ops::Deref for Oci {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl Oci {
    fn new() -> Oci {
        Oci(World::new("hsrun-test"))
    }

    /// For `create`: the container's process gets hsrun's stdout and stderr (as
    /// engines want), so they are a file here, not pipes whose EOF would wait for it.
    fn create(&self, args: &[&str], fault: Option<&str>) -> (std::process::ExitStatus, String) {
        let log = self.dir.path(&format!("create-{}.log", seq()));
        let f = std::fs::File::create(&log).unwrap();
        let mut c = self.cmd(args);
        if let Some(fault) = fault {
            c.env("HOST_SETUP_FAULT", fault);
        }
        let st = c.stdout(f.try_clone().unwrap()).stderr(f).status().unwrap();
        (st, std::fs::read_to_string(&log).unwrap())
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "hsrun {}: {}", args.join(" "), text(&o));
        o
    }

    /// A bundle: busybox-static as the root, `config` patched over runc's defaults.
    fn bundle(&self, id: &str, args: &[&str], patch: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.dir.path(id);
        let bin_dir = b.join("rootfs/bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        for d in ["proc", "dev", "sys", "tmp", "etc", "data"] {
            std::fs::create_dir_all(b.join("rootfs").join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin_dir.join("busybox")).expect("busybox-static is missing");
        for a in ["sh", "cat", "echo", "id", "hostname", "sleep", "ls", "grep", "touch", "pwd", "wc"] {
            std::os::unix::fs::symlink("busybox", bin_dir.join(a)).unwrap();
        }
        let mut c = json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
                "env": ["PATH=/bin"],
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs"},
            "hostname": "oci",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "cgroupsPath": format!("/{}/{id}", self.parent),
                "resources": {"memory": {"limit": 100 << 20}, "pids": {"limit": 64}},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        patch(&mut c);
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        b
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_slice(&self.ok(&["state", id]).stdout).unwrap()
    }
}

fn b(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn wait_status(o: &Oci, id: &str, want: &str) {
    for _ in 0..200 {
        if o.state(id)["status"] == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{id} never became {want}: {}", o.state(id));
}

#[test]
fn create_start_state_delete_leaves_nothing() {
    let o = Oci::new();
    let id = o.id("life");
    let bundle = o.bundle(&id, &["sh", "-c", "echo hello from $(hostname)"], |_| {});
    let out = o.dir.path("life.out");
    let pidfile = o.dir.path("life.pid");
    let f = std::fs::File::create(&out).unwrap();
    let st = o
        .cmd(&["create", "--bundle", b(&bundle), "--pid-file", b(&pidfile), &id])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    assert!(st.success(), "create: {}", std::fs::read_to_string(&out).unwrap());
    let s = o.state(&id);
    assert_eq!(s["status"], "created", "{s}");
    let pid = s["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string(), "--pid-file: the pid, no newline");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::fs::read_to_string(&out).unwrap().is_empty(), "nothing ran before start");
    assert!(
        o.root.join("containers").join(&id).join("netns").exists(),
        "the new netns is bound in the container's dir"
    );
    o.ok(&["start", &id]);
    wait_status(&o, &id, "stopped");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello from oci\n");
    o.ok(&["delete", &id]);
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    let e = o.run(&["state", &id]);
    assert_eq!(e.status.code(), Some(1));
    assert!(text(&e).contains("does not exist"), "{}", text(&e));
    // As runc: `delete --force` of an unknown container succeeds (podman runs it
    // after its own delete), a plain `delete` does not.
    assert_eq!(o.run(&["delete", &id]).status.code(), Some(1));
    o.ok(&["delete", "--force", &id]);
}

#[test]
fn run_passes_on_the_exit_code_and_sigterm_is_143() {
    let o = Oci::new();
    let id = o.id("code");
    let bundle = o.bundle(&id, &["sh", "-c", "exit 7"], |_| {});
    let r = o.run(&["run", "-b", b(&bundle), &id]);
    assert_eq!(r.status.code(), Some(7), "{}", text(&r));
    assert_eq!(o.leftovers(&id), Vec::<String>::new(), "run deletes the container once its process exits");
    // Not PID 1 of its own pid namespace (there SIGTERM's default is ignored): killed by it.
    let id = o.id("term");
    let bundle = o.bundle(&id, &["sleep", "100"], |c| {
        c["linux"]["namespaces"] = json!([{"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    });
    let waiter =
        o.cmd(&["run", "--bundle", b(&bundle), &id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    for _ in 0..200 {
        if o.run(&["state", &id]).status.success() && o.state(&id)["status"] == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    o.ok(&["kill", &id, "SIGTERM"]);
    let r = waiter.wait_with_output().unwrap();
    assert_eq!(r.status.code(), Some(143), "{}", text(&r));
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

#[test]
fn the_config_is_what_runs_inside() {
    let o = Oci::new();
    let id = o.id("in");
    let host_dir = o.dir.path("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from the host\n").unwrap();
    let script = "id -u; id -g; id -G; pwd; echo $GREETING; hostname; cat /proc/sys/kernel/domainname; ulimit -n; \
                  grep CapEff /proc/self/status; grep CapAmb /proc/self/status; grep NoNewPrivs /proc/self/status; cat /data/f; \
                  touch /data/x 2>/dev/null || echo data-ro; cat /proc/cmdline | wc -c; ls /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro; \
                  cat /proc/sys/net/ipv4/ip_forward";
    let bundle = o.bundle(&id, &["sh", "-c", script], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002]});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"] = json!(["PATH=/bin", "GREETING=hi"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}]);
        c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"], "ambient": ["CAP_CHOWN", "CAP_KILL"], "inheritable": ["CAP_CHOWN"]});
        c["domainname"] = json!("example.org");
        c["hostname"] = json!("inside");
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro"]}));
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["linux"]["maskedPaths"] = json!(["/proc/cmdline", "/sys/firmware"]);
    });
    let r = o.run(&["run", "--bundle", b(&bundle), &id]);
    assert!(r.status.success(), "{}", text(&r));
    let lines: Vec<String> = String::from_utf8_lossy(&r.stdout).lines().map(String::from).collect();
    let want = [
        "1000",
        "1001",
        "1001 1002",
        "/tmp",
        "hi",
        "inside",
        "example.org",
        "77",
        "CapEff:\t0000000000000001",
        // CAP_KILL is not inheritable: the kernel refuses it as ambient, and
        // hsrun warns and leaves it out, as runc and crun do.
        "CapAmb:\t0000000000000001",
        "NoNewPrivs:\t1",
        "from the host",
        "data-ro",
        "0",
        "0",
        "sys-ro",
        "1",
    ];
    assert_eq!(lines, want, "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stderr);
    assert!(said.contains("process.capabilities.ambient: CAP_KILL not both permitted and inheritable"), "{said}");
    assert!(!host_dir.join("x").exists());
}

fn refused(o: &Oci, args: &[&str], want: &str) {
    let (st, out) = o.create(args, None);
    assert_eq!(st.code(), Some(1), "hsrun {}: {out}", args.join(" "));
    assert!(out.contains(want), "hsrun {}: {out} (wanted {want:?})", args.join(" "));
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let o = Oci::new();
    type Patch = fn(&mut Value);
    let cases: [(&str, Patch, &str); 4] = [
        ("args", |c| c["process"]["args"] = json!("sh"), "config.json: process.args: invalid type: string \"sh\""),
        ("ver", |c| c["ociVersion"] = json!("2.0.0"), "ociVersion: \"2.0.0\" is not supported"),
        (
            "ns",
            |c| c["linux"]["namespaces"][0]["type"] = json!("nope"),
            "config.json: linux.namespaces[0].type: unknown variant `nope`",
        ),
        ("root", |c| c["root"]["path"] = json!("missing"), "config.json: root.path:"),
    ];
    for (tag, patch, want) in cases {
        let id = o.id(tag);
        let bundle = o.bundle(&id, &["true"], patch);
        refused(&o, &["create", "--bundle", b(&bundle), &id], want);
        assert_eq!(o.leftovers(&id), Vec::<String>::new(), "{tag}");
    }
    // A duplicate id, start twice, delete of a running container.
    let id = o.id("dup");
    let bundle = o.bundle(&id, &["sleep", "100"], |_| {});
    let (st, out) = o.create(&["create", "--bundle", b(&bundle), &id], None);
    assert!(st.success(), "{out}");
    refused(&o, &["create", "--bundle", b(&bundle), &id], &format!("container {id} already exists"));
    assert_eq!(o.state(&id)["status"], "created", "the first one is untouched");
    o.ok(&["start", &id]);
    refused(&o, &["start", &id], "it is running");
    refused(&o, &["delete", &id], "it is running; stop it first or use --force");
    assert_eq!(o.state(&id)["status"], "running");
    o.ok(&["delete", "--force", &id]);
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    refused(&o, &["kill", &id, "KILL"], "does not exist");
    refused(&o, &["nope"], "unknown command");
}

/// `--systemd-cgroup` (containerd's and Kubernetes' systemd cgroup driver): on a
/// host without systemd (this machine kind) a clear refusal naming what is
/// missing, for every verb; a `slice:prefix:name` cgroupsPath without the flag is
/// refused too. The scopes themselves are checked in tests/vm/systemd.
#[test]
fn systemd_cgroup_without_systemd_is_refused_clearly() {
    let o = Oci::new();
    let id = o.id("sd");
    let bundle = o.bundle(&id, &["true"], |c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:hsrun:{id}")));
    let sd = ["--systemd-cgroup", "create", "--bundle", b(&bundle), &id];
    if std::path::Path::new("/run/systemd/system").exists() {
        // A systemd host: the path rules still refuse before anything is made.
        let bad = o.bundle(&o.id("sdbad"), &["true"], |c| c["linux"]["cgroupsPath"] = json!("/not/a/slice"));
        refused(&o, &["--systemd-cgroup", "create", "--bundle", b(&bad), "sdbad"], "must be slice:prefix:name");
    } else {
        let want =
            "hsrun: --systemd-cgroup: this host does not run systemd (no /run/systemd/system): drop --systemd-cgroup";
        refused(&o, &sd, want);
        refused(&o, &["--systemd-cgroup", "delete", "--force", &id], want);
    }
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    refused(
        &o,
        &sd[1..],
        &format!("config.json: linux.cgroupsPath: \"system.slice:hsrun:{id}\" is a systemd slice:prefix:name path: pass --systemd-cgroup"),
    );
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

#[test]
fn sigkill_of_hsrun_then_delete_force_leaves_nothing() {
    let o = Oci::new();
    // In the middle of create (its cgroup journalled, not made yet), and after
    // the launch (init waiting for start, no state written).
    for (tag, fault) in [("mid", "cgroups:recorded:kill"), ("late", "launch:after:kill")] {
        let id = o.id(tag);
        let bundle = o.bundle(&id, &["sleep", "100"], |_| {});
        let (st, out) = o.create(&["create", "--bundle", b(&bundle), &id], Some(fault));
        assert_eq!(st.signal_or_code(), Some(-9), "{fault}: {out}");
        assert!(!o.leftovers(&id).is_empty(), "{fault}: something was made");
        o.ok(&["delete", "--force", &id]);
        assert_eq!(o.leftovers(&id), Vec::<String>::new(), "{fault}");
    }
}

trait SignalOrCode {
    fn signal_or_code(&self) -> Option<i32>;
}

impl SignalOrCode for std::process::ExitStatus {
    fn signal_or_code(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.signal().map(|s| -s).or(self.code())
    }
}

/// The ipc, uts and pid namespaces of a running container, joined by path by a
/// second one (how Kubernetes' pods share them): same namespaces on the host, the
/// first's hostname, its processes seen.
#[test]
fn joins_another_containers_namespaces_by_path() {
    let o = Oci::new();
    let pod = o.id("pod");
    let bundle = o.bundle(&pod, &["sleep", "100"], |c| c["hostname"] = json!("the-pod"));
    let (st, out) = o.create(&["create", "--bundle", b(&bundle), &pod], None);
    assert!(st.success(), "{out}");
    o.ok(&["start", &pod]);
    let pid = o.state(&pod)["pid"].as_i64().unwrap();
    let id = o.id("member");
    let ns = |t: &str| format!("/proc/{pid}/ns/{t}");
    let script = "hostname; cat /proc/1/comm; echo $$; sleep 100";
    let bundle = o.bundle(&id, &["sh", "-c", script], |c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["namespaces"] = json!([
            {"type": "pid", "path": ns("pid")}, {"type": "ipc", "path": ns("ipc")},
            {"type": "uts", "path": ns("uts")}, {"type": "network"}, {"type": "mount"}
        ]);
    });
    let out = o.dir.path("member.out");
    let f = std::fs::File::create(&out).unwrap();
    let st = o.cmd(&["create", "--bundle", b(&bundle), &id]).stdout(f.try_clone().unwrap()).stderr(f).status().unwrap();
    assert!(st.success(), "create: {}", std::fs::read_to_string(&out).unwrap());
    let member = o.state(&id)["pid"].as_i64().unwrap();
    for t in ["pid", "ipc", "uts"] {
        let link = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/{t}")).unwrap();
        assert_eq!(link(member), link(pid), "{t}: the member is in the pod's namespace");
    }
    let mnt = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(mnt(member), mnt(pid), "a mount namespace of its own");
    assert_ne!(
        std::fs::read_link("/proc/self/ns/uts").unwrap(),
        std::fs::read_link(ns("uts")).unwrap(),
        "hsrun went back to its own namespaces"
    );
    o.ok(&["start", &id]);
    let mut lines = vec![];
    for _ in 0..200 {
        lines = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
        if lines.len() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(lines[..2], ["the-pod", "sleep"], "the pod's hostname and its PID 1: {lines:?}");
    assert_ne!(lines[2], "1", "not PID 1: the pod's pid namespace");
}

/// `run --preserve-fds 2` (systemd socket activation, podman's --preserve-fds):
/// the caller's fds 3 and 4 are the process's 3 and 4, and nothing of init's is left.
#[test]
fn preserve_fds_reach_the_process() {
    let o = Oci::new();
    let id = o.id("fds");
    let (a, c) = (o.dir.path("fd3"), o.dir.path("fd4"));
    std::fs::write(&a, "three\n").unwrap();
    std::fs::write(&c, "four\n").unwrap();
    // ls lists its own fds: 0-4 and the directory it reads (5). Not `ls /proc/$$/fd |
    // wc -l`: the shell may still hold the pipe when ls reads its fd dir (a race).
    let bundle = o.bundle(&id, &["sh", "-c", "cat <&3; cat <&4; exec ls /proc/self/fd"], |_| {});
    let line = format!(
        "exec {} --root {} run --preserve-fds 2 --bundle {} {id} 3<{} 4<{}",
        bin("hsrun").display(),
        o.root.display(),
        b(&bundle),
        a.display(),
        c.display()
    );
    let r = Command::new("sh").args(["-c", &line]).stdin(Stdio::null()).output().unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "three\nfour\n0\n1\n2\n3\n4\n5\n", "fds 0-4 only: {}", text(&r));
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}
