//! `update`'s writes: new limits into a live container's cgroups, v1 or v2, in an
//! order the kernel accepts (host-setup/src/cgroup/ makes them; this changes them).
//!
//! v1's memsw rule: memory.memsw.limit_in_bytes (memory + swap) must be >=
//! memory.limit_in_bytes at every moment (EINVAL otherwise): raising the limit
//! above the current memsw means memsw first, else the limit first. Given only a
//! new memory limit, the container keeps the swap allowance it had (memsw - limit:
//! 0 for host-setup's containers, which never swap).
//! v2's memory.swap.max is swap alone (runtime-spec's `swap` is memory + swap).

use std::path::{Path, PathBuf};

use super::update::Changes;
use crate::cgroup::blkio;
use crate::cgroup::live::Limit;
use crate::error::{Result, SysContext};

/// One write, in order: `echo VALUE > FILE`.
pub type Write = (PathBuf, String);

/// -1 (or any negative) is "no limit".
fn limit(v: i64) -> Limit {
    if v < 0 {
        Limit::Max
    } else {
        Limit::Value(v as u64)
    }
}

fn le(a: Limit, b: Limit) -> bool {
    match (a, b) {
        (_, Limit::Max) => true,
        (Limit::Max, Limit::Value(_)) => false,
        (Limit::Value(x), Limit::Value(y)) => x <= y,
    }
}

fn read_limit(f: &Path) -> Option<Limit> {
    Limit::parse(&std::fs::read_to_string(f).ok()?)
}

/// v1 writes "-1" for no limit, v2 "max".
fn v1_text(l: Limit) -> String {
    match l {
        Limit::Max => "-1".into(),
        Limit::Value(n) => n.to_string(),
    }
}

/// Whether `dirs` are a v2 container's (one dir of the unified hierarchy).
pub fn is_v2(dirs: &[PathBuf]) -> bool {
    matches!(dirs, [d] if d.join("cgroup.controllers").exists() && !d.join("tasks").exists())
}

fn with(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.join(file).exists()).map(|d| d.join(file))
}

fn need(dirs: &[PathBuf], file: &str, what: &str) -> Result<PathBuf> {
    with(dirs, file).ok_or_else(|| {
        crate::precondition!("update: {what}: no {file} in the container's cgroups {dirs:?} (controller not in use)")
    })
}

/// runc's shares -> v2 cpu.weight: [2, 262144] onto [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142
}

/// The writes for `c`, reading the current values where the order or a kept value depends on them.
pub fn plan(dirs: &[PathBuf], c: &Changes) -> Result<Vec<Write>> {
    let v2 = is_v2(dirs);
    let mut w: Vec<Write> = vec![];
    if c.memory.is_some() || c.memory_swap.is_some() {
        let (lim_file, swap_file) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        let lim_path = need(dirs, lim_file, "memory")?;
        let swap_path = lim_path.with_file_name(swap_file);
        let l0 = read_limit(&lim_path).unwrap_or(Limit::Max);
        let l = c.memory.map(limit).unwrap_or(l0);
        let s = c.memory_swap.map(limit);
        if let Some(s) = s {
            if !le(l, s) {
                return Err(crate::usage!("update: memory+swap ({s}) must be at least the memory limit ({l}), or -1"));
            }
            if !swap_path.exists() && s != l {
                return Err(crate::precondition!(
                    "update: no {} (no swap accounting in this kernel): swap cannot be limited",
                    swap_path.display()
                ));
            }
        }
        if v2 {
            if let Some(s) = s.filter(|_| swap_path.exists()) {
                let swap = match (s, l) {
                    (Limit::Max, _) => "max".to_string(),
                    (Limit::Value(s), Limit::Value(l)) => (s - l).to_string(),
                    (Limit::Value(_), Limit::Max) => unreachable!("checked: memory+swap >= memory"),
                };
                w.push((swap_path, swap));
            }
            if c.memory.is_some() {
                w.push((lim_path, l.to_string()));
            }
        } else if !swap_path.exists() {
            w.push((lim_path, v1_text(l)));
        } else {
            let s0 = read_limit(&swap_path).unwrap_or(Limit::Max);
            // Keep the allowance the container had (memsw - limit) when only the limit changes.
            let s = s.unwrap_or(match (s0, l0, l) {
                (Limit::Value(s0), Limit::Value(l0), Limit::Value(l)) => Limit::Value(l + s0.saturating_sub(l0)),
                _ => Limit::Max,
            });
            let pair = [(lim_path, v1_text(l)), (swap_path, v1_text(s))];
            if le(l, s0) {
                w.extend(pair);
            } else {
                w.extend(pair.into_iter().rev());
            }
        }
    }
    if let Some(r) = c.memory_reservation {
        let file = if v2 { "memory.low" } else { "memory.soft_limit_in_bytes" };
        let l = limit(r);
        w.push((need(dirs, file, "memory reservation")?, if v2 { l.to_string() } else { v1_text(l) }));
    }
    if let Some(s) = c.swappiness {
        if v2 {
            return Err(crate::usage!("update: swappiness: cgroup v2 has no per-cgroup swappiness"));
        }
        w.push((need(dirs, "memory.swappiness", "swappiness")?, s.to_string()));
    }
    if let Some(sh) = c.cpu_shares.filter(|s| *s != 0) {
        match v2 {
            true => w.push((need(dirs, "cpu.weight", "cpu shares")?, shares_to_weight(sh).to_string())),
            false => w.push((need(dirs, "cpu.shares", "cpu shares")?, sh.to_string())),
        }
    }
    if c.cpu_quota.is_some() || c.cpu_period.is_some() {
        if v2 {
            let f = need(dirs, "cpu.max", "cpu quota")?;
            let now = std::fs::read_to_string(&f).unwrap_or_default();
            let mut it = now.split_whitespace();
            let (q0, p0) = (it.next().unwrap_or("max").to_string(), it.next().unwrap_or("100000").to_string());
            let q = c.cpu_quota.map(|q| limit(q).to_string()).unwrap_or(q0);
            let p = c.cpu_period.map(|p| p.to_string()).unwrap_or(p0);
            w.push((f, format!("{q} {p}")));
        } else {
            // The period first: the quota is checked against it.
            if let Some(p) = c.cpu_period {
                w.push((need(dirs, "cpu.cfs_period_us", "cpu period")?, p.to_string()));
            }
            if let Some(q) = c.cpu_quota {
                w.push((need(dirs, "cpu.cfs_quota_us", "cpu quota")?, v1_text(limit(q))));
            }
        }
    }
    if let Some(cpus) = &c.cpuset_cpus {
        w.push((need(dirs, "cpuset.cpus", "cpuset cpus")?, cpus.clone()));
    }
    if let Some(mems) = &c.cpuset_mems {
        w.push((need(dirs, "cpuset.mems", "cpuset mems")?, mems.clone()));
    }
    if let Some(b) = &c.block_io {
        let writes = if v2 { blkio::v2(b)? } else { blkio::v1(b) };
        for bw in writes {
            match bw.files.iter().find_map(|f| with(dirs, f)) {
                Some(f) => w.push((f, bw.value)),
                None => {
                    let d = dirs
                        .iter()
                        .find(|d| d.join(if v2 { "io.max" } else { "blkio.throttle.read_bps_device" }).exists());
                    let what = bw.what.replace("linux.resources.", "resources.");
                    return Err(crate::precondition!(
                        "update: {what}: no {} in the container's cgroups {}",
                        bw.files.join(" nor "),
                        d.map_or(format!("{dirs:?}"), |d| d.display().to_string())
                    ));
                }
            }
        }
    }
    if let Some(p) = c.pids_limit {
        // runtime-spec: 0 or -1 is no limit.
        let v = if p > 0 { p.to_string() } else { "max".into() };
        w.push((need(dirs, "pids.max", "pids limit")?, v));
    }
    Ok(w)
}

