//! hsrun's verbs besides create/start/kill/delete, against real containers made
//! by `hsrun create` + `start` from a busybox bundle: exec (output, exit code,
//! --detach + --pid-file, user/cwd/env, --process; a tty through a console
//! socket the test listens on in oci_verbs/tty.rs), ps, list, pause/resume (the
//! freezer), update (read back from the cgroup files), features. Each test has its own --root,
//! bundle and cgroup parent (lab_tests::hsrun_world, label `hsverbs`), all removed on drop.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lab_tests::hsrun_world::World;
use lab_tests::{seq, stdout, text, wait_for};
use serde_json::{json, Value};

/// exec --tty: the pty master over a console socket, with and without devpts.
#[path = "oci_verbs/tty.rs"]
mod tty;

/// A private hsrun world (--root, cgroup parent, bundles), with a busybox rootfs
/// all its containers share.
struct Oci(World);

impl std::ops::Deref for Oci {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl Oci {
    fn new() -> Oci {
        let w = World::new("hsverbs");
        let rootfs = w.dir.path("rootfs");
        for d in ["bin", "proc", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static is missing");
        for a in ["sh", "sleep", "echo", "cat", "id", "pwd", "env", "true", "ps", "tty", "stat", "grep"] {
            symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        Oci(w)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "hsrun {}: {}", args.join(" "), text(&o));
        o
    }

    /// The container's cgroup dir holding `file` (v1: the hierarchy that has it).
    fn cgroup_file(&self, id: &str, file: &str) -> PathBuf {
        let st = self.saved(id);
        let dirs: Vec<PathBuf> =
            st["cgroup_dirs"].as_array().unwrap().iter().map(|d| PathBuf::from(d.as_str().unwrap())).collect();
        dirs.iter().map(|d| d.join(file)).find(|f| f.exists()).unwrap_or_else(|| panic!("no {file} in {dirs:?}"))
    }

    /// ROOT/containers/ID/oci.json.
    fn saved(&self, id: &str) -> Value {
        let p = self.root.join("containers").join(id).join("oci.json");
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
    }

    /// Create and start a container running `args` as its PID 1; returns its id.
    fn container(&self, name: &str, args: &[&str]) -> String {
        self.container_with(name, args, true)
    }

    /// `container`, with or without a devpts on /dev/pts.
    fn container_with(&self, name: &str, args: &[&str], devpts: bool) -> String {
        let id = self.id(name);
        self.create_start(&id, args, devpts);
        id
    }

    /// `hsrun create` + `start` of container `id` (named by `World::id`).
    fn create_start(&self, id: &str, args: &[&str], devpts: bool) {
        let id = id.to_string();
        let bundle = self.dir.path(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        let caps = json!([
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_NET_BIND_SERVICE"
        ]);
        let mut config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
                "env": ["PATH=/bin", "HOME=/", "FROM_CONFIG=yes"],
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": self.dir.s("rootfs")},
            "hostname": "verbs",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                // exec --tty: init opens the pty from the container's devpts (runc needs it too).
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
            ],
            "linux": {
                "cgroupsPath": format!("/{}/{id}", self.parent),
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
                "resources": {"memory": {"limit": 256 << 20}, "pids": {"limit": 100}}
            }
        });
        if !devpts {
            config["mounts"].as_array_mut().unwrap().retain(|m| m["type"] != "devpts");
        }
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        // The container keeps create's stdio: nothing the test would wait on.
        let err = self.dir.path(&format!("{id}.stderr"));
        let o = self
            .cmd(&["create", "--bundle", bundle.to_str().unwrap(), &id])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        assert!(o.success(), "hsrun create {id}: {o:?}: {}", std::fs::read_to_string(&err).unwrap_or_default());
        self.ok(&["start", &id]);
    }

    fn pid(&self, id: &str) -> i32 {
        self.saved(id)["pid"].as_i64().unwrap() as i32
    }

    fn status(&self, id: &str) -> String {
        let st: Value = serde_json::from_slice(&self.ok(&["state", id]).stdout).unwrap();
        st["status"].as_str().unwrap().to_string()
    }

