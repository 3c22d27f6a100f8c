//! What the kernel holds for a container right now: its limits read back from the
//! cgroup files (not the settings saved in the journal), for `status`, `status
//! --json` and `verify`. Someone may have written a cgroup file behind host-setup's
//! back; these readings show it.
//!
//! The container's cgroup directories come from its journal; which one holds which
//! controller is found by the control files in it (on v1 each controller has its
//! own hierarchy, or a few share one, like Ubuntu's cpu,cpuacct).

use std::fs;
use std::path::{Path, PathBuf};

use super::{keyed_u64, Cgroups};
use crate::error::{Result, SysContext};

/// v1 shows "no limit" as a huge number (PAGE_COUNTER_MAX pages, or -1 for
/// cpu.cfs_quota_us); anything from 2^62 on is taken as that.
const V1_UNLIMITED: u64 = 1 << 62;

/// One limit value as the kernel has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit: "max" (v2), -1 or PAGE_COUNTER_MAX (v1).
    Max,
    Value(u64),
}

impl Limit {
    /// "max", "-1", a number; v1's huge "unlimited" numbers are `Max`.
    pub fn parse(text: &str) -> Option<Limit> {
        let t = text.trim();
        if t == "max" || t == "-1" {
            return Some(Limit::Max);
        }
        let n: u64 = t.parse().ok()?;
        Some(if n >= V1_UNLIMITED { Limit::Max } else { Limit::Value(n) })
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Max => f.write_str("max"),
            Limit::Value(n) => write!(f, "{n}"),
        }
    }
}

/// The limits in force. `None`: the file is not there (the cgroup is gone, or the
/// kernel has no such file, e.g. no swap accounting).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelLimits {
    pub cpu_quota_us: Option<Limit>,
    pub cpu_period_us: Option<u64>,
    pub memory_bytes: Option<Limit>,
    /// Swap the container may use beyond its memory: v1 memsw minus memory
    /// (0 when they are equal), v2 memory.swap.max.
    pub swap_bytes: Option<Limit>,
    /// v1 only (memory.swappiness); v2 has none per cgroup.
    pub swappiness: Option<u64>,
    pub pids_max: Option<Limit>,
}

/// The container's cgroup directories by what they control.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub version: u8,
    pub cpu: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
}

impl Dirs {
    /// Sort `dirs` (from the journal) by controller, on a host with `cg`.
    pub fn of(cg: &Cgroups, dirs: &[PathBuf]) -> Dirs {
        let v = cg.version();
        let with = |file: &str| dirs.iter().find(|d| d.join(file).exists()).cloned();
        let (cpu, memory) = if v == 1 {
            (with("cpu.cfs_quota_us"), with("memory.limit_in_bytes"))
        } else {
            (with("cpu.max"), with("memory.max"))
        };
        Dirs { version: v, cpu, memory, pids: with("pids.max") }
    }

    pub fn memory_limit_file(&self) -> Option<PathBuf> {
        let f = if self.version == 1 { "memory.limit_in_bytes" } else { "memory.max" };
        self.memory.as_ref().map(|d| d.join(f))
    }

    /// memory.memsw.limit_in_bytes (v1) or memory.swap.max (v2).
    pub fn swap_limit_file(&self) -> Option<PathBuf> {
        let f = if self.version == 1 { "memory.memsw.limit_in_bytes" } else { "memory.swap.max" };
        self.memory.as_ref().map(|d| d.join(f))
    }