/// Plan, then write in order; the first failing write stops (naming file and errno).
pub fn apply(dirs: &[PathBuf], c: &Changes) -> Result<()> {
    for (file, value) in plan(dirs, c)? {
        log::debug!("echo {value} > {}", file.display());
        std::fs::write(&file, &value).sys(|| format!("update: write {value} to {}", file.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("update-unit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), v).unwrap();
        }
        d
    }

    fn names(w: &[Write]) -> Vec<(String, String)> {
        w.iter().map(|(f, v)| (f.file_name().unwrap().to_string_lossy().into_owned(), v.clone())).collect()
    }

    #[test]
    fn v1_memsw_order() {
        let mem = dir(
            "v1",
            &[("tasks", ""), ("memory.limit_in_bytes", "209715200\n"), ("memory.memsw.limit_in_bytes", "209715200\n")],
        );
        let up = Changes { memory: Some(300 << 20), ..Default::default() };
        // Raising: memsw first, and it keeps "no swap" (memsw = limit).
        let p = names(&plan(std::slice::from_ref(&mem), &up).unwrap());
        assert_eq!(
            p,
            [
                ("memory.memsw.limit_in_bytes".into(), "314572800".into()),
                ("memory.limit_in_bytes".into(), "314572800".into())
            ]
        );
        let down = Changes { memory: Some(100 << 20), memory_swap: Some(150 << 20), ..Default::default() };
        let p = names(&plan(std::slice::from_ref(&mem), &down).unwrap());
        assert_eq!(p[0].0, "memory.limit_in_bytes", "lowering: the limit first");
        assert_eq!(p[1], ("memory.memsw.limit_in_bytes".into(), "157286400".into()));
        let bad = Changes { memory: Some(100), memory_swap: Some(50), ..Default::default() };
        assert!(plan(std::slice::from_ref(&mem), &bad).is_err());
        let unl = Changes { memory: Some(-1), ..Default::default() };
        assert_eq!(
            names(&plan(std::slice::from_ref(&mem), &unl).unwrap())[0],
            ("memory.memsw.limit_in_bytes".into(), "-1".into())
        );
        std::fs::remove_dir_all(&mem).unwrap();
    }

    #[test]
    fn v2_files() {
        let d = dir(
            "v2",
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("memory.max", "max\n"),
                ("memory.swap.max", "0\n"),
                ("cpu.max", "40000 100000\n"),
                ("cpu.weight", "100\n"),
                ("pids.max", "max\n"),
            ],
        );
        let c = Changes {
            memory: Some(256 << 20),
            memory_swap: Some(300 << 20),
            cpu_period: Some(50000),
            cpu_shares: Some(1024),
            pids_limit: Some(0),
            ..Default::default()
        };
        let p = names(&plan(std::slice::from_ref(&d), &c).unwrap());
        assert_eq!(
            p,
            [
                ("memory.swap.max".into(), (44u64 << 20).to_string()),
                ("memory.max".into(), (256u64 << 20).to_string()),
                ("cpu.weight".into(), "39".into()),
                ("cpu.max".into(), "40000 50000".into()),
                ("pids.max".into(), "max".into()),
            ]
        );
        let e = plan(std::slice::from_ref(&d), &Changes { cpuset_cpus: Some("0".into()), ..Default::default() })
            .unwrap_err();
        assert!(e.to_string().contains("cpuset.cpus"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
