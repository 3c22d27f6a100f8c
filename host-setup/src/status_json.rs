//! `host-setup status --json`: what `status` shows, for scripts, with the kernel's
//! live values (limits read back from the cgroup files, usage, OOM kills) beside
//! the settings saved at `up`; and the "(kernel: ...)" notes plain `status` adds
//! where the two differ.
//!
//! ```text
//! {"state_dir": "/var/lib/host-setup", "cgroup_version": 1, "containers": [
//!   {"name": "red", "state": "running", "init_pid": 4242, ...,
//!    "limits": {"cpu_quota_us": 40000, "cpu_period_us": 100000, "memory_bytes": 209715200,
//!               "swap_bytes": 0, "swappiness": 0, "pids_max": 512},       <- the kernel's
//!    "saved":  {"cpu_quota_us": 40000, ..., "pids_max": 512},              <- the journal's
//!    "usage":  {"cpu_ns": 123456, "memory_bytes": 1048576, "pids": 1, "oom_kills": 0},
//!    "disk":   {"saved_bytes": 20971520, "filesystem": "tmpfs", "mount": ".../disk",
//!               "limit_bytes": 20971520, "used_bytes": 4096}}]}               <- --disk
//! ```
//! A limit is a number, `"max"` for no limit, or null if the kernel has no such
//! file (the cgroup is gone; no swap accounting).

use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::cgroup::live::{Dirs, KernelLimits, Limit};
use crate::cgroup::Cgroups;
use crate::error::Result;
use crate::spec::{format_bytes, Spec};
use crate::state::{Journal, Paths, Role};

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Limit::Max => s.serialize_str("max"),
            Limit::Value(n) => s.serialize_u64(*n),
        }
    }
}

#[derive(Serialize)]
struct Report {
    state_dir: PathBuf,
    cgroup_version: Option<u8>,
    containers: Vec<Container>,
}

#[derive(Serialize, Default)]
struct Container {
    name: String,
    /// running, starting, exited (N), gone (...), incomplete (...), not up, unreadable journal
    state: String,
    init_pid: Option<i32>,
    exit_code: Option<i32>,
    hostname: Option<String>,
    netns: Option<String>,
    net: Option<Net>,
    /// The kernel's values of the sysctls host-setup sets in the container's netns,
    /// by sysctl(8) name; null if the netns is absent.
    sysctls: Option<std::collections::BTreeMap<String, String>>,
    /// On a bridge network: its name, bridge, address, ports.
    network: Option<crate::network::Membership>,
    privileged: bool,
    /// --userns: the host ids, and the kernel's maps while init runs; null without.
    userns: Option<Userns>,
    /// The kernel's, read back now; null when the container has no cgroup.
    limits: Option<Live>,
    /// The journal's (what `up` asked for).
    saved: Option<Saved>,
    usage: Option<Usage>,
    /// --disk: the limit asked for, and the kernel's size and use of the
    /// container's filesystem (null once unmounted); null without --disk.
    disk: Option<Disk>,
    layers: Vec<PathBuf>,
    cgroups: Vec<PathBuf>,
    command: Vec<String>,
    /// --image and the run options (-e, -w, -u, -v, --tmpfs, --read-only); null without.
    run: Option<crate::spec::runopts_show::RunView>,
}

#[derive(Serialize)]
struct Net {
    iface: String,
    address: String,
    peer: Option<String>,
    /// up, down, absent, not made yet, or unknown (...)
    link: String,
}

#[derive(Serialize)]
struct Userns {
    uid: u32,
    gid: u32,
    count: u32,
    /// /proc/INIT/uid_map, "0 1000000000 65536"; null once init is gone.
    uid_map: Option<String>,
    gid_map: Option<String>,
}

#[derive(Serialize)]
struct Live {
    cpu_quota_us: Option<Limit>,
    cpu_period_us: Option<u64>,
    memory_bytes: Option<Limit>,
    swap_bytes: Option<Limit>,
    swappiness: Option<u64>,
    pids_max: Option<Limit>,
}

#[derive(Serialize)]
struct Saved {
    cpu_quota_us: u64,
    cpu_period_us: u64,
    memory_bytes: u64,
    swap_bytes: u64,
    pids_max: Limit,
}

