//! `host-setup status`: what is up, from the journals and the kernel.

use std::fmt::Write;

use crate::cgroup::Cgroups;
use crate::error::Result;
use crate::net;
use crate::spec::format_bytes;
use crate::state::{Journal, Paths, Role};

/// `container ids 0-65535 are host uids ...` (and the kernel's map if init runs),
/// or what no user namespace means.
pub fn userns_text(j: &Journal) -> String {
    let Some(ids) = j.ids() else {
        return "none: root inside is root on the host".into();
    };
    let live = j.proc(Role::Init).filter(|p| p.alive()).and_then(|p| crate::userns::live_maps(p.pid));
    match live {
        Some((u, g)) => format!("{} (kernel: uid_map {u}, gid_map {g})", ids.describe()),
        None => ids.describe(),
    }
}

/// A report on `names` (all containers if empty).
pub fn report(paths: &Paths, names: &[String]) -> Result<String> {
    let names: Vec<String> = if names.is_empty() { paths.container_names() } else { names.to_vec() };
    let cgroups = Cgroups::detect().ok();
    let mut out = String::new();
    if names.is_empty() {
        writeln!(out, "no containers in {}", paths.state_dir.display()).ok();
    }
    for name in names {
        let Some(j) = Journal::read(paths, &name)? else {
            writeln!(out, "{name}: not up").ok();
            continue;
        };
        let Some(spec) = j.spec() else {
            writeln!(out, "{name}: unreadable journal {}", paths.journal(&name).display()).ok();
            continue;
        };
        let init = j.proc(Role::Init).map(|p| format!(", init pid {}", p.pid)).unwrap_or_default();
        writeln!(out, "{name}: {}{init}", j.state_word()).ok();
        writeln!(out, "  hostname  {}   netns {}", spec.hostname, spec.netns).ok();
        writeln!(out, "  sysctls   {}", net::sysctl::status_text(&spec.netns)).ok();
        match &spec.net {
            Some(n) => {
                let link = match net::link_status(&spec.netns, &n.iface) {
                    Ok(Some(s)) if s.up => "up".to_string(),
                    Ok(Some(_)) => "down".to_string(),
                    Ok(None) if net::netns_exists(&spec.netns) => "not made yet (peer not up)".to_string(),
                    Ok(None) => "absent".to_string(),
                    Err(e) => format!("unknown ({e})"),
                };
                let peer = n.peer.as_deref().map(|p| format!(", peer {p}")).unwrap_or_default();
                writeln!(out, "  address   {}/{} on {}{peer}: link {link}", n.addr, n.prefix_len, n.iface).ok();
            }
            None => match crate::network::membership(paths, &spec) {
                Some(m) => {
                    let ports =
                        if m.ports.is_empty() { String::new() } else { format!(", ports {}", m.ports.join(" ")) };
                    writeln!(
                        out,
                        "  network   {} (bridge {}, port {}): {} on {}{ports}",
                        m.network,
                        m.bridge.as_deref().unwrap_or("absent"),
                        m.host_end,
                        m.address.as_deref().unwrap_or("no lease"),
                        m.iface
                    )
                    .ok();
                }
                None => {
                    writeln!(out, "  address   none (loopback only)").ok();
                }
            },
        }
        let dirs = j.cgroup_dirs();
        let mut limits = format!("  limits    {}", crate::status_json::limits_text(&spec, cgroups.as_ref(), &dirs));
        if let (Some(cg), false) = (&cgroups, dirs.is_empty()) {
            let u = cg.usage(&dirs);
            let oom = j.exited().map(|(_, o)| o).unwrap_or(0).max(u.oom_kills);
            write!(
                limits,
                "; using {} memory, {:.1} s cpu, {} pids, oom kills {oom}",
                format_bytes(u.memory_bytes),
                u.cpu_ns as f64 / 1e9,
                u.pids
            )
            .ok();
        } else if let Some((_, oom)) = j.exited() {
            write!(limits, "; oom kills {oom}").ok();
        }
        writeln!(out, "{limits}").ok();
        writeln!(out, "  disk      {}", crate::disk::status_text(paths, &spec)).ok();
        writeln!(out, "  seccomp   {}", spec.seccomp.describe()).ok();
        writeln!(out, "  userns    {}", userns_text(&j)).ok();
        let layers: Vec<String> = j.layer_dirs().iter().map(|d| d.display().to_string()).collect();
        writeln!(out, "  layers    {}", if layers.is_empty() { "-".into() } else { layers.join(" over ") }).ok();
        if !dirs.is_empty() {
            let d: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            writeln!(out, "  cgroups   {}", d.join(" ")).ok();
        }
        let cmd = if spec.command.is_empty() { "(init --pause)".to_string() } else { spec.command.join(" ") };
        writeln!(out, "  command   {cmd}").ok();
        for (k, v) in spec.run.as_deref().map(crate::spec::runopts_show::status_lines).unwrap_or_default() {
            writeln!(out, "  {k:<9} {v}").ok();
        }
        let dir = paths.container(&name);
        let (size, limit) = (crate::spec::format_bytes(crate::logs::total_size(&dir)), spec.log.describe());
        writeln!(out, "  log       {} ({size}, {limit})", dir.join(crate::logs::FILE).display()).ok();
    }
    Ok(out)
}
