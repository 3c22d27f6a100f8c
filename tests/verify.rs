//! `host-setup verify` and `status --json` on the real kernel: verify passes on a
//! healthy pair and fails, naming the check, when something is broken behind
//! host-setup's back (a limit removed, the veth deleted, swap allowed again);
//! `status --json` reports the kernel's own values.
//!
//! verify loads the CPU (`stress -c 1` against the quota): the runs in this file
//! take turns, so that they do not compete with each other for the CPUs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use lab_tests::{stdout, text, Lab};

static TURN: Mutex<()> = Mutex::new(());

const CHECKS: [&str; 10] =
    ["namespaces", "hostname", "limits", "ping", "caps", "escape", "cpu", "memory", "swap", "cleanup"];

fn verify(lab: &Lab, names: &[&str]) -> Output {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut args = vec!["verify"];
    args.extend_from_slice(names);
    lab.run(&args)
}

/// The outcome word of check `check` of container `name` ("PASS", "FAIL", "SKIP").
fn outcome(out: &str, name: &str, check: &str) -> String {
    line(out, name, check).split_whitespace().nth(2).unwrap_or("").to_string()
}

/// The line of check `check` of container `name`.
fn line<'a>(out: &'a str, name: &str, check: &str) -> &'a str {
    out.lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(name) && w.next() == Some(check)
        })
        .unwrap_or_else(|| panic!("no {check} line for {name}:\n{out}"))
}

/// The one of the container's cgroup dirs that holds `file`.
fn dir_with(lab: &Lab, name: &str, file: &str) -> PathBuf {
    lab.cgroup_dirs(name)
        .into_iter()
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no cgroup dir of {name} has {file}"))
}