#[derive(Serialize)]
struct Disk {
    saved_bytes: u64,
    filesystem: &'static str,
    mount: PathBuf,
    limit_bytes: Option<u64>,
    used_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Usage {
    cpu_ns: u64,
    memory_bytes: u64,
    pids: u64,
    oom_kills: u64,
}

/// The JSON report on `names` (all containers if empty), one document.
pub fn report(paths: &Paths, names: &[String]) -> Result<String> {
    let names: Vec<String> = if names.is_empty() { paths.container_names() } else { names.to_vec() };
    let cg = Cgroups::detect().ok();
    let mut containers = vec![];
    for name in names {
        containers.push(container(paths, cg.as_ref(), name)?);
    }
    let r =
        Report { state_dir: paths.state_dir.clone(), cgroup_version: cg.as_ref().map(Cgroups::version), containers };
    let mut text = serde_json::to_string_pretty(&r).map_err(|e| crate::failed!("status --json: {e}"))?;
    text.push('\n');
    Ok(text)
}

fn container(paths: &Paths, cg: Option<&Cgroups>, name: String) -> Result<Container> {
    let Some(j) = Journal::read(paths, &name)? else {
        return Ok(Container { name, state: "not up".into(), ..Default::default() });
    };
    let Some(spec) = j.spec() else {
        return Ok(Container { name, state: "unreadable journal".into(), ..Default::default() });
    };
    let dirs = j.cgroup_dirs();
    let exists = dirs.iter().any(|d| d.exists());
    let live = cg.filter(|_| exists).map(|cg| Dirs::of(cg, &dirs).limits());
    let usage = cg.filter(|_| exists).map(|cg| {
        let u = cg.usage(&dirs);
        let oom_kills = j.exited().map(|(_, o)| o).unwrap_or(0).max(u.oom_kills);
        Usage { cpu_ns: u.cpu_ns, memory_bytes: u.memory_bytes, pids: u.pids, oom_kills }
    });
    let net = spec.net.as_ref().map(|n| Net {
        iface: n.iface.clone(),
        address: format!("{}/{}", n.addr, n.prefix_len),
        peer: n.peer.clone(),
        link: match crate::net::link_status(&spec.netns, &n.iface) {
            Ok(Some(s)) if s.up => "up".into(),
            Ok(Some(_)) => "down".into(),
            Ok(None) if crate::net::netns_exists(&spec.netns) => "not made yet".into(),
            Ok(None) => "absent".into(),
            Err(e) => format!("unknown ({e})"),
        },
    });
    let l = &spec.limits;
    let network = crate::network::membership(paths, &spec);
    Ok(Container {
        network,
        state: j.state_word(),
        init_pid: j.proc(Role::Init).map(|p| p.pid),
        exit_code: j.exited().map(|(c, _)| c),
        hostname: Some(spec.hostname.clone()),
        netns: Some(spec.netns.clone()),
        sysctls: crate::net::sysctl::status_map(&spec.netns),
        net,
        privileged: spec.privileged,
        userns: j.ids().map(|ids| {
            let live = j.proc(Role::Init).filter(|p| p.alive()).and_then(|p| crate::userns::live_maps(p.pid));
            let (uid_map, gid_map) = live.map_or((None, None), |(u, g)| (Some(u), Some(g)));
            Userns { uid: ids.uid, gid: ids.gid, count: ids.count, uid_map, gid_map }
        }),
        limits: live.map(|k| Live {
            cpu_quota_us: k.cpu_quota_us,
            cpu_period_us: k.cpu_period_us,
            memory_bytes: k.memory_bytes,
            swap_bytes: k.swap_bytes,
            swappiness: k.swappiness,
            pids_max: k.pids_max,
        }),
        saved: Some(Saved {
            cpu_quota_us: l.cpu_quota_us,
            cpu_period_us: l.cpu_period_us,
            memory_bytes: l.memory_bytes,
            swap_bytes: 0,
            pids_max: l.pids_max.map_or(Limit::Max, Limit::Value),
        }),
        usage,
        disk: spec.disk.map(|saved_bytes| {
            let mount = crate::disk::dir(paths, &spec.name);
            let live = crate::disk::usage(&mount);
            Disk {
                saved_bytes,
                filesystem: "tmpfs",
                limit_bytes: live.map(|u| u.limit_bytes),
                used_bytes: live.map(|u| u.used_bytes),
                mount,
            }
        }),
        layers: j.layer_dirs(),
        cgroups: dirs,
        command: spec.command.clone(),
        run: spec.run.as_deref().map(crate::spec::runopts_show::view),
        name,
    })
}

/// `cpu 40% (40000/100000 us), memory 200M, swap off, pids 512, devices minimal`
/// for plain `status`, with the kernel's value after each that differs:
/// `cpu 40% (40000/100000 us; kernel: max)`.
pub fn limits_text(spec: &Spec, cg: Option<&Cgroups>, dirs: &[PathBuf]) -> String {
    let k = cg.filter(|_| dirs.iter().any(|d| d.exists())).map(|cg| Dirs::of(cg, dirs).limits());
    limits_with(spec, &k.unwrap_or_default())
}

/// The same from limits already read (all `None`: nothing to compare with).
fn limits_with(spec: &Spec, k: &KernelLimits) -> String {
    let l = &spec.limits;
    let note = |differs: bool, text: String| if differs { format!(" (kernel: {text})") } else { String::new() };
    let cpu = match (k.cpu_quota_us, k.cpu_period_us) {
        (Some(Limit::Value(q)), Some(p)) if (q, p) != (l.cpu_quota_us, l.cpu_period_us) && p > 0 => {
            note(true, format!("{}%, {q}/{p} us", q * 100 / p))
        }
        (Some(Limit::Max), _) => note(true, "no limit".into()),
        _ => String::new(),
    };
    let mem = match k.memory_bytes {
        Some(Limit::Value(m)) => note(m != l.memory_bytes / 4096 * 4096, format_bytes(m)),
        Some(Limit::Max) => note(true, "no limit".into()),
        None => String::new(),
    };
    let swap = match (k.swap_bytes, k.swappiness) {
        (Some(Limit::Max), _) => note(true, "swap allowed, no limit".into()),
        (Some(Limit::Value(s)), _) if s > 0 => note(true, format!("{} of swap allowed", format_bytes(s))),
        (_, Some(sw)) if sw > 0 => note(true, format!("swappiness {sw}")),
        _ => String::new(),
    };
    let want_pids = l.pids_max.map_or(Limit::Max, Limit::Value);
    let pids = match k.pids_max {
        Some(p) if p != want_pids => note(true, if p == Limit::Max { "no limit".into() } else { p.to_string() }),
        _ => String::new(),
    };
    format!(
        "cpu {}% ({}/{} us){cpu}, memory {}{mem}, swap off{swap}, pids {}{pids}, devices {}",
        spec.cpu_percent(),
        l.cpu_quota_us,
        l.cpu_period_us,
        format_bytes(l.memory_bytes),
        l.pids_max.map(|p| p.to_string()).unwrap_or_else(|| "unlimited".into()),
        if l.restrict_devices { "minimal" } else { "all (privileged)" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Options;

    #[test]
    fn status_notes_the_kernels_values_where_they_differ() {
        let spec = Spec::new("red", &Options::default()).unwrap();
        let same = KernelLimits {
            cpu_quota_us: Some(Limit::Value(40000)),
            cpu_period_us: Some(100000),
            memory_bytes: Some(Limit::Value(200 << 20)),
            swap_bytes: Some(Limit::Value(0)),
            swappiness: Some(0),
            pids_max: Some(Limit::Value(512)),
        };
        let plain = "cpu 40% (40000/100000 us), memory 200M, swap off, pids 512, devices minimal";
        assert_eq!(limits_with(&spec, &same), plain);
        assert_eq!(limits_with(&spec, &KernelLimits::default()), plain, "nothing read: nothing to note");
        let changed = KernelLimits {
            cpu_quota_us: Some(Limit::Value(50000)),
            memory_bytes: Some(Limit::Max),
            swap_bytes: Some(Limit::Value(100 << 20)),
            pids_max: Some(Limit::Max),
            ..same
        };
        assert_eq!(
            limits_with(&spec, &changed),
            "cpu 40% (40000/100000 us) (kernel: 50%, 50000/100000 us), memory 200M (kernel: no limit), \
             swap off (kernel: 100M of swap allowed), pids 512 (kernel: no limit), devices minimal"
        );
        let bigger = KernelLimits { memory_bytes: Some(Limit::Value(300 << 20)), ..same };
        assert!(limits_with(&spec, &bigger).contains("memory 200M (kernel: 300M), swap off, "));
        let quota_gone = KernelLimits { cpu_quota_us: Some(Limit::Max), swappiness: Some(60), ..same };
        assert_eq!(
            limits_with(&spec, &quota_gone),
            "cpu 40% (40000/100000 us) (kernel: no limit), memory 200M, swap off (kernel: swappiness 60), pids 512, \
             devices minimal"
        );
    }

    #[test]
    fn limits_serialize_as_numbers_or_max() {
        let v = serde_json::to_string(&[Some(Limit::Value(7)), Some(Limit::Max), None]).unwrap();
        assert_eq!(v, r#"[7,"max",null]"#);
    }
}
