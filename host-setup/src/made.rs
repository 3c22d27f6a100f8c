//! What a network op leaves on the host, as the journal's Resource, and how the ones
//! in host-setup's own network namespace are undone: one place for a container's
//! actions (action.rs) and a network's own journal (network/).

use crate::error::Result;
use crate::net::sysctl::{At, Sysctl};
use crate::net::{self, bridge, Op};
use crate::state::Resource;

/// The resource `op` makes (journalled before it runs), if any.
pub fn made_by(op: &Op) -> Option<Resource> {
    match op {
        Op::AddNetns(ns) => Some(Resource::Netns(ns.clone())),
        Op::VethPair(a, _) => Some(Resource::Link { netns: a.netns.clone(), iface: a.ifname.clone() }),
        Op::Bridge { name, ns, .. } => Some(Resource::HostLink { iface: name.clone(), ns: *ns }),
        Op::JoinBridge(j) => Some(Resource::HostLink { iface: j.host_end.clone(), ns: j.ns }),
        Op::Nat { nat: net::nft::NetworkNat { table, .. }, ns }
        | Op::Ports { ports: net::nft::Ports { table, .. }, ns } => {
            Some(Resource::NftTable { name: table.clone(), ns: *ns })
        }
        Op::Sysctl { set, at: At::Host { old, ns } } => {
            Some(Resource::Sysctl { key: set.key.clone(), old: old.clone(), ns: *ns })
        }
        // A container's netns sysctl dies with the netns (Resource::Netns).
        Op::LoopbackUp(_) | Op::Sysctl { at: At::Netns(_), .. } => None,
    }
}

/// Undo `r` if it lives in host-setup's own netns (a bridge or a veth's host end, a
/// sysctl, an nf_tables table), refusing from another netns. Ok(false): `r` is
/// another kind, for the caller.
pub fn undo_host(r: &Resource) -> Result<bool> {
    match r {
        Resource::HostLink { iface, ns } => {
            bridge::check_own_netns(*ns, iface)?;
            if bridge::delete_host_link(iface)? {
                log::debug!("ip link delete {iface}");
            }
        }
        Resource::Sysctl { key, old, ns } => {
            let was = Sysctl::new(key.clone(), old.clone());
            bridge::check_own_netns(*ns, &was.path())?;
            match was.write_here() {
                // The interface went first (a bridge's own switch goes with it).
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {}
                r => r?,
            }
        }
        Resource::NftTable { name, ns } => {
            bridge::check_own_netns(*ns, &format!("nf_tables table {name}"))?;
            net::nft::delete_table(name)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}
