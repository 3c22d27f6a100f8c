//! Real clients: Debian's podman and docker.io run the project's init as the
//! container's init (`--init`), the way a new user would set them up, each in a
//! world of its own under a temporary directory (storage, state, sockets, config;
//! a dockerd and a containerd of the test's own). For each engine: the command's
//! exit code passes through, a SIGKILLed command gives 137, `stop` ends a
//! running container with 143 well before the engine's 10 s stop timeout (init
//! forwarded SIGTERM), and PID 1 inside is our init. For Docker also: `docker
//! info` shows our init's version (Docker parses `init --version`).
//!
//! The engines leave things on the host that no option moves: cgroups named
//! `libpod_parent` (podman, cgroupfs driver) and `docker` at the top of every
//! hierarchy, and the empty directories /run/docker/plugins and
//! /run/containerd/s (podman also leaves each container's `libpod-ID` cgroup,
//! with any init or none). The test removes exactly those it saw appear (rmdir,
//! deepest first) and every mount under its temporary directory, and fails if
//! anything is still there afterwards or an engine's process outlived it
//! (tests/engine_host.rs).
mod docker_host;
mod dropin;
mod engine_host;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use docker_host::{need, Docker};
use engine_host::Scratch;
use lab_tests::bin;

/// The engines' default stop timeout, passed explicitly: without SIGTERM reaching
/// the command, `stop` would wait this long and then SIGKILL it (137).
const STOP_TIMEOUT: &str = "10";
/// `stop` must end the container well within that (it takes ~0.2 s here).
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// The container's root: busybox-static and the directories the engines mount on.
fn make_rootfs(dir: &Path) {
    dropin::busybox_layer(dir);
    for d in ["proc", "sys", "dev", "etc", "tmp", "run"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
}

fn out(cmd: &mut Command, what: &str) -> String {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", lab_tests::text(&o));
    lab_tests::stdout(&o)
}

// ---- the checks, the same for both engines --------------------------------------

/// `run(name, cmd)`: the engine's `run --rm --init ...` of `cmd`, named `name`;
/// `stop(name)`: its `stop`; `init_at`: where the engine puts the init inside.
fn check_engine(engine: &str, run: impl Fn(&str, &[&str]) -> Command, stop: impl Fn(&str) -> Command, init_at: &str) {
    let name = format!("lab-clients-{}-{}", std::process::id(), lab_tests::seq());

    let o = dropin::run(run(&format!("{name}-7"), &["sh", "-c", "exit 7"]));
    assert_eq!(o.code, Some(7), "{engine}: `sh -c 'exit 7'` under our init: {o:?}");

    let o = dropin::run(run(&format!("{name}-9"), &["sh", "-c", "kill -9 $$"]));
    assert_eq!(o.code, Some(137), "{engine}: a SIGKILLed command under our init: {o:?}");

    // PID 1 is the init the engine mounted, and that file is ours.
    let probe = "readlink /proc/1/exe; tr '\\0' ' ' < /proc/1/cmdline; echo; wc -c < /proc/1/exe";
    let o = dropin::run(run(&format!("{name}-1"), &["sh", "-c", probe]));
    assert_eq!(o.code, Some(0), "{engine}: inspecting PID 1: {o:?}");
    let lines: Vec<&str> = o.stdout.lines().map(str::trim).collect();
    let size = fs::metadata(bin("init")).unwrap().len().to_string();
    assert!(
        lines.len() == 3 && lines[0] == init_at && lines[2] == size,
        "{engine}: PID 1 is not our init ({size} bytes) at {init_at}: {o:?}"
    );
    let argv0 = lines[1].split(' ').next().unwrap();
    assert!(
        (argv0 == init_at || argv0 == "init") && lines[1].contains(&format!(" -- sh -c {probe}")),
        "{engine}: PID 1's command line is not init's: {o:?}"
    );

    // stop: SIGTERM to PID 1, forwarded by init to the command, which dies of it.
    let stopped = format!("{name}-stop");
    let mut c = dropin::start(&mut run(&stopped, &["sh", "-c", "echo ready; exec sleep 600"]));
    c.wait_stdout("the container to start", |s| s.contains("ready"));
    let t = Instant::now();
    let mut st = stop(&stopped);
    out(&mut st, &format!("{engine} stop {stopped}"));
    let took = t.elapsed();
    let o = c.wait();
    assert_eq!(o.code, Some(143), "{engine}: `{engine} stop` of a container running our init: {o:?}");
    assert!(took < STOP_WITHIN, "{engine} stop took {took:?} (timeout {STOP_TIMEOUT} s): was SIGTERM forwarded?");
}

// ---- podman ------------------------------------------------------------------------

/// Podman with all of its state under the scratch directory. runc, not crun
/// (crun 1.8 refuses this host's hybrid cgroups); no default ulimits (runc
/// cannot raise the open-file limit above this sandbox's hard limit: "error
/// setting rlimit type 7"); network config under the scratch dir too.
struct Podman {
    s: Scratch,
}

impl Podman {
    fn new() -> Podman {
        need(&[("podman", "podman"), ("conmon", "conmon"), ("runc", "runc")]);
        let s = Scratch::new("podman", "libpod_parent", &[]);
        make_rootfs(&s.path("rootfs"));
        let conf = format!(
            "[containers]\ndefault_ulimits = []\n[network]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            s.s("net.d")
        );
        fs::write(s.path("containers.conf"), conf).unwrap();
        Podman { s }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.s.path("containers.conf"))
            .args(["--root", &self.s.s("root"), "--runroot", &self.s.s("runroot"), "--tmpdir", &self.s.s("tmp")])
            .args(["--runtime-flag", &format!("root={}", self.s.s("runc"))])
            .args(args);
        c
    }

    fn run(&self, name: &str, cmd: &[&str]) -> Command {
        let init = bin("init");
        let mut c = self.cmd(&["run", "--rm", "--name", name, "--network", "none", "--init", "--init-path"]);
        c.arg(init).args(["--rootfs", &self.s.s("rootfs")]).args(cmd);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers a failed check left running.
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]).stdin(Stdio::null()).output();
    }
}

