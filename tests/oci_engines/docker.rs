//! Docker 20.10 (Debian's docker.io) with a dockerd and containerd of the test's
//! own (docker_host.rs, as tests/clients.rs) whose daemon.json names our runtime
//! `"runtimes": {"hs": {"path": RUNTIME}}`; `docker run --runtime hs` goes through
//! containerd's runc shim, which calls the runtime with `--root
//! EXEC_ROOT/runtime-runc/moby` (runc's name, whatever the runtime). The image: the test's busybox tar, `docker load`.
//! One test function: every container's cgroup sits under `docker`, removed by
//! name afterwards.
use std::fs;
use std::time::{Duration, Instant};

use crate::docker_host::Docker;
use crate::{
    assert_runtime_forgot, cgroups_named, containerd_turn, dropin, image, is_our_init, ok, runtime, runtime_state,
    unique,
};

#[test]
fn docker_runs_containers_with_our_runtime() {
    let rt = runtime();
    let _turn = containerd_turn();
    let mut d = Docker::start_with(&[("hs", &rt)]);
    let name = unique("docker");
    let img = format!("{name}:1");
    fs::create_dir_all(d.s.path("img")).unwrap();
    let tar = image::build(&d.s.path("img"), &img);
    ok(d.cli(&["load", "--input"]).arg(&tar), "docker load");

    let run = |flags: &[&str], cmd: &[&str]| {
        let mut c = d.cli(&["run", "--runtime", "hs", "--network", "none"]);
        c.args(flags).arg(&img).args(cmd);
        c
    };

    let o = dropin::run(run(&["--rm"], &["sh", "-c", "echo out; exit 7"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(7), "out\n"), "docker run: exit code and output: {o:?}");

    // stop: SIGTERM to PID 1 (our init: daemon.json's init-path, --init): 143, at once.
    let stopped = format!("{name}-stop");
    let mut r =
        dropin::start(&mut run(&["--rm", "--init", "--name", &stopped], &["sh", "-c", "echo ready; exec sleep 600"]));
    r.wait_stdout("the container to start", |s| s.contains("ready"));
    let t = Instant::now();
    ok(&mut d.cli(&["stop", "--time", "10", &stopped]), "docker stop");
    let o = r.wait();
    assert_eq!(o.code, Some(143), "docker run after docker stop: {o:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "docker stop took {:?}: SIGTERM did not end it", t.elapsed());

    // A detached container with limits; exec into it; the limits from the kernel.
    let c = format!("{name}-d");
    ok(
        &mut run(&["-d", "--init", "--name", &c, "--memory", "64m", "--cpus", "0.5"], &["sleep", "600"]),
        "docker run -d",
    );
    let pid: i32 =
        ok(&mut d.cli(&["inspect", "--format", "{{.State.Pid}}", &c]), "docker inspect").trim().parse().unwrap();
    let id = ok(&mut d.cli(&["inspect", "--format", "{{.Id}}", &c]), "docker inspect").trim().to_string();
    assert!(is_our_init(pid), "PID 1 is not our init (init-path)");
    // dockerd 20.10 gives every runtime the shim options {BinaryName: path,
    // Root: EXEC_ROOT/runtime-runc}; the shim writes them to the bundle's
    // options.json and calls BinaryName with `--root ROOT/moby`.
    let bundle = d.s.path("containerd/state/io.containerd.runtime.v2.task/moby").join(&id);
    let opts = fs::read_to_string(bundle.join("options.json")).unwrap_or_default();
    assert!(
        opts.contains(&format!("\"binary_name\":\"{}\"", rt.display())),
        "the shim of {c} does not call {}: {opts}",
        rt.display()
    );
    let root = d.s.path("exec/runtime-runc/moby");
    assert!(
        runtime_state(&root, &id).is_some_and(|s| s.contains("running")),
        "`state` of {c} in --root {}",
        root.display()
    );
    let o = dropin::run(d.cli(&["exec", &c, "sh", "-c", "readlink /proc/1/exe; exit 3"]));
    assert_eq!((o.code, o.stdout.as_str()), (Some(3), "/sbin/docker-init\n"), "docker exec: {o:?}");
    assert_eq!(image::limits(pid), (64 << 20, "50000 100000".to_string()), "--memory 64m --cpus 0.5 in the kernel");
    ok(&mut d.cli(&["rm", "--force", &c]), "docker rm -f");
    assert!(!dropin::alive(pid), "the container's PID 1 outlived docker rm -f");
    let cg = cgroups_named(&format!("docker/{id}"));
    assert!(cg.is_empty(), "its cgroups are left after docker rm: {cg:?}");
    assert_runtime_forgot(&root, &id);
    let left = ok(&mut d.cli(&["ps", "--all", "--quiet"]), "docker ps");
    assert!(left.trim().is_empty(), "containers left: {left}");

    d.stop();
    d.s.assert_clean();
}
