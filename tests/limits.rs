//! The limits as the kernel holds them, read back on the host from the cgroup files
//! themselves (not `status`, which repeats the saved settings), and the CPU quota
//! shown biting: a spinning process is throttled and stays at or under 42 % of a CPU.

use std::path::PathBuf;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use lab_tests::{text, wait_for, Lab};

/// The container's cgroup file `file` (v1: in whichever hierarchy has it).
fn cg_file(lab: &Lab, name: &str, file: &str) -> Option<PathBuf> {
    lab.cgroup_dirs(name).into_iter().map(|d| d.join(file)).find(|p| p.exists())
}

fn read(lab: &Lab, name: &str, file: &str) -> String {
    let p = cg_file(lab, name, file).unwrap_or_else(|| panic!("{file}: in none of {:?}", lab.cgroup_dirs(name)));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

/// A `KEY N` line of a flat-keyed cgroup file (cpu.stat, memory.events, ...).
fn keyed(lab: &Lab, name: &str, file: &str, key: &str) -> u64 {
    let t = read(lab, name, file);
    let v = t.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok());
    v.unwrap_or_else(|| panic!("{file} has no {key}: {t}"))
}

fn v2() -> bool {
    host_setup::cgroup::Cgroups::detect().unwrap().version() == 2
}

/// Every limit file, compared with the exact value it must hold. Swap off: v1
/// memsw = the memory limit and swappiness 0; v2 memory.swap.max 0.
fn assert_kernel_limits(lab: &Lab, name: &str, quota: u64, period: u64, bytes: u64, pids: &str) {
    let want: Vec<(&str, String)> = if v2() {
        vec![
            ("cpu.max", format!("{quota} {period}")),
            ("memory.max", bytes.to_string()),
            ("memory.swap.max", "0".into()),
            ("pids.max", pids.into()),
        ]
    } else {
        let mut w = vec![
            ("cpu.cfs_quota_us", quota.to_string()),
            ("cpu.cfs_period_us", period.to_string()),
            ("memory.limit_in_bytes", bytes.to_string()),
            ("memory.swappiness", "0".into()),
            ("pids.max", pids.into()),
        ];
        // Only with swap accounting (without it, the kernel has no memsw files and
        // swappiness 0 is all there is); this project's machines have it.
        if cg_file(lab, name, "memory.memsw.limit_in_bytes").is_some() {
            w.push(("memory.memsw.limit_in_bytes", bytes.to_string()));
        }
        w
    };
    for (file, value) in &want {
        assert_eq!(&read(lab, name, file), value, "{file} of {name} in {:?}", lab.cgroup_dirs(name));
    }
}

#[test]
fn the_kernel_holds_the_tutorial_limits_by_default() {
    let lab = Lab::new();
    let a = lab.name("d");
    lab.ok(&["up", &a]);
    assert_kernel_limits(&lab, &a, 40_000, 100_000, 200 << 20, "512");
}

#[test]
fn the_kernel_holds_custom_limits() {
    let lab = Lab::new();
    let (a, b, p) = (lab.name("c"), lab.name("h"), lab.name("p"));
    lab.ok(&["up", &a, "--cpu", "25", "--memory", "300M", "--pids", "100"]);
    assert_kernel_limits(&lab, &a, 25_000, 100_000, 300 << 20, "100");
    // More than one CPU, and a size in bytes and in G.
    lab.ok(&["up", &b, "--cpu", "150", "--memory", "1G", "--pids", "8"]);
    assert_kernel_limits(&lab, &b, 150_000, 100_000, 1 << 30, "8");
    // --privileged: the tutorial's limits, and no pids limit at all.
    lab.ok(&["up", &p, "--privileged", "--memory", "123456789"]);
    assert_kernel_limits(&lab, &p, 40_000, 100_000, 123_456_789 & !4095, "max");
}

/// CPU time used so far by the container's cgroup, in ns.
fn cpu_used_ns(lab: &Lab, name: &str) -> u64 {
    if v2() {
        keyed(lab, name, "cpu.stat", "usage_usec") * 1000
    } else {
        read(lab, name, "cpuacct.usage").parse().unwrap()
    }
}

/// (nr_throttled, throttled time in ns) of the container's cpu.stat.
fn throttled(lab: &Lab, name: &str) -> (u64, u64) {
    let n = keyed(lab, name, "cpu.stat", "nr_throttled");
    let t = if v2() {
        keyed(lab, name, "cpu.stat", "throttled_usec") * 1000
    } else {
        keyed(lab, name, "cpu.stat", "throttled_time")
    };
    (n, t)
}

#[test]
fn a_spinning_process_is_throttled_to_40_percent() {
    let lab = Lab::new();
    let a = lab.name("s");
    lab.ok(&["up", &a]);
    let hog = lab
        .cmd(&["exec", &a, "--", "stress", "-c", "1", "-t", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("stress to spin", || (cpu_used_ns(&lab, &a) > 50_000_000).then_some(()));
    let th0 = throttled(&lab, &a);
    // The window's ends are taken outside the reads, so that a delay of this test
    // can only make the window longer and the share lower, never higher. Over 5 s
    // the quota allows 2.0 s, plus at most one period's 40 ms at the edges: 40.8 %.
    let t0 = Instant::now();
    let u0 = cpu_used_ns(&lab, &a);
    sleep(Duration::from_secs(5));
    let u1 = cpu_used_ns(&lab, &a);
    let window = t0.elapsed();
    let share = (u1 - u0) as f64 / window.as_nanos() as f64;
    // The proof that the quota bites, whatever else the machine runs: the kernel
    // throttled the cgroup (on a machine too busy to give stress 40 ms of a 100 ms
    // period, wait until it manages once).
    let th1 = wait_for("the cgroup to be throttled", || {
        let t = throttled(&lab, &a);
        (t.0 > th0.0 && t.1 > th0.1).then_some(t)
    });
    // SIGTERM, which exec passes on to stress (a SIGKILL would leave it running).
    unsafe { libc::kill(hog.id() as i32, libc::SIGTERM) };
    let o = hog.wait_with_output().unwrap();
    assert!(
        share <= 0.42,
        "stress -c 1 used {:.1} % of a CPU over {:?}; the limit is 40 % ({})",
        share * 100.0,
        window,
        text(&o)
    );
    eprintln!(
        "stress -c 1: {:.1} % of a CPU over {:.1} s; throttled {} times for {} ms",
        share * 100.0,
        window.as_secs_f64(),
        th1.0 - th0.0,
        (th1.1 - th0.1) / 1_000_000
    );
}
