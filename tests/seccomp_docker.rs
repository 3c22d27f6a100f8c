//! Docker's default seccomp profile, in effect, against the real thing: the same
//! probe (layers/seccomp_probe's syscall_sweep: every system call number of
//! x86_64, x32 and i386, with the argument values Docker's argument rules look
//! at; no call ever runs, see its header) in a container of a real dockerd
//! (Debian's docker.io 20.10 with runc and libseccomp, its own default profile;
//! a dockerd of the test's own, as tests/clients.rs starts it) and in one of ours
//! (`host-setup run`, its default filter), verdict by verdict. The differences
//! must be exactly the list below, each with its reason; a new one, or a listed
//! one that no longer happens, fails the test.
//!
//! Also, with the same dockerd: moby's current profile (the copy pinned in
//! host-setup/src/seccomp/moby-default.json) compiled by runc and libseccomp
//! (`--security-opt seccomp=FILE`) against our default; Docker 20.10's own profile
//! as dockerd hands it to an OCI runtime, run by hsrun (`--runtime`), against
//! runc's; and, as the control, `--security-opt seccomp=unconfined`, where every
//! call gets past (so the verdicts above are the filters', not the probe's).
//! docs/seccomp-evidence.md says how and why.
mod docker_host;
mod dropin;
mod engine_host;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};

use docker_host::Docker;
use lab_tests::{bin, text, Lab};

#[path = "seccomp_docker/known.rs"]
mod known;
use known::Known;

/// `ABI NR NAME ARGS` -> verdict (`allowed`, `EPERM`, `ENOSYS`, ...).
type Sweep = BTreeMap<String, String>;

fn parse(what: &str, out: &str) -> Sweep {
    let map: Sweep = out
        .lines()
        .map(|l| {
            let (call, verdict) = l.split_once(" -> ").unwrap_or_else(|| panic!("{what}: not a sweep line: {l:?}"));
            (call.to_string(), verdict.to_string())
        })
        .collect();
    // x86_64 and x32: 548 numbers, i386: 502, two argument sets each, and the
    // argument rules' values.
    assert!(map.len() > 3300, "{what}: {} lines:\n{out}", map.len());
    let odd: Vec<_> = map.iter().filter(|(_, v)| v.as_str() == "mismatch" || v.starts_with("returned")).collect();
    assert!(odd.is_empty(), "{what}: calls the sweep did not account for: {odd:?}");
    map
}

/// `SECCOMP_DOCKER_DUMP=DIR`: each sweep's output is also written to DIR/FILE.
fn run(cmd: &mut Command, what: &str, file: &str) -> Sweep {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", text(&o));
    if let Some(dir) = std::env::var_os("SECCOMP_DOCKER_DUMP") {
        fs::write(std::path::Path::new(&dir).join(file), &o.stdout).unwrap();
    }
    parse(what, &String::from_utf8_lossy(&o.stdout))
}

/// A line of a difference, as the Known list names it.
struct Diff<'a> {
    call: &'a str,
    ours: &'a str,
    theirs: &'a str,
}

impl Diff<'_> {
    fn abi(&self) -> &str {
        self.call.split(' ').next().unwrap()
    }
    fn name(&self) -> &str {
        self.call.split(' ').nth(2).unwrap()
    }
    fn arg0(&self) -> u64 {
        let a = self.call.split(' ').nth(3).unwrap().split(',').next().unwrap();
        u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap()
    }
}

/// Every difference between `ours` and `theirs` must be one of `known`, and
/// every one of `known` must still happen. The message lists the rest.
fn compare(what: &str, ours: &Sweep, theirs: &Sweep, known: &[Known]) {
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{what}: not the same calls");
    let mut used = vec![0usize; known.len()];
    let mut unexplained = Vec::new();
    for (call, o) in ours {
        let t = &theirs[call];
        if o == t {
            continue;
        }
        let d = Diff { call, ours: o, theirs: t };
        match known.iter().position(|k| k.matches(d.abi(), d.name(), d.arg0(), d.ours, d.theirs)) {
            Some(i) => used[i] += 1,
            None => unexplained.push(format!("{call}: ours {o}, theirs {t}")),
        }
    }
    let stale: Vec<String> = known.iter().zip(&used).filter(|(_, n)| **n == 0).map(|(k, _)| format!("{k:?}")).collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{what}: {} unexplained differences:\n{}\nlisted differences that no longer happen: {stale:#?}",
        unexplained.len(),
        unexplained.join("\n")
    );
    for (k, n) in known.iter().zip(&used) {
        eprintln!("{what}: {n} calls: {k:?}");
    }
}

#[test]
fn dockers_default_profile_against_ours_call_by_call() {
    let lab = Lab::new();
    let mut d = Docker::start_with(&[("hs", &bin("hsrun"))]);

    // The image: the sweep and the directories runc mounts on.
    let root = d.s.path("rootfs");
    for dir in ["proc", "sys", "dev", "etc", "tmp"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::copy(bin("syscall_sweep"), root.join("syscall_sweep")).unwrap();
    let tar = d.s.path("rootfs.tar");
    let o = Command::new("tar").args(["-C", &d.s.s("rootfs"), "-cf"]).arg(&tar).arg(".").output().unwrap();
    assert!(o.status.success(), "tar: {}", text(&o));
    let img = format!("lab-seccomp-docker-{}:1", std::process::id());
    let o = d.cli(&["import"]).arg(&tar).arg(&img).stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "docker import: {}", text(&o));
    let docker = |flags: &[&str]| {
        let mut c = d.cli(&["run", "--rm", "--network", "none"]);
        c.args(flags).arg(&img).arg("/syscall_sweep");
        c
    };

    let docker_default = run(&mut docker(&[]), "docker run (default profile)", "docker");
    let moby_json = concat!(env!("CARGO_MANIFEST_DIR"), "/../host-setup/src/seccomp/moby-default.json");
    let moby =
        run(&mut docker(&["--security-opt", &format!("seccomp={moby_json}")]), "docker run (moby's current)", "moby");
    let hsrun = run(&mut docker(&["--runtime", "hs"]), "docker run --runtime hsrun (default profile)", "hsrun");
    let open = run(&mut docker(&["--security-opt", "seccomp=unconfined"]), "docker run (unconfined)", "unconfined");

    let layer = d.s.path("layer");
    fs::create_dir_all(&layer).unwrap();
    fs::copy(bin("syscall_sweep"), layer.join("syscall_sweep")).unwrap();
    let layer = layer.to_str().unwrap();
    let ours =
        run(&mut lab.cmd(&["run", &lab.name("d"), "--layer", layer, "--", "/syscall_sweep"]), "host-setup run", "ours");

    // The control: without a filter every call gets past, but for the two the
    // kernel lets past every filter (and kills the caller of uretprobe).
    let past: Vec<_> = open.iter().filter(|(_, v)| v.as_str() != "allowed").collect();
    assert!(
        past.iter().all(|(c, v)| c.contains(" uretprobe ") && v.as_str() == "killed by signal 4"
            || c.contains(" uprobe ") && v.as_str() == "E6"),
        "unconfined: {past:?}"
    );

    compare("ours against Docker 20.10's default", &ours, &docker_default, &known::ours_vs_docker());
    compare("ours against moby's current default.json under runc", &ours, &moby, &known::ours_vs_moby());
    compare("hsrun against runc, Docker 20.10's default", &hsrun, &docker_default, &known::hsrun_vs_runc());

    d.stop();
    d.s.assert_clean();
}
