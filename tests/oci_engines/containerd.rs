//! containerd 1.6 (Debian's) of the test's own: its root, state, sockets and
//! config under the scratch directory, no CRI plugin, the native snapshotter;
//! `ctr run --runc-binary RUNTIME` (runtime io.containerd.runc.v2: the shim
//! calls the runtime with `--root R --log F --log-format json create --bundle B
//! --pid-file P`, then `start`, `exec --process - --detach --pid-file`, `kill`,
//! `ps --format json`, `pause`/`resume`, `delete`).
//! The cgroup ctr gives a container is `/<namespace>/<id>`: the namespace is
//! unique to the test, so its parent cgroup is removed by name afterwards.
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command};

use crate::docker_host::{end, need, spawn_logged};
use crate::engine_host::Scratch;
use crate::{
    assert_runtime_forgot, cgroups_named, containerd_turn, dropin, image, is_our_init, mounts_under, ok, runtime,
    runtime_state, unique,
};
use lab_tests::{bin, wait_for};

struct Containerd {
    s: Scratch,
    ns: String,
    daemon: Child,
    rt: PathBuf,
    image: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Containerd {
    fn start() -> Containerd {
        need(&[("containerd", "containerd"), ("ctr", "containerd"), ("containerd-shim-runc-v2", "containerd")]);
        let rt = runtime();
        let turn = containerd_turn();
        let ns = unique("ctrd");
        // Scratch wants the parent cgroup's name for the life of the test.
        let s = Scratch::new(
            "containerd",
            Box::leak(ns.clone().into_boxed_str()),
            &["/run/containerd", "/run/containerd/s"],
        );
        // "@" stands for the scratch directory. The shim's socket goes to
        // /run/containerd/s/HASH whatever the config says (removed by Scratch).
        let conf = "version = 2\nroot = \"@/root\"\nstate = \"@/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"@/containerd.sock\"\n\
             [ttrpc]\n  address = \"@/containerd.sock.ttrpc\"\n[debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"@/opt\"\n";
        fs::write(s.path("containerd.toml"), conf.replace('@', s.tmp.0.to_str().unwrap())).unwrap();
        let daemon = spawn_logged(
            Command::new("containerd").args(["--config", &s.s("containerd.toml")]),
            &s.path("containerd.log"),
        );
        let mut c = Containerd { s, ns, daemon, rt, image: String::new(), _turn: turn };
        wait_for("containerd to answer on its socket", || {
            if let Ok(Some(st)) = c.daemon.try_wait() {
                panic!("containerd exited ({st}):\n{}", fs::read_to_string(c.s.path("containerd.log")).unwrap());
            }
            c.ctr(&["version"]).output().is_ok_and(|o| o.status.success()).then_some(())
        });
        fs::create_dir_all(c.s.path("img")).unwrap();
        c.image = format!("docker.io/library/{}:1", c.ns);
        let tar = image::build(&c.s.path("img"), &c.image);
        ok(c.ctr(&["image", "import", "--snapshotter", "native"]).arg(&tar), "ctr image import");
        c
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["--address", &self.s.s("containerd.sock"), "--namespace", &self.ns]).args(args);
        c
    }

    /// `ctr run --rm` of the image with our runtime; `extra` before the image.
    fn run(&self, id: &str, extra: &[&str], cmd: &[&str]) -> Command {
        let mut c = self.ctr(&["run", "--rm", "--snapshotter", "native", "--fifo-dir", &self.s.s("fifo")]);
        c.arg("--runc-binary").arg(&self.rt).args(["--runc-root", &self.s.s("runtime-root")]);
        c.args(extra).arg(&self.image).arg(id).args(cmd);
        c
    }

    /// The container is gone and nothing of it is left: no container, task or
    /// snapshot in containerd, no runtime state, no cgroup, no mount.
    fn assert_nothing_left_of(&self, id: &str) {
        let left = |args: &[&str]| ok(&mut self.ctr(args), &format!("ctr {}", args.join(" ")));
        wait_for("containerd to forget the container", || {
            (left(&["containers", "ls", "-q"]).trim().is_empty()).then_some(())
        });
        assert!(!left(&["tasks", "ls"]).contains(id), "a task is left: {}", left(&["tasks", "ls"]));
        let snaps = left(&["snapshots", "--snapshotter", "native", "ls"]);
        assert!(!snaps.lines().any(|l| l.starts_with(id)), "its snapshot is left:\n{snaps}");
        assert_runtime_forgot(&self.runtime_root(), id);
        let cg = cgroups_named(&format!("{}/{id}", self.ns));
        assert!(cg.is_empty(), "its cgroups are left: {cg:?}");
        let m = mounts_under(&self.s.tmp.0);
        assert!(m.is_empty(), "mounts are left: {m:?}");
    }

    /// The runtime's `--root`: the shim appends the namespace to ctr's --runc-root.
    fn runtime_root(&self) -> PathBuf {
        self.s.path("runtime-root").join(&self.ns)
    }

    /// The host pid of the task `id` (`ctr task ls`: TASK PID STATUS) and its status.
    fn task(&self, id: &str) -> (i32, String) {
        let ls = ok(&mut self.ctr(&["tasks", "ls"]), "ctr tasks ls");
        let line = ls.lines().find(|l| l.split_whitespace().next() == Some(id));
        let f: Vec<&str> = line.unwrap_or_else(|| panic!("no task {id} in:\n{ls}")).split_whitespace().collect();
        (f[1].parse().unwrap(), f[2].to_string())
    }
}