    /// Read the limits back.
    pub fn limits(&self) -> KernelLimits {
        let mut k = KernelLimits::default();
        if let Some(cpu) = &self.cpu {
            if self.version == 1 {
                k.cpu_quota_us = read(&cpu.join("cpu.cfs_quota_us")).and_then(|t| Limit::parse(&t));
                k.cpu_period_us = read(&cpu.join("cpu.cfs_period_us")).and_then(|t| t.trim().parse().ok());
            } else if let Some(t) = read(&cpu.join("cpu.max")) {
                // "40000 100000" or "max 100000"
                let mut w = t.split_whitespace();
                k.cpu_quota_us = w.next().and_then(Limit::parse);
                k.cpu_period_us = w.next().and_then(|p| p.parse().ok());
            }
        }
        if let Some(mem) = &self.memory {
            k.memory_bytes = self.memory_limit_file().and_then(|f| read(&f)).and_then(|t| Limit::parse(&t));
            let swap = self.swap_limit_file().and_then(|f| read(&f)).and_then(|t| Limit::parse(&t));
            k.swap_bytes = if self.version == 1 {
                match (swap, k.memory_bytes) {
                    (Some(Limit::Value(sw)), Some(Limit::Value(m))) => Some(Limit::Value(sw.saturating_sub(m))),
                    (Some(Limit::Value(_)), _) => Some(Limit::Value(0)),
                    (s, _) => s,
                }
            } else {
                swap
            };
            if self.version == 1 {
                k.swappiness = read(&mem.join("memory.swappiness")).and_then(|t| t.trim().parse().ok());
            }
        }
        if let Some(p) = &self.pids {
            k.pids_max = read(&p.join("pids.max")).and_then(|t| Limit::parse(&t));
        }
        k
    }

    /// Swap in use by the container now: v1 memsw.usage minus usage, v2
    /// memory.swap.current. None without swap accounting.
    pub fn swap_used(&self) -> Option<u64> {
        let mem = self.memory.as_ref()?;
        if self.version == 1 {
            let both = read(&mem.join("memory.memsw.usage_in_bytes"))?.trim().parse::<u64>().ok()?;
            let ram = read(&mem.join("memory.usage_in_bytes"))?.trim().parse::<u64>().ok()?;
            Some(both.saturating_sub(ram))
        } else {
            read(&mem.join("memory.swap.current"))?.trim().parse().ok()
        }
    }

    /// How many periods the CPU quota held the cgroup back so far (cpu.stat
    /// nr_throttled, in both versions).
    pub fn nr_throttled(&self) -> Option<u64> {
        keyed_u64(&self.cpu.as_ref()?.join("cpu.stat"), "nr_throttled")
    }

    /// The pids in the container's cgroup (host pids), sorted.
    pub fn procs(&self) -> Vec<i32> {
        let mut p = self.memory.as_ref().or(self.pids.as_ref()).map(|d| crate::cgroup::procs(d)).unwrap_or_default();
        p.sort_unstable();
        p
    }
}

fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Whether the host has any swap device or file in use (/proc/swaps beyond its header).
pub fn host_has_swap() -> Result<bool> {
    let text = fs::read_to_string("/proc/swaps").sys(|| "read /proc/swaps".into())?;
    Ok(text.lines().skip(1).any(|l| !l.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_the_kernel_writes_them() {
        assert_eq!(Limit::parse("max\n"), Some(Limit::Max));
        assert_eq!(Limit::parse("-1\n"), Some(Limit::Max));
        assert_eq!(Limit::parse("9223372036854771712\n"), Some(Limit::Max));
        assert_eq!(Limit::parse("209715200\n"), Some(Limit::Value(209715200)));
        assert_eq!(Limit::parse("junk"), None);
        assert_eq!(Limit::Max.to_string(), "max");
    }

    #[test]
    fn v1_files_are_read_back() {
        let d = std::env::temp_dir().join(format!("live-unit-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("cpu.cfs_quota_us", "40000\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.stat", "nr_periods 10\nnr_throttled 7\nthrottled_time 5\n"),
            ("memory.limit_in_bytes", "209715200\n"),
            ("memory.memsw.limit_in_bytes", "314572800\n"),
            ("memory.swappiness", "0\n"),
            ("pids.max", "max\n"),
        ] {
            fs::write(d.join(f), v).unwrap();
        }
        let dirs = Dirs { version: 1, cpu: Some(d.clone()), memory: Some(d.clone()), pids: Some(d.clone()) };
        let k = dirs.limits();
        assert_eq!(k.cpu_quota_us, Some(Limit::Value(40000)));
        assert_eq!(k.cpu_period_us, Some(100000));
        assert_eq!(k.memory_bytes, Some(Limit::Value(200 << 20)));
        assert_eq!(k.swap_bytes, Some(Limit::Value(100 << 20)), "memsw minus memory");
        assert_eq!(k.swappiness, Some(0));
        assert_eq!(k.pids_max, Some(Limit::Max));
        assert_eq!(dirs.nr_throttled(), Some(7));
        fs::remove_dir_all(&d).unwrap();
    }
}