fn v2() -> bool {
    host_setup::cgroup::Cgroups::detect().unwrap().version() == 2
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("write {value} to {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())).trim().to_string()
}

/// Relative paths of everything under `dir`.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Fails with exit 1, the failed checks named on stderr and FAIL on their lines;
/// every other check passes (ping is skipped by a container without a network).
fn assert_fails_only(o: &Output, name: &str, failing: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    let out = stdout(o);
    let err = String::from_utf8_lossy(&o.stderr);
    for c in CHECKS {
        let got = outcome(&out, name, c);
        if failing.contains(&c) {
            assert_eq!(got, "FAIL", "{c}: {}", text(o));
        } else if got == "SKIP" {
            assert_skipped_for_a_reason(&out, name, c);
        } else {
            assert_eq!(got, "PASS", "{c}: {}", text(o));
        }
    }
    let named: Vec<String> = failing.iter().map(|c| format!("{name} {c}")).collect();
    assert!(
        err.contains(&format!("{} of 10 checks failed: {}", failing.len(), named.join(", "))),
        "stderr names the failed checks: {}",
        text(o)
    );
}

/// A check may be skipped only for these reasons: ping without a network, cpu on
/// a host too busy for stress to reach the quota (timings are noisy here).
fn assert_skipped_for_a_reason(out: &str, name: &str, check: &str) {
    let line = line(out, name, check);
    let ok = match check {
        "ping" => line.contains("SKIP  no network (loopback only)"),
        "cpu" => line.contains("the host is too busy for stress to reach the quota"),
        _ => false,
    };
    assert!(ok, "{check} skipped without a reason:\n{out}");
}

#[test]
fn verify_passes_on_a_healthy_pair_and_leaves_it_as_it_was() {
    let lab = Lab::new();
    let (a, b) = lab.pair();
    let inits = [lab.init_pid(&a), lab.init_pid(&b)];
    let memory = if v2() { "memory.max" } else { "memory.limit_in_bytes" };
    let procs = |n: &str| read(&dir_with(&lab, n, memory).join("cgroup.procs"));
    let procs_before = [procs(&a), procs(&b)];
    let uppers_before = [
        tree(&lab.state_dir.join("containers").join(&a).join("upper")),
        tree(&lab.state_dir.join("containers").join(&b).join("upper")),
    ];

    let o = verify(&lab, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    for n in [&a, &b] {
        for c in CHECKS {
            match outcome(&out, n, c).as_str() {
                "SKIP" => assert_skipped_for_a_reason(&out, n, c),
                got => assert_eq!(got, "PASS", "{n} {c}: {}", text(&o)),
            }
        }
    }
    assert!(out.contains("verify: 20 of 20 checks passed") || out.contains("checks passed, skipped: "), "{out}");
    // The figures: ping both ways, the quota held, the OOM boundary under the limit.
    assert!(out.contains(&format!("{a} -> {b} (11.11.11.3) 3/3, rtt ")), "{out}");
    assert!(out.contains(&format!("{b} -> {a} (11.11.11.2) 3/3, rtt ")), "{out}");
    assert!(out.contains("of one CPU under stress -c 1 (limit 40 %), throttled in "), "{out}");
    assert!(out.contains("180.0M ok") && out.contains("210.0M OOM-killed"), "{out}");

    // As it was: the same inits running, the same processes, no new file.
    assert_eq!([lab.init_pid(&a), lab.init_pid(&b)], inits);
    assert_eq!([procs(&a), procs(&b)], procs_before);
    let uppers = [
        tree(&lab.state_dir.join("containers").join(&a).join("upper")),
        tree(&lab.state_dir.join("containers").join(&b).join("upper")),
    ];
    assert_eq!(uppers, uppers_before);
    let s = stdout(&lab.ok(&["status"]));
    assert!(s.contains(&format!("{a}: running")) && s.contains(&format!("{b}: running")), "{s}");
}

#[test]
fn verify_names_cpu_and_limits_when_the_quota_is_removed() {
    let lab = Lab::new();
    let a = lab.name("q");
    lab.ok(&["up", &a]);
    let (file, none, was) = if v2() {
        (dir_with(&lab, &a, "cpu.max").join("cpu.max"), "max 100000", "40000 100000")
    } else {
        (dir_with(&lab, &a, "cpu.cfs_quota_us").join("cpu.cfs_quota_us"), "-1", "40000")
    };
    write(&file, none);
    let o = verify(&lab, &[&a]);
    assert_fails_only(&o, &a, &["limits", "cpu"]);
    let out = stdout(&o);
    assert!(out.contains("cpu quota max (spec 40000)"), "{out}");
    // By its effect: more than the limit, or (on a busy host) no quota period counted.
    assert!(out.contains("(limit 40 %), throttled in 0 of "), "{out}");
    // Put back, it passes again: the failure was the quota's.
    write(&file, was);
    let o = verify(&lab, &[&a]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn verify_names_memory_when_the_memory_limit_is_removed() {
    let lab = Lab::new();
    let a = lab.name("l");
    lab.ok(&["up", &a]);
    if v2() {
        write(&dir_with(&lab, &a, "memory.max").join("memory.max"), "max");
    } else {
        // memsw must stay >= the memory limit: raise it first.
        let d = dir_with(&lab, &a, "memory.limit_in_bytes");
        write(&d.join("memory.memsw.limit_in_bytes"), "-1");
        write(&d.join("memory.limit_in_bytes"), "-1");
    }
    let o = verify(&lab, &[&a]);
    // On v1, memsw went with it: swap is allowed again too.
    assert_fails_only(&o, &a, if v2() { &["limits", "memory"] } else { &["limits", "memory", "swap"] });
    assert!(stdout(&o).contains("(105 % of the limit) fit: the limit does not hold"), "{}", text(&o));
}

#[test]
fn verify_names_ping_when_the_veth_is_deleted() {
    let lab = Lab::new();
    let (a, b) = lab.pair();
    let o = std::process::Command::new("ip")
        .args(["-n", &a.to_uppercase(), "link", "del", "veth0"])
        .output()
        .expect("run ip");
    assert!(o.status.success(), "ip link del: {}", text(&o));
    let o = verify(&lab, &[&a]);
    assert_fails_only(&o, &a, &["ping"]);
    let out = stdout(&o);
    assert!(out.contains(&format!("link: veth0 absent in netns {}", a.to_uppercase())), "{out}");
    let _ = b;
}

#[test]
fn verify_names_swap_when_swap_is_allowed_again() {
    let lab = Lab::new();
    let a = lab.name("w");
    lab.ok(&["up", &a]);
    // This host may have no swap device: the configuration alone must be caught.
    if v2() {
        let f = dir_with(&lab, &a, "memory.swap.max").join("memory.swap.max");
        write(&f, "max");
    } else {
        let d = dir_with(&lab, &a, "memory.memsw.limit_in_bytes");
        write(&d.join("memory.memsw.limit_in_bytes"), &(300u64 << 20).to_string());
    }
    let o = verify(&lab, &[&a]);
    assert_fails_only(&o, &a, &["swap"]);
    // Where the host has swap the 105 % hog swaps instead of being OOM-killed:
    // memory passes (the limit held its RAM) and says why there is no boundary.
    let out = stdout(&o);
    let memory = line(&out, &a, "memory");
    if host_has_swap() {
        assert!(memory.contains("210.0M swapped (") && memory.contains("the rest went to swap"), "{out}");
    } else {
        assert!(memory.contains("210.0M OOM-killed") && !memory.contains("swap"), "{out}");
    }
}

/// A swap device in use on this host (/proc/swaps lists more than its header).
fn host_has_swap() -> bool {
    read(Path::new("/proc/swaps")).lines().count() > 1
}

#[test]
fn status_json_shows_the_kernels_limits() {
    let lab = Lab::new();
    let a = lab.name("j");
    lab.ok(&["up", &a, "--cpu", "30", "--memory", "150M", "--pids", "64"]);
    let json = |lab: &Lab| -> serde_json::Value {
        let o = lab.ok(&["status", "--json", &a]);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&o)))
    };
    let j = json(&lab);
    let c = &j["containers"][0];
    assert_eq!(c["name"], a.as_str());
    assert_eq!(c["state"], "running");
    assert_eq!(c["init_pid"], lab.init_pid(&a));
    let k = &c["limits"];
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a number: {v} in {j}"));
    let pids = dir_with(&lab, &a, "pids.max").join("pids.max");
    if v2() {
        let d = dir_with(&lab, &a, "cpu.max");
        let cpu = read(&d.join("cpu.max"));
        assert_eq!(format!("{} {}", num(&k["cpu_quota_us"]), num(&k["cpu_period_us"])), cpu);
        assert_eq!(num(&k["memory_bytes"]).to_string(), read(&d.join("memory.max")));
    } else {
        let cpu = dir_with(&lab, &a, "cpu.cfs_quota_us");
        let mem = dir_with(&lab, &a, "memory.limit_in_bytes");
        assert_eq!(num(&k["cpu_quota_us"]).to_string(), read(&cpu.join("cpu.cfs_quota_us")));
        assert_eq!(num(&k["cpu_period_us"]).to_string(), read(&cpu.join("cpu.cfs_period_us")));
        assert_eq!(num(&k["memory_bytes"]).to_string(), read(&mem.join("memory.limit_in_bytes")));
        assert_eq!(num(&k["swappiness"]).to_string(), read(&mem.join("memory.swappiness")));
    }
    assert_eq!(num(&k["pids_max"]).to_string(), read(&pids));
    assert_eq!((num(&k["cpu_quota_us"]), num(&k["memory_bytes"]), num(&k["pids_max"])), (30000, 150 << 20, 64));
    assert_eq!(k["swap_bytes"], 0);
    assert_eq!(c["usage"]["pids"], 1, "init alone: {j}");

    // Changed behind host-setup's back: the kernel's value, not the saved one.
    write(&pids, "max");
    let j = json(&lab);
    let c = &j["containers"][0];
    assert_eq!(c["limits"]["pids_max"], "max", "{j}");
    assert_eq!(c["saved"]["pids_max"], 64, "{j}");
    let s = stdout(&lab.ok(&["status", &a]));
    assert!(s.contains("pids 64 (kernel: no limit)"), "plain status shows both: {s}");
}

#[test]
fn verify_refuses_a_container_that_is_not_running() {
    let lab = Lab::new();
    let a = lab.name("n");
    let o = lab.run(&["verify", &a]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{a} is not running")), "{}", text(&o));
    // And with none at all: nothing to verify is an error too, not a silent pass.
    let o = lab.run(&["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no running containers"), "{}", text(&o));
}
