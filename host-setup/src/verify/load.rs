//! The checks that load the container and measure from the host: the CPU share
//! under `stress -c`, the memory boundary found by `stress --vm` up to the OOM
//! kill, swap, and that nothing of it is left afterwards.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::run::{status_field, Inside};
use super::{Check, Runner, Target};
use crate::cgroup::live::Limit;
use crate::cgroup::Cgroups;
use crate::state::Paths;

/// How long the CPU share is measured, and how many times at most.
const CPU_WINDOW: Duration = Duration::from_secs(2);
const CPU_TRIES: usize = 3;

/// `stress -c N` inside (N = one more worker than the quota has CPUs, so the
/// quota is what holds it), the cgroup's CPU time over two seconds from the host,
/// against the limit. Pass: at most the limit plus 2 points, and the cgroup was
/// throttled (the quota, not the scheduler, held it back). Fail: more than that,
/// or cpu.stat counted no quota period while stress ran (no quota in force).
/// On a host so busy that stress never reaches the quota in three windows, the
/// quota cannot be shown by its effect: skip, saying so.
pub fn cpu(runner: &Runner, cg: &Cgroups, t: &Target) -> Check {
    let l = &t.spec.limits;
    let limit = l.cpu_quota_us as f64 * 100.0 / l.cpu_period_us as f64;
    let workers = (l.cpu_quota_us / l.cpu_period_us + 1).to_string();
    let stress = match runner.spawn(&t.name, &["stress", "-c", &workers, "-t", "60"]) {
        Ok(p) => p,
        Err(e) => return Check::fail("cpu", format!("spawn exec stress: {}", crate::error::io_text(&e))),
    };
    let mut stress = Started(Some(stress));
    // Until the workers run: stress itself plus N of them.
    let want = workers.parse::<usize>().unwrap_or(1) + 1;
    if !stress.wait_for(Duration::from_secs(10), |p| count_named(&p.descendants(), "stress") >= want) {
        let ran = stress.end();
        return Check::fail("cpu", format!("stress -c {workers} did not start: {}", ran.said()));
    }
    std::thread::sleep(Duration::from_millis(300));
    let stat = t.dirs.cpu.as_ref().map(|d| d.join("cpu.stat"));
    let reading = || {
        let periods = stat.as_ref().and_then(|f| crate::cgroup::keyed_u64(f, "nr_periods"));
        (cg.usage(&t.cgroup_dirs).cpu_ns, t.dirs.nr_throttled().zip(periods), Instant::now())
    };
    let mut last = String::new();
    for _ in 0..CPU_TRIES {
        let (u0, c0, t0) = reading();
        std::thread::sleep(CPU_WINDOW);
        let (u1, c1, t1) = reading();
        let share = u1.saturating_sub(u0) as f64 * 100.0 / (t1 - t0).as_nanos() as f64;
        let Some(((th, periods), (th0, periods0))) = c1.zip(c0) else {
            stress.end();
            return Check::fail("cpu", format!("{share:.1} % of one CPU; no nr_throttled/nr_periods in cpu.stat"));
        };
        let (throttled, periods) = (th.saturating_sub(th0), periods.saturating_sub(periods0));
        last = format!(
            "{share:.1} % of one CPU under stress -c {workers} (limit {limit:.0} %), throttled in {throttled} of {periods} periods"
        );
        let over = share > limit + 2.0;
        if over || periods == 0 || throttled > 0 {
            let ran = stress.end();
            if ran.code == Some(127) || ran.code == Some(126) {
                return Check::fail("cpu", format!("stress: {}", ran.said()));
            }
            let why = if periods == 0 && !over { ": no CPU quota in force" } else { "" };
            return Check::by("cpu", !over && periods > 0, format!("{last}{why}"));
        }
    }
    stress.end();
    Check::skip(
        "cpu",
        format!("{last}: the host is too busy for stress to reach the quota (it is in force: its periods are counted); run verify again"),
    )
}

/// A started program that is ended (its descendants SIGKILLed) whatever happens.
struct Started(Option<Inside>);

