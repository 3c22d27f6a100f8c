//! `host-setup network create|ls|rm`.

use super::{load, members, names, plan_create, undo_all};
use crate::error::Result;
use crate::net::bridge;
use crate::spec;
use crate::state::{self, Paths};

/// `network create NAME [--subnet CIDR] [--uplink IFACE] [--explain]`.
pub fn create_cmd(paths: &Paths, name: &str, subnet: Option<&str>, uplink: Option<&str>, explain: bool) -> Result<()> {
    check_create_args(name, subnet, uplink)?;
    // --explain writes nothing, not even the state dir the global lock lives in.
    let _lock = if explain { None } else { Some(state::global_lock(paths)?) };
    if load(paths, name)?.is_some() {
        return Err(crate::precondition!("network {name} exists already (host-setup network ls)"));
    }
    let (net, actions) = plan_create(paths, name, subnet, uplink, false)?;
    if explain {
        for a in &actions {
            for l in a.shell() {
                println!("{l}");
            }
        }
        return Ok(());
    }
    super::create_locked(paths, &net, &actions)?;
    let out = net.uplink.as_deref().map_or("any interface but the bridge".into(), |u| format!("uplink {u}"));
    println!(
        "network {name}: bridge {}, {}/{}, gateway {}, out through {out}",
        net.bridge, net.subnet, net.prefix_len, net.gateway
    );
    Ok(())
}

/// The command line of `network create`, checked before anything else (exit 2).
pub fn check_create_args(name: &str, subnet: Option<&str>, uplink: Option<&str>) -> Result<()> {
    spec::validate_network_name(name)?;
    if let Some(s) = subnet {
        super::parse_subnet(s)?;
    }
    if let Some(u) = uplink {
        crate::net::check_ifname(u)?;
    }
    Ok(())
}

/// `network ls`: each network, its bridge, subnet, uplink and members.
pub fn ls(paths: &Paths) -> Result<String> {
    let mut out = String::new();
    for n in names(paths) {
        let Some(net) = load(paths, &n)? else {
            out.push_str(&format!("{n:<16} (incomplete: an interrupted create; host-setup network rm {n})\n"));
            continue;
        };
        let here = bridge::own_netns_ino().ok() == Some(net.ns);
        let state = match (here, bridge::host_link_exists(&net.bridge)) {
            (false, _) => format!(" (made in net:[{}], not this netns)", net.ns),
            (true, Ok(true)) => String::new(),
            (true, _) => format!(" (bridge {} is missing)", net.bridge),
        };
        let m: Vec<String> = members(paths, &n).iter().map(|(a, c)| format!("{c} {a}")).collect();
        out.push_str(&format!(
            "{n:<16} bridge {} {}/{} gateway {} uplink {}{}{state}\n  members: {}\n",
            net.bridge,
            net.subnet,
            net.prefix_len,
            net.gateway,
            net.uplink.as_deref().unwrap_or("-"),
            if net.auto { " (default: goes with its last container)" } else { "" },
            if m.is_empty() { "none".to_string() } else { m.join(", ") }
        ));
    }
    if out.is_empty() {
        out.push_str("no networks\n");
    }
    Ok(out)
}

/// `network rm NAME...`: only a network without members.
pub fn rm_cmd(paths: &Paths, name: &str) -> Result<()> {
    spec::validate_network_name(name)?;
    let _lock = state::global_lock(paths)?;
    if !paths.network(name).exists() {
        println!("network {name} does not exist: nothing to do");
        return Ok(());
    }
    if let Some(net) = load(paths, name)? {
        bridge::check_own_netns(net.ns, &format!("network {name}"))?;
    }
    let m = members(paths, name);
    if !m.is_empty() {
        let who: Vec<&str> = m.iter().map(|(_, c)| c.as_str()).collect();
        return Err(crate::precondition!(
            "network {name} has members: {}; take them down first (host-setup down {})",
            who.join(", "),
            who.join(" ")
        ));
    }
    undo_all(paths, name)?;
    println!("network {name} removed");
    Ok(())
}