    /// `hsrun exec --detach ARGS`: the process keeps hsrun's stdout and stderr, so
    /// they go to files (a pipe would stay open as long as the process runs).
    fn exec_detached(&self, args: &[&str]) -> (std::process::ExitStatus, String) {
        let err = self.dir.path(&format!("exec-{}.stderr", seq()));
        let mut a = vec!["exec", "--detach"];
        a.extend_from_slice(args);
        let status = self.cmd(&a).stdout(Stdio::null()).stderr(std::fs::File::create(&err).unwrap()).status().unwrap();
        (status, std::fs::read_to_string(&err).unwrap_or_default())
    }

    /// `hsrun exec ARGS` with its output.
    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        self.run(&a)
    }
}

fn lines(o: &Output) -> Vec<String> {
    stdout(o).lines().map(String::from).collect()
}

#[test]
fn exec_output_exit_code_and_process_file() {
    let oci = Oci::new();
    let id = oci.container("out", &["sleep", "1000"]);
    let o = oci.exec(&[&id, "sh", "-c", "echo hello from $(cat /proc/sys/kernel/hostname); exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(stdout(&o), "hello from verbs\n");
    // In the container's pid namespace: its PID 1 is the container's process.
    let o = oci.exec(&[&id, "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout(&o).replace('\0', " ").trim(), "sleep 1000", "{}", text(&o));
    // Not found: the shell's 127.
    assert_eq!(oci.exec(&[&id, "no-such-command"]).status.code(), Some(127));
    // --process: a runtime-spec Process as containerd's shim writes it.
    let process = json!({"args": ["sh", "-c", "echo $GREETING; pwd; id -u"], "cwd": "/tmp",
        "env": ["PATH=/bin", "GREETING=hi"], "user": {"uid": 42, "gid": 42}});
    let file = oci.dir.path("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let o = oci.exec(&["--process", file.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lines(&o), ["hi", "/tmp", "42"]);
}

#[test]
fn exec_user_cwd_env_caps() {
    let oci = Oci::new();
    let id = oci.container("user", &["sleep", "1000"]);
    let o = oci.exec(&["-u", "1000:1001", "--cwd", "/tmp", "-e", "FOO=bar", "-e", "FROM_CONFIG=over", &id, "sh", "-c",
        "id -u; id -g; pwd; echo $FOO $FROM_CONFIG $HOME; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status"]);
    assert!(o.status.success(), "{}", text(&o));
    let l = lines(&o);
    assert_eq!(&l[..4], ["1000", "1001", "/tmp", "bar over /"], "{}", text(&o));
    // A non-root user keeps no effective capabilities (no ambient set), and the
    // config's noNewPrivileges holds for exec too.
    assert_eq!(l[4].split_whitespace().nth(1), Some("0000000000000000"), "{l:?}");
    assert_eq!(l[5].split_whitespace().nth(1), Some("1"), "{l:?}");
    // As root: the config's capability set, exactly (CAP_KILL is bit 5), and --cap adds one.
    let o = oci.exec(&["--cap", "CAP_NET_RAW", &id, "grep", "CapBnd", "/proc/self/status"]);
    let mask = stdout(&o).split_whitespace().nth(1).and_then(|m| u64::from_str_radix(m, 16).ok());
    let mask = mask.unwrap_or_else(|| panic!("no CapBnd: {}", text(&o)));
    let want = [0, 1, 3, 5, 6, 7, 10, 13].iter().fold(0u64, |m, b| m | 1 << b);
    assert_eq!(mask, want, "{}", text(&o));
}

#[test]
fn exec_detach_writes_the_pid_file() {
    let oci = Oci::new();
    let id = oci.container("det", &["sleep", "1000"]);
    let pid_file = oci.dir.path("exec.pid");
    let t0 = Instant::now();
    let (status, err) = oci.exec_detached(&["--pid-file", pid_file.to_str().unwrap(), &id, "sleep", "500"]);
    assert!(status.success(), "{status:?}: {err}");
    assert!(t0.elapsed() < Duration::from_secs(10), "--detach returns at once");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline.replace('\0', " ").trim(), "sleep 500");
    // It lives in the container: its pid namespace and its cgroups.
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(ns(pid), ns(oci.pid(&id)));
    let procs = std::fs::read_to_string(oci.cgroup_file(&id, "cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{pid} not in {procs}");
    // ps --format json: exactly the container's processes, PID 1 and this one.
    let o = oci.ok(&["ps", "--format", "json", &id]);
    let mut pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
    pids.sort_unstable();
    let mut want = vec![oci.pid(&id) as i64, pid as i64];
    want.sort_unstable();
    assert_eq!(pids, want, "{}", text(&o));
    // The table: ps -ef's header and the container's lines only.
    let o = oci.ok(&["ps", &id]);
    let l = lines(&o);
    assert!(l[0].contains("PID") && l[0].contains("CMD"), "{l:?}");
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[1..].iter().all(|x| x.contains("sleep")), "{l:?}");
    // list: the container, running.
    let all: Value = serde_json::from_slice(&oci.ok(&["list", "--format", "json"]).stdout).unwrap();
    let me = all.as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("listed");
    assert_eq!((me["status"].as_str(), me["pid"].as_i64()), (Some("running"), Some(oci.pid(&id) as i64)));
    assert_eq!(lines(&oci.ok(&["list", "-q"])), std::slice::from_ref(&id));
    // A command that cannot be exec'd fails hsrun itself, as with runc.
    let (status, err) = oci.exec_detached(&[&id, "no-such-command"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-command"), "{err}");
}

/// The counter the container's loop writes (rootfs/tmp/count-ID).
fn counter(oci: &Oci, id: &str) -> u64 {
    std::fs::read_to_string(oci.dir.path("rootfs/tmp").join(format!("count-{id}")))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_stops_the_container_and_resume_goes_on() {
    let oci = Oci::new();
    let id = oci.id("pause");
    let script = format!("i=0; while :; do i=$((i+1)); echo $i > /tmp/count-{id}; done");
    oci.create_start(&id, &["sh", "-c", &script], true);
    wait_for("the counter to run", || (counter(&oci, &id) > 10).then_some(()));
    oci.ok(&["pause", &id]);
    assert_eq!(oci.status(&id), "paused");
    let frozen = counter(&oci, &id);
    // The freezer's own word (v2 cgroup.events "frozen 1" once every task has
    // stopped; v1 freezer.state FROZEN, not FREEZING), then the counting loop
    // parked by it: v1 in __refrigerator, v2 in do_freezer_trap (its wchan). Only
    // the loop: since Linux 6.1 a task asleep in a freezable wait (a sigtimedwait)
    // is frozen where it sleeps, and its wchan stays there. The v2 trap may read
    // get_signal: Debian's 6.1 inlines do_freezer_trap into it (seen in the v2 VM).
    let (file, traps): (_, &[&str]) = if v2() {
        ("cgroup.events", &["do_freezer_trap", "get_signal"])
    } else {
        ("freezer.state", &["__refrigerator"])
    };
    let state = oci.cgroup_file(&id, file);
    let said = std::fs::read_to_string(&state).unwrap();
    assert!(said.lines().any(|l| l == "frozen 1" || l == "FROZEN"), "{}: {said}", state.display());
    let procs = std::fs::read_to_string(state.with_file_name("cgroup.procs")).unwrap();
    let looping = procs.lines().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("count-"))
    });
    let looping = looping.unwrap_or_else(|| panic!("no counting loop among {procs:?}"));
    let wchan = std::fs::read_to_string(format!("/proc/{looping}/wchan")).unwrap();
    assert!(
        traps.contains(&wchan.as_str()),
        "the paused container's loop (pid {looping}) is not frozen: wchan {wchan}"
    );
    // The counter stands still across those checks (and a short wait, a complement only).
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(counter(&oci, &id), frozen, "the counter grew while paused");
    // Paused: no exec, no second pause.
    let o = oci.run(&["pause", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("paused"), "{}", text(&o));
    oci.ok(&["resume", &id]);
    assert_eq!(oci.status(&id), "running");
    wait_for("the counter to grow again", || (counter(&oci, &id) > frozen + 10).then_some(()));
    let o = oci.run(&["resume", &id]);
    assert_eq!(o.status.code(), Some(1), "resume of a running container: {}", text(&o));
}

/// `delete --force` of a paused container: on v1 a frozen task ignores SIGKILL
/// until thawed; it once stayed, frozen, in cgroups that could not be removed.
#[test]
fn delete_force_of_a_paused_container_leaves_nothing() {
    let oci = Oci::new();
    let id = oci.container("pdel", &["sleep", "1000"]);
    oci.ok(&["pause", &id]);
    assert_eq!(oci.status(&id), "paused");
    oci.ok(&["delete", "--force", &id]);
    assert_eq!(oci.leftovers(&id), Vec::<String>::new(), "after delete --force of a paused container");
}

#[test]
fn update_writes_the_cgroup_files() {
    let oci = Oci::new();
    let id = oci.container("upd", &["sleep", "1000"]);
    let (mem_file, swap_file) =
        if v2() { ("memory.max", "memory.swap.max") } else { ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes") };
    let read = |f: &str| std::fs::read_to_string(oci.cgroup_file(&id, f)).unwrap().trim().to_string();
    assert_eq!(read(mem_file), (256u64 << 20).to_string(), "the config's limit");
    // Raising the limit (on v1 memsw has to go first).
    oci.ok(&["update", "--memory", "300m", &id]);
    assert_eq!(read(mem_file), (300u64 << 20).to_string());
    // Lowering, with swap (memory + swap in runc's terms).
    if oci.cgroup_file(&id, mem_file).with_file_name(swap_file).exists() {
        oci.ok(&["update", "--memory", "200m", "--memory-swap", "250m", &id]);
        assert_eq!(read(mem_file), (200u64 << 20).to_string());
        let swap = if v2() { 50u64 << 20 } else { 250u64 << 20 };
        assert_eq!(read(swap_file), swap.to_string());
    }
    // --resources on stdin, as containerd's shim passes it.
    let mut c = oci.cmd(&["update", "--resources", "-", &id]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(br#"{"pids":{"limit":42},"cpu":{"quota":30000,"period":100000}}"#).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read("pids.max"), "42");
    if v2() {
        assert_eq!(read("cpu.max"), "30000 100000");
    } else {
        assert_eq!((read("cpu.cfs_quota_us"), read("cpu.cfs_period_us")), ("30000".into(), "100000".into()));
    }
    // What the cgroups cannot take is refused, and nothing is written.
    let o = oci.run(&["update", "--memory", "100m", "--memory-swap", "50m", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(read(mem_file), (200u64 << 20).to_string());
}

#[test]
fn verbs_refuse_a_stopped_container() {
    let oci = Oci::new();
    let id = oci.container("stop", &["sh", "-c", "exit 0"]);
    wait_for("the container to stop", || (oci.status(&id) == "stopped").then_some(()));
    for verb in [&["exec", &id, "true"][..], &["pause", &id], &["update", "--memory", "100m", &id]] {
        let o = oci.run(verb);
        assert_eq!(o.status.code(), Some(1), "{verb:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("stopped")
                || String::from_utf8_lossy(&o.stderr).contains("not running"),
            "{verb:?}: {}",
            text(&o)
        );
    }
    let o = oci.run(&["exec", "no-such-container", "true"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"), "{}", text(&o));
    oci.ok(&["delete", &id]);
    assert_eq!(oci.leftovers(&id), Vec::<String>::new(), "after delete");
}

#[test]
fn features_document() {
    let oci = Oci::new();
    let f: Value = serde_json::from_slice(&oci.ok(&["features"]).stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    let hooks: Vec<&str> = f["hooks"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert!(hooks.contains(&"createRuntime") && hooks.contains(&"poststop"), "{hooks:?}");
    assert!(f["mountOptions"].as_array().unwrap().iter().any(|o| o == "rbind"));
    let linux = &f["linux"];
    let ns: Vec<&str> = linux["namespaces"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    // Every kind but time (the kernel's, which config.json's namespaces cannot ask for).
    assert_eq!(ns, ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"], "{ns:?}");
    assert!(linux["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert_eq!(linux["cgroup"]["v1"], true);
    assert_eq!(linux["cgroup"]["v2"], true);
    assert_eq!(
        linux["cgroup"]["systemd"], true,
        "--systemd-cgroup on a systemd host (docs/oci-runtime-systemd-cgroup.md)"
    );
    assert_eq!(linux["seccomp"]["enabled"], true);
    assert!(linux["seccomp"]["actions"].as_array().unwrap().iter().any(|a| a == "SCMP_ACT_ERRNO"));
    assert_eq!(linux["apparmor"]["enabled"], false);
}