impl Started {
    fn wait_for(&mut self, max: Duration, mut cond: impl FnMut(&mut Inside) -> bool) -> bool {
        let deadline = Instant::now() + max;
        while let Some(p) = self.0.as_mut() {
            if cond(p) {
                return true;
            }
            if !p.running() || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn end(&mut self) -> super::run::Ran {
        self.0.take().expect("ended once").end()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.end();
        }
    }
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

fn count_named(pids: &[i32], name: &str) -> usize {
    pids.iter().filter(|p| comm(**p) == name).count()
}

/// The hog among `pids`: the largest VmRSS + VmSwap, as (resident, swapped) bytes.
fn hog(pids: &[i32]) -> (u64, u64) {
    let kib = |s: &str, k: &str| status_field(s, k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024;
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .map(|s| (kib(&s, "VmRSS"), kib(&s, "VmSwap")))
        .max_by_key(|(rss, swap)| rss + swap)
        .unwrap_or((0, 0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The worker had all its bytes resident (VmRSS), and was ended by us.
    Fits,
    OomKilled,
    /// The worker touched all its bytes but only `resident` stayed in memory, the
    /// rest went to swap: the limit held its RAM, and with swap allowed (not the
    /// tutorial's swappiness 0 / memory.swap.max 0) no OOM kill comes.
    Swapped {
        resident: u64,
        swapped: u64,
    },
}

/// One `stress --vm 1 --vm-bytes SIZE --vm-hang 0` run: it fits once the worker's
/// VmRSS reaches SIZE (then we end it; no timing involved), it swapped once VmRSS +
/// VmSwap reach SIZE with some in swap (`--vm-hang 0`: it touched every page and
/// sleeps), or it is OOM-killed (the cgroup's oom_kill counter moves while it runs).
fn probe(runner: &Runner, cg: &Cgroups, t: &Target, bytes: u64) -> Result<Probe, String> {
    let kib = format!("{}K", bytes / 1024);
    let oom0 = cg.usage(&t.cgroup_dirs).oom_kills;
    let p = runner
        .spawn(&t.name, &["stress", "--vm", "1", "--vm-bytes", &kib, "--vm-hang", "0", "-t", "60"])
        .map_err(|e| format!("spawn exec stress: {}", crate::error::io_text(&e)))?;
    let mut p = Started(Some(p));
    let mut seen = (0, 0);
    let done = p.wait_for(Duration::from_secs(30), |p| {
        seen = hog(&p.descendants());
        seen.0 >= bytes || (seen.1 > 0 && seen.0 + seen.1 >= bytes)
    });
    let ran = p.end();
    let oom1 = cg.usage(&t.cgroup_dirs).oom_kills;
    match (done, oom1 > oom0) {
        (true, false) if seen.0 >= bytes => Ok(Probe::Fits),
        (true, false) => Ok(Probe::Swapped { resident: seen.0, swapped: seen.1 }),
        // Right at the boundary the worker may get all its bytes and still be
        // killed a moment later (the cgroup's other pages grow): it did not fit.
        (_, true) => Ok(Probe::OomKilled),
        (false, false) => Err(format!("stress --vm-bytes {kib} neither fit nor was OOM-killed: {}", ran.said())),
    }
}

fn mib(b: u64) -> String {
    format!("{:.1}M", b as f64 / (1u64 << 20) as f64)
}

/// The memory boundary: 90 % of the limit must fit and 105 % be OOM-killed;
/// four bisection steps between them narrow the boundary to under 1 % of the
/// limit. The oom_kill counter (memory.oom_control v1, memory.events v2) must
/// move once per kill. With swap allowed (the swap check fails then) the 105 %
/// hog swaps instead of being killed: the limit holds if its resident part stayed
/// within the limit, and the line says that the OOM boundary cannot be shown.
pub fn memory(runner: &Runner, cg: &Cgroups, t: &Target) -> Check {
    let limit = t.spec.limits.memory_bytes;
    let page = |b: u64| b / 4096 * 4096;
    let oom0 = cg.usage(&t.cgroup_dirs).oom_kills;
    let mut seen: Vec<(u64, Probe)> = vec![];
    let mut run = |b: u64| -> Result<Probe, String> {
        let r = probe(runner, cg, t, b)?;
        seen.push((b, r));
        Ok(r)
    };
    let result = (|| -> Result<Held, String> {
        let (mut lo, mut hi) = (page(limit * 90 / 100), page(limit * 105 / 100));
        if run(lo)? == Probe::OomKilled {
            return Err(format!("{} (90 % of the limit) was OOM-killed", mib(lo)));
        }
        match run(hi)? {
            Probe::Fits => return Err(format!("{} (105 % of the limit) fit: the limit does not hold", mib(hi))),
            Probe::Swapped { resident, .. } if resident > limit => {
                return Err(format!(
                    "{} (105 % of the limit) had {} resident: the limit does not hold",
                    mib(hi),
                    mib(resident)
                ))
            }
            Probe::Swapped { resident, .. } => return Ok(Held::Swapped(resident)),
            Probe::OomKilled => {}
        }
        for _ in 0..4 {
            let mid = page((lo + hi) / 2);
            match run(mid)? {
                Probe::Fits => lo = mid,
                // Swapped: it did not fit in memory either.
                Probe::OomKilled | Probe::Swapped { .. } => hi = mid,
            }
        }
        Ok(Held::Boundary(lo, hi))
    })();
    let oom1 = cg.usage(&t.cgroup_dirs).oom_kills;
    seen.sort_by_key(|(b, _)| *b);
    let steps: Vec<String> = seen
        .iter()
        .map(|(b, r)| match r {
            Probe::Fits => format!("{} ok", mib(*b)),
            Probe::OomKilled => format!("{} OOM-killed", mib(*b)),
            Probe::Swapped { resident, swapped } => {
                format!("{} swapped ({} resident, {} in swap)", mib(*b), mib(*resident), mib(*swapped))
            }
        })
        .collect();
    let kills = seen.iter().filter(|(_, r)| *r == Probe::OomKilled).count() as u64;
    let counted = format!("oom_kill {oom0} -> {oom1}");
    let steps = steps.join(", ");
    match result {
        Ok(Held::Boundary(lo, hi)) => Check::by(
            "memory",
            oom1 - oom0 == kills,
            format!("{steps}; boundary {}..{} (limit {}); {counted}", mib(lo), mib(hi), mib(limit)),
        ),
        Ok(Held::Swapped(resident)) => Check::by(
            "memory",
            oom1 - oom0 == kills,
            format!(
                "{steps}; the limit holds its memory at {} (limit {}), the rest went to swap: with swap allowed \
                 there is no OOM boundary to show (see swap); {counted}",
                mib(resident),
                mib(limit)
            ),
        ),
        Err(e) => Check::fail("memory", format!("{e}; {steps}; {counted}")),
    }
}

/// How the memory limit was seen to hold.
enum Held {
    /// The largest size that fit and the smallest that was OOM-killed.
    Boundary(u64, u64),
    /// The 105 % hog swapped; its resident bytes (within the limit).
    Swapped(u64),
}

/// Swap off: by configuration (v1 memsw limit = memory limit and swappiness 0;
/// v2 memory.swap.max 0), and, where the host has swap, by effect: after the
/// memory hogs the container has nothing in swap.
pub fn swap(t: &Target) -> Check {
    let k = t.dirs.limits();
    let file = t.dirs.swap_limit_file().map(|f| f.display().to_string()).unwrap_or_default();
    let host_swap = match crate::cgroup::live::host_has_swap() {
        Ok(s) => s,
        Err(e) => return Check::fail("swap", e.to_string()),
    };
    let mut bad = vec![];
    let config = match (t.dirs.version, k.swap_bytes, k.swappiness) {
        (1, Some(Limit::Value(0)), Some(0)) => "memsw limit = memory limit, swappiness 0".to_string(),
        (1, None, Some(0)) => "swappiness 0 (no swap accounting: memsw absent)".to_string(),
        (1, sw, sp) => {
            bad.push(format!(
                "swap allowed: memsw - memory = {}, swappiness {}",
                sw.map_or("?".into(), |s| s.to_string()),
                sp.map_or("?".into(), |s| s.to_string())
            ));
            String::new()
        }
        (_, Some(Limit::Value(0)), _) => "memory.swap.max 0".to_string(),
        (_, None, _) if !host_swap => "no swap accounting (memory.swap.max absent)".to_string(),
        (_, sw, _) => {
            bad.push(format!("memory.swap.max {}", sw.map_or("absent".into(), |s| s.to_string())));
            String::new()
        }
    };
    let effect = if host_swap {
        match t.dirs.swap_used() {
            Some(0) => "0 bytes in swap after the memory hogs".to_string(),
            Some(n) => {
                bad.push(format!("{n} bytes in swap after the memory hogs"));
                String::new()
            }
            None => "swap use unreadable".to_string(),
        }
    } else {
        "the host has no swap".to_string()
    };
    if bad.is_empty() {
        Check::pass("swap", format!("{config}; {effect}"))
    } else {
        Check::fail("swap", format!("{} ({file})", bad.join("; ")))
    }
}

/// What `cleanup` compares: the processes in the container's cgroup and the
/// entries of its upper directory, before the checks that start programs.
pub struct Snapshot {
    procs: Vec<i32>,
    upper: BTreeSet<String>,
}

impl Snapshot {
    pub fn take(paths: &Paths, t: &Target) -> Snapshot {
        Snapshot { procs: t.dirs.procs(), upper: tree(&crate::disk::upper(paths, &t.spec)) }
    }
}

/// Relative paths of everything under `dir`.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if e.file_type().is_ok_and(|f| f.is_dir()) {
                todo.push(p);
            }
        }
    }
    out
}

/// The container as it was: the same processes in its cgroup (killed ones may
/// take a moment to leave it) and nothing new in its upper directory.
pub fn cleanup(paths: &Paths, t: &Target, before: &Snapshot) -> Check {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut procs = t.dirs.procs();
    while procs != before.procs && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        procs = t.dirs.procs();
    }
    let upper = tree(&crate::disk::upper(paths, &t.spec));
    let added: Vec<&String> = upper.difference(&before.upper).collect();
    let extra: Vec<&i32> = procs.iter().filter(|p| !before.procs.contains(p)).collect();
    let gone: Vec<&i32> = before.procs.iter().filter(|p| !procs.contains(p)).collect();
    if added.is_empty() && extra.is_empty() && gone.is_empty() {
        return Check::pass(
            "cleanup",
            format!("the same {} processes in its cgroup as before, nothing new in its upper dir", procs.len()),
        );
    }
    let mut bad = vec![];
    if !extra.is_empty() {
        bad.push(format!("left running: {extra:?}"));
    }
    if !gone.is_empty() {
        bad.push(format!("gone: {gone:?}"));
    }
    if !added.is_empty() {
        bad.push(format!("new in {}: {added:?}", crate::disk::upper(paths, &t.spec).display()));
    }
    Check::fail("cleanup", bad.join("; "))
}