#[test]
fn podman_runs_our_init_as_the_containers_init() {
    let p = Podman::new();
    check_engine("podman", |n, c| p.run(n, c), |n| p.cmd(&["stop", "--time", STOP_TIMEOUT, n]), "/run/podman-init");
    p.s.assert_clean();
}

// ---- docker ------------------------------------------------------------------------

/// Y of `tini version X - git.Y` (up to the next " - ", if any) on init's first
/// line: the commit `docker info` should show.
fn init_version_commit() -> String {
    let v = out(Command::new(bin("init")).arg("--version"), "init --version");
    let first = v.lines().next().unwrap_or_default();
    let commit = first.strip_prefix("tini version ").and_then(|r| r.split_once(" - git."));
    let commit = commit.map(|(_, c)| c.split(" - ").next().unwrap().trim());
    commit
        .unwrap_or_else(|| panic!("init --version: {v:?}: the first line is not `tini version X - git.Y`, so docker info shows no init version"))
        .to_string()
}

#[test]
fn docker_runs_our_init_as_the_containers_init() {
    let mut d = Docker::start();

    let tar = d.s.path("rootfs.tar");
    make_rootfs(&d.s.path("rootfs"));
    out(Command::new("tar").args(["-C", &d.s.s("rootfs"), "-cf"]).arg(&tar).arg("."), "tar the rootfs");
    out(d.cli(&["import"]).arg(&tar).arg("lab-clients:1"), "docker import");

    let run = |n: &str, c: &[&str]| {
        let mut r = d.cli(&["run", "--rm", "--name", n, "--init", "--network", "none", "lab-clients:1"]);
        r.args(c);
        r
    };
    check_engine("docker", run, |n| d.cli(&["stop", "--time", STOP_TIMEOUT, n]), "/sbin/docker-init");

    // docker info runs `init --version` and shows what its parser makes of it.
    let info = out(&mut d.cli(&["info"]), "docker info");
    let field = |key: &str| info.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim).unwrap_or("");
    assert_eq!(field("Init Binary:"), bin("init").to_str().unwrap(), "docker info:\n{info}");
    let commit = init_version_commit();
    assert_eq!(
        field("init version:"),
        commit,
        "docker info does not show our init's version (docker parses the whole output of `init --version`: \
         a later line with a '.' in it blanks the version):\n{info}"
    );

    d.stop();
    let log = fs::read_to_string(d.s.path("dockerd.log")).unwrap_or_default();
    let init = bin("init");
    let warn: Vec<&str> =
        log.lines().filter(|l| l.contains(init.to_str().unwrap()) && !l.contains("level=info")).collect();
    assert!(warn.is_empty(), "dockerd complained about our init:\n{}", warn.join("\n"));
    d.s.assert_clean();
}
