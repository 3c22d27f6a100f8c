//! Podman 4.3 (Debian) with `--runtime RUNTIME` (a wrapper adding `--root`), through conmon: its root,
//! runroot, tmpdir, network config and the runtime's `--root` under the scratch
//! directory; a plain directory as the container's root (`--rootfs`, no image
//! store); `--network none`; containers.conf `default_ulimits = []` (podman
//! otherwise asks for an open-file limit above this sandbox's hard limit).
//! One test function: podman's parent cgroup `libpod_parent` is shared by every
//! podman container, so two podman tests at once would remove it under each other.
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::docker_host::need;
use crate::engine_host::Scratch;
use crate::{assert_runtime_forgot, dropin, image, is_our_init, ok, runtime, runtime_state, unique};
use lab_tests::bin;

struct Podman {
    s: Scratch,
}

impl Podman {
    fn new() -> Podman {
        need(&[("podman", "podman"), ("conmon", "conmon")]);
        let s = Scratch::new("podman", "libpod_parent", &[]);
        image::make_rootfs(&s.path("rootfs"));
        let conf = format!(
            "[containers]\ndefault_ulimits = []\n[network]\nnetwork_config_dir = \"{}\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            s.s("net.d")
        );
        fs::write(s.path("containers.conf"), conf).unwrap();
        // The runtime's --root goes into a two-line wrapper, not `--runtime-flag
        // root=`: podman 4.3 drops --runtime-flag from the cleanup command conmon
        // runs when a container exits (`podman container cleanup` calls `RUNTIME
        // delete --force ID` with no --root), so the state in our root was left
        // behind or not, depending on who got there first.
        let wrapper = s.path("runtime");
        let sh = format!("#!/bin/sh\nexec {} --root {} \"$@\"\n", runtime().display(), s.s("runtime-root"));
        fs::write(&wrapper, sh).unwrap();
        fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Podman { s }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.s.path("containers.conf"))
            .args(["--root", &self.s.s("root"), "--runroot", &self.s.s("runroot"), "--tmpdir", &self.s.s("tmp")])
            .args(["--runtime", &self.s.s("runtime")])
            .args(args);
        c
    }

    /// `podman run --network none [--init --init-path INIT] FLAGS --rootfs R CMD`.
    fn run(&self, flags: &[&str], init: bool, cmd: &[&str]) -> Command {
        let mut c = self.cmd(&["run", "--network", "none"]);
        if init {
            c.args(["--init", "--init-path"]).arg(bin("init"));
        }
        c.args(flags).args(["--rootfs", &self.s.s("rootfs")]).args(cmd);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]).output();
    }
}

#[test]
fn podman_runs_containers_with_our_runtime() {
    let p = Podman::new();
    let name = unique("podman");

    let o = dropin::run(p.run(&["--rm"], false, &["sh", "-c", "echo out; exit 7"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(7), "out\n"), "podman run: exit code and output: {o:?}");

    // stop: SIGTERM to PID 1 (our init, --init), which passes it on: 143, at once.
    let stopped = format!("{name}-stop");
    let mut run =
        dropin::start(&mut p.run(&["--rm", "--name", &stopped], true, &["sh", "-c", "echo ready; exec sleep 600"]));
    run.wait_stdout("the container to start", |s| s.contains("ready"));
    let t = Instant::now();
    ok(&mut p.cmd(&["stop", "--time", "10", &stopped]), "podman stop");
    let o = run.wait();
    assert_eq!(o.code, Some(143), "podman run after podman stop: {o:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "podman stop took {:?}: SIGTERM did not end it", t.elapsed());

    // A detached container with limits; exec into it; the limits from the kernel.
    let d = format!("{name}-d");
    let flags = ["-d", "--name", &d, "--memory", "64m", "--cpus", "0.5"];
    ok(&mut p.run(&flags, true, &["sleep", "600"]), "podman run -d");
    let pid: i32 =
        ok(&mut p.cmd(&["inspect", "--format", "{{.State.Pid}}", &d]), "podman inspect").trim().parse().unwrap();
    assert!(is_our_init(pid), "PID 1 is not our init (--init-path)");
    let id = ok(&mut p.cmd(&["inspect", "--format", "{{.Id}}", &d]), "podman inspect").trim().to_string();
    let root = p.s.path("runtime-root");
    assert!(
        runtime_state(&root, &id).is_some_and(|s| s.contains("running")),
        "podman did not call the runtime with --root {}",
        root.display()
    );
    let o = dropin::run(p.cmd(&["exec", &d, "sh", "-c", "readlink /proc/1/exe; exit 3"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(3), "/run/podman-init\n"), "podman exec: {o:?}");
    assert_eq!(image::limits(pid), (64 << 20, "50000 100000".to_string()), "--memory 64m --cpus 0.5 in the kernel");
    let cg = image::cgroup_file(pid, "memory", "", "");
    ok(&mut p.cmd(&["rm", "--force", "--time", "0", &d]), "podman rm -f");
    assert!(!dropin::alive(pid), "the container's PID 1 outlived podman rm -f");
    // Podman itself leaves the container's cgroup libpod-ID behind (with runc
    // too; removed by name afterwards): it must hold no process.
    let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
    assert!(procs.trim().is_empty(), "processes left in {} after podman rm: {procs}", cg.display());
    assert_runtime_forgot(&root, &id);
    let left = ok(&mut p.cmd(&["ps", "--all", "--quiet"]), "podman ps");
    assert!(left.trim().is_empty(), "containers left: {left}");
    p.s.assert_clean();
}
