//! Bridge networks (`host-setup network create|ls|rm`, `--net NETWORK`): Docker's
//! bridge driver and the CNI bridge plugin, done with our own actions.
//!
//! A network is a Linux bridge with the gateway address in host-setup's own network
//! namespace ("the host"), forwarding switched on for the bridge and the uplink only,
//! route_localnet on the bridge (published ports on 127.0.0.1), and an nf_tables table
//! of our own that masquerades the subnet out of the uplink.
//! Everything it makes is journalled first (its own journal, undone by action::undo
//! like a container's), and all of it lives in the netns it was made in: its inode is
//! kept, and host-setup refuses to act on the network from any other netns.
//!
//! ```text
//! <state-dir>/networks/NAME/journal        what was made (bridge, sysctls, table)
//! <state-dir>/networks/NAME/network.json   written last: the network is complete
//! <state-dir>/networks/NAME/leases/ADDR    one file per address, made O_EXCL, naming its container
//! <state-dir>/networks/NAME/leases/last_reserved
//! ```
//!
//! Creating, removing and joining (taking a lease) all happen under the state dir's
//! global lock, so the default network is never removed while a container joins it.

mod cmd;
mod lease;

pub use cmd::{check_create_args, create_cmd, ls, rm_cmd};
pub use lease::{members, release, take, LeaseReq};

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};
use crate::net::sysctl::{self, forwarding_key, route_localnet_key, At, Sysctl};
use crate::net::{bridge, nft, Op};
use crate::spec::{self, DEFAULT_NETWORK};
use crate::state::{Journal, JournalWriter, Paths, Record};

/// What making a network does, in order: a net op (journalled as what it makes,
/// made.rs, before it runs) or a note for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Make {
    Op(Op),
    Note(String),
}

impl Make {
    pub fn shell(&self) -> Vec<String> {
        match self {
            Make::Op(op) => op.shell(),
            Make::Note(text) => vec![format!("# {text}")],
        }
    }
}

/// The veth end on the host: `hs` and 8 hex digits of FNV-1a over the state dir and
/// the container's name (unique per state dir and name, at most 15 bytes, the same
/// every time, so `--explain` and a recovery name the same link).
pub fn host_end(paths: &Paths, name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in paths.state_dir.as_os_str().as_encoded_bytes().iter().chain([&0u8]).chain(name.as_bytes()) {
        h = (h ^ *b as u32).wrapping_mul(0x0100_0193);
    }
    format!("hs{h:08x}")
}

/// Where the default network's subnet is looked for: the first /16 of these that no
/// route of the host overlaps (Docker takes 172.17/16, Podman 10.88/16).
pub const DEFAULT_SUBNETS: std::ops::RangeInclusive<u8> = 77..=99;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The interface its traffic leaves by; None: there was no default route (then
    /// the subnet is masqueraded out of any interface but the bridge).
    pub uplink: Option<String>,
    /// The inode of the network namespace it was made in.
    pub ns: u64,
    /// Made on first use (the default network): removed with its last container.
    pub auto: bool,
}

impl Network {
    pub fn nat_table(&self) -> String {
        format!("host-setup-{}", self.bridge)
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) | (u32::MAX >> self.prefix_len))
    }
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        spec::same_subnet((a, self.prefix_len), (self.subnet, self.prefix_len))
    }
}

fn config_path(paths: &Paths, name: &str) -> PathBuf {
    paths.network(name).join("network.json")
}

fn journal_path(paths: &Paths, name: &str) -> PathBuf {
    paths.network(name).join("journal")
}

/// The network NAME, if it was made whole.
pub fn load(paths: &Paths, name: &str) -> Result<Option<Network>> {
    let p = config_path(paths, name);
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| crate::failed!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).sys(|| format!("read {}", p.display())),
    }
}

/// Names of the networks with a directory (whole or not), sorted.
pub fn names(paths: &Paths) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(paths.networks())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// `10.77.0.0/16`: a subnet as the user gives it, normalised to its network address.
pub fn parse_subnet(text: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = |why: &str| crate::usage!("invalid subnet {text:?}: {why} (e.g. 10.77.0.0/16)");
    let (a, p) = text.split_once('/').ok_or_else(|| bad("give it with a prefix length"))?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
    let len: u8 = p.parse().ok().filter(|l| (8..=29).contains(l)).ok_or_else(|| bad("the prefix length is 8 to 29"))?;
    if !addr.is_private() {
        return Err(bad("use a private range (10/8, 172.16/12, 192.168/16)"));
    }
    Ok((Ipv4Addr::from(u32::from(addr) & (u32::MAX << (32 - len))), len))
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    len == 0 || spec::same_subnet((a.0, len), (b.0, len))
}

