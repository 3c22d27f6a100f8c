//! hsrun's hooks as the runtime-spec says (docs/oci-runtime-hooks.md):
//! prestart, createRuntime (on the host), then createContainer hooks (run by
//! init in the container's namespaces) after its mounts, before the pivot; every hook reads the state JSON on stdin; a hook
//! past its timeout is killed and fails its step; a failing hook's stderr is in
//! hsrun's error. Bundles of busybox-static; each test has its own --root,
//! cgroup parent and ids, removed even when it fails.
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

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
        Oci(World::new("hsrun-hooks"))
    }

    /// `create`: the process gets hsrun's stdio, so a file here, not a pipe.
    fn create(&self, bundle: &Path, id: &str) -> (ExitStatus, String) {
        let log = self.dir.path(&format!("create-{}.log", seq()));
        let f = std::fs::File::create(&log).unwrap();
        let st = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), id])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        (st, std::fs::read_to_string(&log).unwrap())
    }

    fn state(&self, id: &str) -> Value {
        let o = self.run(&["state", id]);
        assert!(o.status.success(), "state: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// A bundle of busybox-static running `args`, with `hooks`, a tmpfs on
    /// /data and the test's dir bound on /out.
    fn bundle(&self, id: &str, args: &[&str], hooks: Value) -> PathBuf {
        let b = self.dir.path(id);
        let bin_dir = b.join("rootfs/bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        for d in ["proc", "dev", "tmp", "data", "out"] {
            std::fs::create_dir_all(b.join("rootfs").join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin_dir.join("busybox")).expect("busybox-static is missing");
        for a in ["sh", "cat", "touch"] {
            std::os::unix::fs::symlink("busybox", bin_dir.join(a)).unwrap();
        }
        let c = json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/", "env": ["PATH=/bin"]},
            "root": {"path": "rootfs"},
            "hostname": "hooks",
            "annotations": {"org.example.hooks": "yes"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
                {"destination": "/out", "type": "bind", "source": self.dir.0.to_str().unwrap(), "options": ["bind"]}
            ],
            "hooks": hooks,
            "linux": {
                "cgroupsPath": format!("/{}/{id}", self.parent),
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
            }
        });
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        b
    }
}

/// A hook running the host's /bin/sh with `script` (the path resolves in the
/// runtime's namespace for createContainer, in the container's for startContainer).
fn sh(script: &str, timeout: Option<u64>) -> Value {
    let mut h = json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"]});
    if let Some(t) = timeout {
        h["timeout"] = t.into();
    }
    h
}