impl Containerd {
    /// The test's last step: containerd ended (by the pid the test started), then
    /// nothing of it may be left on the host.
    fn finish(&mut self) {
        end(&mut self.daemon, "containerd");
        self.s.assert_clean();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // What a failed check left: tasks SIGKILLed, then containers removed.
        let running = matches!(self.daemon.try_wait(), Ok(None));
        if let Some(Ok(o)) = running.then(|| self.ctr(&["containers", "ls", "-q"]).output()) {
            for id in lab_tests::stdout(&o).split_whitespace() {
                let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
                let _ = self.ctr(&["tasks", "rm", "-f", id]).output();
                let _ = self.ctr(&["containers", "rm", id]).output();
            }
        }
        end(&mut self.daemon, "containerd");
    }
}

#[test]
fn containerd_runs_a_container_output_exit_code_and_delete_leaves_nothing() {
    let mut c = Containerd::start();
    let o = dropin::run(c.run("c1", &[], &["sh", "-c", "echo hello from the container; cat /proc/1/cmdline; exit 7"]));
    assert_eq!(o.code, Some(7), "ctr run's exit code is the container's: {o:?}");
    assert!(o.stdout.starts_with("hello from the container\nsh"), "ctr run's output: {o:?}");
    c.assert_nothing_left_of("c1");
    c.finish();
}

#[test]
fn containerd_kill_exec_ps_pause_resume() {
    let mut c = Containerd::start();
    // Our init as the container's PID 1 (a shell as PID 1 ignores SIGTERM), bound in.
    let mount = format!("type=bind,src={},dst=/sbin/hsinit,options=rbind:ro", bin("init").display());
    let mut run = dropin::start(&mut c.run(
        "k1",
        &["--mount", &mount],
        &["/sbin/hsinit", "--", "sh", "-c", "echo ready; exec sleep 600"],
    ));
    run.wait_stdout("the container to start", |s| s.contains("ready"));
    let (pid, status) = c.task("k1");
    assert_eq!(status, "RUNNING");
    let st = runtime_state(&c.runtime_root(), "k1").expect("the runtime's `state k1` fails while it runs");
    let v: serde_json::Value = serde_json::from_str(&st).unwrap_or_else(|e| panic!("`state k1`: {e}: {st}"));
    assert!(v["status"] == "running" && v["pid"] == pid, "`state k1` while it runs (PID 1 is {pid}): {st}");
    assert!(is_our_init(pid), "PID 1 of k1 is not our init, bound at /sbin/hsinit");

    // ps: the runtime's `ps --format json`, host pids.
    let ps = ok(&mut c.ctr(&["tasks", "ps", "k1"]), "ctr tasks ps");
    let pids: Vec<i32> = ps.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    let sleep = dropin::children_of(pid);
    assert!(
        pids.contains(&pid) && sleep.iter().all(|p| pids.contains(p)) && pids.len() == 2,
        "ctr tasks ps:\n{ps}\nPID 1 {pid}, its children {sleep:?}"
    );

    // exec: in the container (its PID 1 is our init), output and exit code.
    let exec = |eid: &str| {
        let mut e = c.ctr(&["tasks", "exec", "--fifo-dir", &c.s.s("fifo"), "--exec-id", eid, "k1"]);
        e.args(["sh", "-c", "readlink /proc/1/exe; echo exec-out; exit 3"]);
        dropin::run(e)
    };
    let o = exec("e1");
    assert_eq!((o.code, o.stdout.as_str()), (Some(3), "/sbin/hsinit\nexec-out\n"), "ctr tasks exec: {o:?}");

    // pause/resume: the freezer, seen from the kernel.
    ok(&mut c.ctr(&["tasks", "pause", "k1"]), "ctr tasks pause");
    assert_eq!(c.task("k1").1, "PAUSED");
    assert!(image::frozen(pid), "the freezer does not hold k1 after ctr tasks pause");
    ok(&mut c.ctr(&["tasks", "resume", "k1"]), "ctr tasks resume");
    assert_eq!(c.task("k1").1, "RUNNING");
    assert!(!image::frozen(pid), "k1 still frozen after ctr tasks resume");
    assert_eq!(exec("e2").code, Some(3), "exec after resume");

    // kill: SIGTERM (ctr's default) to PID 1, our init passes it on: 143.
    ok(&mut c.ctr(&["tasks", "kill", "k1"]), "ctr tasks kill");
    let o = run.wait();
    assert_eq!(o.code, Some(143), "ctr run after ctr tasks kill (SIGTERM): {o:?}");
    c.assert_nothing_left_of("k1");
    c.finish();
}

#[test]
fn containerd_runs_a_container_on_a_tty() {
    let mut c = Containerd::start();
    // tty names the terminal from inside (ttyname: the pty must come from the
    // container's own devpts); the rest is there for the failure message.
    let script = "busybox tty; readlink /proc/self/fd/0; ls /dev/pts; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 5";
    let mut t = lab_tests::OnPty::spawn(c.run("t1", &["-t"], &["sh", "-c", script]));
    t.expect("both-ttys");
    let st = wait_for("ctr run -t to exit", || t.child.try_wait().unwrap());
    let out = t.output();
    assert_eq!(out.lines().next().map(str::trim), Some("/dev/pts/0"), "the container's stdin is not its pty:\n{out}");
    assert_eq!(st.code(), Some(5), "ctr run -t's exit code:\n{out}");
    c.assert_nothing_left_of("t1");
    c.finish();
}