/// What creating network NAME takes on this host, without changing anything: the
/// network and the actions (bridge, forwarding, NAT), in order.
pub fn plan_create(
    paths: &Paths,
    name: &str,
    subnet: Option<&str>,
    uplink: Option<&str>,
    auto: bool,
) -> Result<(Network, Vec<Make>)> {
    spec::validate_network_name(name)?;
    let ns = bridge::own_netns_ino()?;
    let routes: Vec<(Ipv4Addr, u8)> =
        bridge::host_route_destinations()?.into_iter().filter(|r| r.1 > 0 && !r.0.is_loopback()).collect();
    let ours: Vec<(String, (Ipv4Addr, u8))> = names(paths)
        .iter()
        .filter_map(|n| load(paths, n).ok().flatten())
        .map(|n| (n.name.clone(), (n.subnet, n.prefix_len)))
        .collect();
    let taken = |s: (Ipv4Addr, u8)| -> Option<String> {
        if let Some(r) = routes.iter().find(|r| overlaps(s, **r)) {
            return Some(format!("the host routes {}/{} here", r.0, r.1));
        }
        ours.iter().find(|(_, o)| overlaps(s, *o)).map(|(n, o)| format!("network {n} has {}/{}", o.0, o.1))
    };
    let (subnet, prefix_len) = match subnet {
        Some(s) => {
            let s = parse_subnet(s)?;
            if let Some(why) = taken(s) {
                return Err(crate::precondition!("subnet {}/{} is in use: {why}; pick another --subnet", s.0, s.1));
            }
            s
        }
        None => DEFAULT_SUBNETS
            .map(|b| (Ipv4Addr::new(10, b, 0, 0), 16))
            .find(|s| taken(*s).is_none())
            .ok_or_else(|| crate::precondition!("10.77.0.0/16 to 10.99.0.0/16 are all in use here: give --subnet"))?,
    };
    let uplink = match uplink {
        Some(u) => {
            crate::net::check_ifname(u)?;
            if !bridge::host_link_exists(u)? {
                return Err(crate::precondition!("--uplink {u}: no such interface here"));
            }
            Some(u.to_string())
        }
        None => bridge::default_route_iface()?,
    };
    let gateway = Ipv4Addr::from(u32::from(subnet) + 1);
    let net = Network { name: name.into(), bridge: name.into(), subnet, prefix_len, gateway, uplink, ns, auto };
    let mut actions = vec![Make::Op(Op::Bridge { name: net.bridge.clone(), gateway, prefix_len, ns })];
    // Forwarding only where the network needs it: into and out of the bridge (a new
    // interface starts with conf/default's values), and the uplink's.
    let br = &net.bridge;
    let mut set = vec![(forwarding_key(br), sysctl::read_here(&forwarding_key("default"))?)];
    if let Some(u) = &net.uplink {
        let key = forwarding_key(u);
        set.push((key.clone(), sysctl::read_here(&key)?));
    }
    // route_localnet on the bridge alone: the host's connection to 127.0.0.1:PORT is
    // DNATted in output and leaves by the bridge with its loopback source (masqueraded
    // in postrouting, nft::NetworkNat), and the replies come back to 127.0.0.1 through
    // it; without it the kernel drops both as martians. What Docker (no userland
    // proxy) and netavark do.
    set.push((route_localnet_key(br), sysctl::read_here(&route_localnet_key("default"))?));
    for (key, old) in set {
        let set = Sysctl::new(key, "1");
        match old.as_str() {
            "1" => actions.push(Make::Note(format!("{} is 1 already", set.path()))),
            _ => actions.push(Make::Op(Op::Sysctl { set, at: At::Host { old, ns } })),
        }
    }
    actions.extend(nat_actions(&net));
    Ok((net, actions))
}

fn nat_actions(net: &Network) -> Vec<Make> {
    let nat = nft::NetworkNat {
        table: net.nat_table(),
        subnet: (net.subnet, net.prefix_len),
        bridge: net.bridge.clone(),
        uplink: net.uplink.clone(),
    };
    vec![Make::Op(Op::Nat { nat, ns: net.ns })]
}

/// Make the network (the caller holds the global lock): journal each action, run
/// it; on failure undo what was made. network.json is written last.
pub fn create_locked(paths: &Paths, net: &Network, actions: &[Make]) -> Result<()> {
    let dir = paths.network(&net.name);
    if load(paths, &net.name)?.is_some() {
        return Err(crate::precondition!("network {} exists already", net.name));
    }
    if dir.exists() {
        log::info!("network {}: removing what an interrupted create left behind", net.name);
        undo_all(paths, &net.name)?;
    }
    let leases = dir.join("leases");
    for d in [paths.networks(), dir.clone(), leases] {
        crate::state::perms::ensure_dir(&d, crate::state::perms::PRIVATE_DIR)?;
    }
    let mut j = JournalWriter::at(journal_path(paths, &net.name))?;
    let made = (|| {
        for a in actions {
            match a {
                Make::Op(op) => {
                    if let Some(r) = crate::made::made_by(op) {
                        j.append(&Record::Made(r))?;
                    }
                    op.run()?
                }
                Make::Note(t) => log::debug!("network {}: {t}", net.name),
            }
        }
        let text = serde_json::to_string_pretty(net).expect("serialises");
        let tmp = dir.join("network.json.tmp");
        crate::state::perms::write_file(&tmp, (text + "\n").as_bytes())?;
        std::fs::rename(&tmp, config_path(paths, &net.name)).sys(|| format!("rename {}", tmp.display()))
    })();
    if let Err(e) = made {
        if let Err(u) = undo_all(paths, &net.name) {
            return Err(e.hint(format!("and then undoing it: {u}")));
        }
        return Err(e);
    }
    Ok(())
}