fn wait_stopped(o: &Oci, id: &str) {
    for _ in 0..400 {
        if o.state(id)["status"] == "stopped" {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{id} never stopped: {}", o.state(id));
}

fn read_json(p: &Path) -> Value {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}: {s:?}", p.display()))
}

#[test]
fn create_container_hooks_run_in_the_container_and_every_hook_reads_the_state() {
    let o = Oci::new();
    let id = o.id("ns");
    let out = o.dir.0.clone();
    let create = sh(
        &format!(
            "readlink /proc/self/ns/mnt > {d}/cc.ns; cat /proc/self/mountinfo > {d}/cc.mounts; cat > {d}/cc.state",
            d = out.display()
        ),
        Some(10),
    );
    let start = sh("cat > /out/sc.state", Some(10));
    let bundle =
        o.bundle(&id, &["sh", "-c", "touch /out/ran"], json!({"createContainer": [create], "startContainer": [start]}));
    let (st, log) = o.create(&bundle, &id);
    assert!(st.success(), "create: {log}");
    let s = o.state(&id);
    let pid = s["pid"].as_i64().unwrap();

    // The hook's mount namespace is the container's, not hsrun's (the host's).
    let ns = std::fs::read_to_string(out.join("cc.ns")).unwrap();
    let container_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(ns.trim(), container_ns.to_str().unwrap(), "createContainer hook's mount namespace");
    assert_ne!(ns.trim(), std::fs::read_link("/proc/self/ns/mnt").unwrap().to_str().unwrap());
    // It sees the container's mounts (config.json's tmpfs on /data, still
    // under the bundle's root: before the pivot), which the host does not.
    let data = bundle.join("rootfs/data");
    let tmpfs_on_data = |m: &str| m.lines().any(|l| l.split(' ').nth(4) == data.to_str() && l.contains(" - tmpfs "));
    let mounts = std::fs::read_to_string(out.join("cc.mounts")).unwrap();
    assert!(tmpfs_on_data(&mounts), "no tmpfs on {} in the hook's mounts:\n{mounts}", data.display());
    assert!(!tmpfs_on_data(&std::fs::read_to_string("/proc/self/mountinfo").unwrap()));
    // Its stdin: the state, status "creating" (runc's), init's pid as the host sees it.
    let cc = read_json(&out.join("cc.state"));
    assert_eq!(cc["id"], id.as_str(), "{cc}");
    assert_eq!(cc["pid"], pid, "{cc}");
    assert_eq!(cc["status"], "creating", "{cc}");
    assert_eq!(cc["bundle"], bundle.to_str().unwrap(), "{cc}");
    assert_eq!(cc["ociVersion"], "1.0.2", "{cc}");
    assert_eq!(cc["annotations"]["org.example.hooks"], "yes", "{cc}");

    assert!(!out.join("sc.state").exists(), "startContainer ran before start");
    let o2 = o.run(&["start", &id]);
    assert!(o2.status.success(), "start: {}", text(&o2));
    // startContainer: inside (its /bin/sh is the container's busybox), after
    // start; status "created" (runc's), the same pid.
    let sc = read_json(&out.join("sc.state"));
    assert_eq!((&sc["id"], &sc["pid"], &sc["status"]), (&json!(id), &json!(pid), &json!("created")), "{sc}");
    assert_eq!(sc["bundle"], bundle.to_str().unwrap(), "{sc}");
    wait_stopped(&o, &id);
    assert!(out.join("ran").exists(), "the process ran after the hooks");
    let d = o.run(&["delete", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

#[test]
fn a_hook_past_its_timeout_fails_create_naming_it_and_leaves_nothing() {
    let o = Oci::new();
    let id = o.id("slow");
    let hook = o.dir.path("slow-hook.sh");
    std::fs::write(&hook, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let h = json!({"path": hook.to_str().unwrap(), "timeout": 1, "env": ["PATH=/usr/bin:/bin"]});
    let bundle = o.bundle(&id, &["true"], json!({"createContainer": [h]}));
    let t = Instant::now();
    let (st, log) = o.create(&bundle, &id);
    assert_eq!(st.code(), Some(1), "{log}");
    assert!(t.elapsed() < Duration::from_secs(20), "create waited {:?} for a hook of timeout 1 s", t.elapsed());
    assert!(
        log.contains(&format!("createContainer hook {}: killed after its timeout of 1 s", hook.display())),
        "{log}"
    );
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    assert_eq!(o.run(&["state", &id]).status.code(), Some(1), "no container is left");
}

#[test]
fn a_failing_hook_fails_its_step_with_its_exit_status_and_stderr() {
    let o = Oci::new();
    // createContainer (init) and prestart (hsrun, on the host): create fails.
    for (kind, word) in [("createContainer", "in-init"), ("prestart", "on-host")] {
        let id = o.id("bad");
        let h = sh(&format!("echo {word} hook says no >&2; exit 3"), None);
        let bundle = o.bundle(&id, &["true"], json!({ kind: [h] }));
        let (st, log) = o.create(&bundle, &id);
        assert_eq!(st.code(), Some(1), "{log}");
        let want = format!("{kind} hook /bin/sh: exit status 3, stderr: {word} hook says no");
        assert!(log.contains(&want), "{kind}: want {want:?} in:\n{log}");
        assert_eq!(o.leftovers(&id), Vec::<String>::new());
    }
    // startContainer: start fails with it, the process never runs.
    let id = o.id("badstart");
    let h = sh("echo start hook says no >&2; exit 4", None);
    let bundle = o.bundle(&id, &["touch", "/out/badstart-ran"], json!({"startContainer": [h]}));
    let (st, log) = o.create(&bundle, &id);
    assert!(st.success(), "create: {log}");
    let s = o.run(&["start", &id]);
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    let want = "startContainer hook /bin/sh: exit status 4, stderr: start hook says no";
    assert!(text(&s).contains(want), "want {want:?} in:\n{}", text(&s));
    wait_stopped(&o, &id);
    assert!(!o.dir.path("badstart-ran").exists(), "the process ran after a failed startContainer hook");
    let d = o.run(&["delete", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

/// A hook appending `KIND STATUS MNTNS ROOT` to `file`: its state's status, its
/// own mount namespace, and whether init's root is still "/" (stat of
/// /proc/PID/root/ against the hook's "/", PID from the state; not readlink:
/// a root pivoted in another mount namespace reads as "/" too).
fn order_hook(kind: &str, file: &Path, then: &str) -> Value {
    sh(
        &format!(
            "s=$(cat); pid=$(echo \"$s\" | sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); \
             st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); \
             [ \"$(stat -c %d:%i /proc/$pid/root/)\" = \"$(stat -c %d:%i /)\" ] && r=/ || r=pivoted; \
             echo {kind} $st $(readlink /proc/self/ns/mnt) $r >> {f}; {then}",
            f = file.display()
        ),
        Some(10),
    )
}

#[test]
fn prestart_then_create_runtime_on_the_host_then_create_container_all_before_the_pivot() {
    let o = Oci::new();
    let id = o.id("order");
    let order = o.dir.path("order");
    let hooks = json!({
        "prestart": [order_hook("prestart", &order, "")],
        "createRuntime": [order_hook("createRuntime", &order, "")],
        "createContainer": [order_hook("createContainer", &order, "")],
    });
    let bundle = o.bundle(&id, &["true"], hooks);
    let (st, log) = o.create(&bundle, &id);
    assert!(st.success(), "create: {log}");
    let pid = o.state(&id)["pid"].as_i64().unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap().display().to_string();
    let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap().display().to_string();
    assert_ne!(host_ns, init_ns);
    let got = std::fs::read_to_string(&order).unwrap();
    let got: Vec<Vec<&str>> = got.lines().map(|l| l.split(' ').collect()).collect();
    // Every hook before the pivot: init's root is still the host's "/" (now
    // it is the bundle's rootfs). prestart's status is "created" (runtime-tools'
    // hooks_stdin asserts it), createRuntime's and createContainer's "creating".
    let want = vec![
        vec!["prestart", "created", host_ns.as_str(), "/"],
        vec!["createRuntime", "creating", host_ns.as_str(), "/"],
        vec!["createContainer", "creating", init_ns.as_str(), "/"],
    ];
    assert_eq!(got, want, "hooks' order, namespaces and init's root");
    use std::os::unix::fs::MetadataExt;
    let (root, host) = (std::fs::metadata(format!("/proc/{pid}/root/")).unwrap(), std::fs::metadata("/").unwrap());
    assert_ne!((root.dev(), root.ino()), (host.dev(), host.ino()), "init pivoted after the hooks");
    let d = o.run(&["delete", "--force", &id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
}

#[test]
fn a_failing_create_runtime_hook_fails_create_before_create_container_hooks_and_leaves_nothing() {
    let o = Oci::new();
    let id = o.id("crfail");
    let order = o.dir.path("crfail-order");
    let hooks = json!({
        "prestart": [order_hook("prestart", &order, "")],
        "createRuntime": [order_hook("createRuntime", &order, "echo runtime hook says no >&2; exit 5")],
        "createContainer": [order_hook("createContainer", &order, "")],
    });
    let bundle = o.bundle(&id, &["touch", "/out/crfail-ran"], hooks);
    let (st, log) = o.create(&bundle, &id);
    assert_eq!(st.code(), Some(1), "{log}");
    let want = "createRuntime hook /bin/sh: exit status 5, stderr: runtime hook says no";
    assert!(log.contains(want), "want {want:?} in:\n{log}");
    let got = std::fs::read_to_string(&order).unwrap();
    let kinds: Vec<&str> = got.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
    assert_eq!(kinds, ["prestart", "createRuntime"], "createContainer must not run:\n{got}");
    assert!(!o.dir.path("crfail-ran").exists());
    assert_eq!(o.leftovers(&id), Vec::<String>::new());
    assert_eq!(o.run(&["state", &id]).status.code(), Some(1), "no container is left");
}