/// Undo every record of the network's journal, newest first, and remove its
/// directory; what cannot be undone stays in the journal for the next try.
pub fn undo_all(paths: &Paths, name: &str) -> Result<()> {
    let dir = paths.network(name);
    let jp = journal_path(paths, name);
    let j = match std::fs::read_to_string(&jp) {
        Ok(t) => Journal::parse(&t, &jp, name)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Journal::default(),
        Err(e) => return Err(e).sys(|| format!("read {}", jp.display())),
    };
    let mut left = vec![];
    let mut errors: Vec<Error> = vec![];
    for r in j.made().rev() {
        let undone = crate::made::undo_host(r).and_then(|done| match done {
            true => Ok(()),
            false => Err(crate::failed!("network {name}: {r:?} is not something a network makes")),
        });
        if let Err(e) = undone {
            errors.push(e);
            left.push(Record::Made(r.clone()));
        }
    }
    if errors.is_empty() {
        return crate::state::remove_tree(&dir).map(drop);
    }
    left.reverse();
    Journal::rewrite(&jp, &left)?;
    let _ = std::fs::remove_file(config_path(paths, name));
    Err(errors.remove(0))
}

/// The default network, made if it is not there yet (global lock held).
pub fn ensure(paths: &Paths, name: &str) -> Result<Network> {
    if let Some(n) = load(paths, name)? {
        bridge::check_own_netns(n.ns, &format!("network {name}"))?;
        return Ok(n);
    }
    if name != DEFAULT_NETWORK {
        return Err(crate::precondition!("network {name} does not exist: host-setup network create {name}"));
    }
    let (net, actions) = plan_create(paths, name, None, None, true)?;
    create_locked(paths, &net, &actions)?;
    log::info!("network {name} made: bridge {}, {}/{}", net.bridge, net.subnet, net.prefix_len);
    Ok(net)
}

/// A container's place on its network, for `status` and `status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub network: String,
    pub bridge: Option<String>,
    pub iface: String,
    /// The veth end on the host, the bridge's port.
    pub host_end: String,
    /// `10.77.0.2/16`, from its lease; None if it holds none.
    pub address: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    /// `8080->80/tcp`
    pub ports: Vec<String>,
}

pub fn membership(paths: &Paths, s: &spec::Spec) -> Option<Membership> {
    let j = s.join.as_ref()?;
    let net = load(paths, &j.network).ok().flatten();
    let addr = members(paths, &j.network).into_iter().find(|(_, c)| *c == s.name).map(|(a, _)| a);
    Some(Membership {
        network: j.network.clone(),
        bridge: net.as_ref().map(|n| n.bridge.clone()),
        iface: j.iface.clone(),
        host_end: host_end(paths, &s.name),
        address: addr.map(|a| format!("{a}/{}", net.as_ref().map_or(32, |n| n.prefix_len))),
        gateway: net.as_ref().map(|n| n.gateway),
        ports: j.ports.iter().map(ToString::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_private_normalised_and_overlaps_found() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(parse_subnet("10.80.3.4/16").unwrap(), (ip("10.80.0.0"), 16));
        assert_eq!(parse_subnet("192.168.7.0/24").unwrap(), (ip("192.168.7.0"), 24));
        for bad in ["10.80.0.0", "8.8.0.0/16", "10.0.0.0/7", "10.0.0.0/30", "x/16"] {
            assert_eq!(parse_subnet(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
        assert!(overlaps((ip("10.77.0.0"), 16), (ip("10.77.3.9"), 32)));
        assert!(overlaps((ip("10.77.0.0"), 16), (ip("10.0.0.0"), 8)));
        assert!(!overlaps((ip("10.77.0.0"), 16), (ip("10.78.0.0"), 16)));
        let n = Network {
            name: "hs0".into(),
            bridge: "hs0".into(),
            subnet: ip("10.77.0.0"),
            prefix_len: 16,
            gateway: ip("10.77.0.1"),
            uplink: None,
            ns: 1,
            auto: true,
        };
        assert_eq!((n.broadcast(), n.nat_table()), (ip("10.77.255.255"), "host-setup-hs0".to_string()));
        assert!(n.contains(ip("10.77.200.1")) && !n.contains(ip("10.78.0.1")));
    }
}
