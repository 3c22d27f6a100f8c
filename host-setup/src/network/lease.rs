//! Addresses handed out as CNI's host-local plugin does: one file per address under
//! the network's leases/ dir, created with O_EXCL and naming its container, plus a
//! `last_reserved` file the next search starts after. O_EXCL alone would keep two
//! concurrent `up`s from getting one address; they also hold the global lock, so the
//! default network cannot go away between its check and the lease. Beside them,
//! `by-container/NAME` is a symlink to NAME's address, so that `down` finds its
//! lease without reading every lease file (that made each `down` cost more the
//! more containers were up).

use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ensure, load, plan_create, undo_all, Make, Network};
use crate::error::{Result, SysContext};
use crate::spec::{JoinSpec, DEFAULT_NETWORK};
use crate::state::{self, Paths};

const LAST: &str = "last_reserved";
const BY: &str = "by-container";

/// What the lease step does: join `network` (made first if it is the default and absent).
pub struct LeaseReq {
    pub container: String,
    pub fixed: Option<Ipv4Addr>,
    /// The network as it is, or as it will be made.
    pub net: Network,
    /// The address the lease will most likely get (the fixed one, or the next free one
    /// now): for `--explain`, and for the next step's plan when nothing runs.
    pub predicted: Ipv4Addr,
    /// The network's own actions if it is made first.
    pub create: Vec<Make>,
    /// The network's leases/ dir.
    pub dir: PathBuf,
}

impl LeaseReq {
    /// Looks, changes nothing.
    pub fn plan(paths: &Paths, container: &str, join: &JoinSpec) -> Result<LeaseReq> {
        let (net, create) = match load(paths, &join.network)? {
            Some(n) => (n, vec![]),
            None if join.network == DEFAULT_NETWORK => plan_create(paths, &join.network, None, None, true)?,
            None => {
                return Err(crate::precondition!(
                    "network {0} does not exist: host-setup network create {0}",
                    join.network
                ))
            }
        };
        if let Some(a) = join.address {
            check_fixed(&net, a)?;
        }
        let dir = leases(paths, &net.name);
        let predicted = match join.address {
            Some(a) => a,
            None => next_free(&net, &dir, |a| !dir.join(a.to_string()).exists())?,
        };
        Ok(LeaseReq { container: container.into(), fixed: join.address, net, predicted, create, dir })
    }

    pub fn shell(&self) -> Vec<String> {
        let mut lines = vec![];
        if !self.create.is_empty() {
            lines.push(format!(
                "# network {} is made first (the default network; it goes with its last container)",
                self.net.name
            ));
            lines.extend(self.create.iter().flat_map(Make::shell));
        }
        let file = self.dir.join(self.predicted.to_string());
        let how = if self.fixed.is_some() { "the fixed address" } else { "the next free address" };
        lines.push(format!(
            "# lease {} ({how}): {} made with O_EXCL, naming {}",
            self.predicted,
            file.display(),
            self.container
        ));
        lines
    }
}

fn leases(paths: &Paths, network: &str) -> PathBuf {
    paths.network(network).join("leases")
}

/// A fixed address must be a host of the subnet other than the gateway.
fn check_fixed(net: &Network, a: Ipv4Addr) -> Result<()> {
    if !net.contains(a) || a == net.subnet || a == net.broadcast() || a == net.gateway {
        return Err(crate::usage!(
            "--address {a}: not a free host address of network {} ({}/{}, gateway {})",
            net.name,
            net.subnet,
            net.prefix_len,
            net.gateway
        ));
    }
    Ok(())
}

/// The first address after `last_reserved` (wrapping round) for which `free` holds.
fn next_free(net: &Network, dir: &Path, mut free: impl FnMut(Ipv4Addr) -> bool) -> Result<Ipv4Addr> {
    let first = u32::from(net.gateway) + 1;
    let last = u32::from(net.broadcast()) - 1;
    let after = std::fs::read_to_string(dir.join(LAST))
        .ok()
        .and_then(|t| t.trim().parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .filter(|a| (first..=last).contains(a))
        .unwrap_or(last);
    let n = last - first + 1;
    (1..=n)
        .map(|i| Ipv4Addr::from(first + (after - first + i) % n))
        .find(|a| free(*a))
        .ok_or_else(|| crate::precondition!("network {}: all {n} addresses are leased", net.name))
}

/// Take the lease (the caller holds the global lock): the network, made first if it
/// is the default one, and the address.
pub fn take(paths: &Paths, req: &LeaseReq) -> Result<(Network, Ipv4Addr)> {
    let network = req.net.name.as_str();
    let net = ensure(paths, network)?;
    let dir = leases(paths, network);
    let claim = |a: Ipv4Addr| -> Result<bool> {
        let path = dir.join(a.to_string());
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(state::perms::FILE).open(&path) {
            Ok(mut f) => {
                f.write_all(format!("{}\n", req.container).as_bytes()).sys(|| format!("write {}", path.display()))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).sys(|| format!("create {}", path.display())),
        }
    };
    let addr = match req.fixed {
        Some(a) => {
            check_fixed(&net, a)?;
            if !claim(a)? {
                let owner = std::fs::read_to_string(dir.join(a.to_string())).unwrap_or_default();
                return Err(crate::precondition!("address {a} on network {network} is leased to {}", owner.trim()));
            }
            a
        }
        None => {
            let mut err = None;
            let a = next_free(&net, &dir, |a| match claim(a) {
                Ok(got) => got,
                Err(e) => {
                    err.get_or_insert(e);
                    true
                }
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            a
        }
    };
    let last = dir.join(LAST);
    state::perms::write_file(&last, format!("{addr}\n").as_bytes())?;
    link_owner(&dir, &req.container, addr)?;
    log::debug!("network {network}: leased {addr} to {}", req.container);
    Ok((net, addr))
}

/// The leases of network NAME: (address, container), by address.
pub fn members(paths: &Paths, name: &str) -> Vec<(Ipv4Addr, String)> {
    let dir = leases(paths, name);
    let mut v: Vec<(Ipv4Addr, String)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let a: Ipv4Addr = e.file_name().to_str()?.parse().ok()?;
            Some((a, std::fs::read_to_string(e.path()).ok()?.trim().to_string()))
        })
        .collect();
    v.sort();
    v
}

/// by-container/CONTAINER -> ADDR (replacing a stale one).
fn link_owner(dir: &Path, container: &str, addr: Ipv4Addr) -> Result<()> {
    let by = dir.join(BY);
    match std::fs::DirBuilder::new().mode(state::perms::PRIVATE_DIR).create(&by) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e).sys(|| format!("mkdir {}", by.display())),
        _ => {}
    }
    let link = by.join(container);
    rm(&link)?;
    std::os::unix::fs::symlink(addr.to_string(), &link).sys(|| format!("symlink {}", link.display()))
}

fn rm(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).sys(|| format!("rm {}", p.display())),
        _ => Ok(()),
    }
}

/// CONTAINER's leases: the one its by-container link names (if that lease is still
/// its), else, for a lease from before the links, every lease that names it.
fn leases_of(paths: &Paths, network: &str, container: &str) -> Vec<Ipv4Addr> {
    let dir = leases(paths, network);
    let owned = |a: &Ipv4Addr| std::fs::read_to_string(dir.join(a.to_string())).is_ok_and(|o| o.trim() == container);
    match std::fs::read_link(dir.join(BY).join(container)) {
        Ok(t) => t.to_str().and_then(|t| t.parse().ok()).filter(owned).into_iter().collect(),
        Err(_) => members(paths, network).into_iter().filter(|(_, o)| o == container).map(|(a, _)| a).collect(),
    }
}

/// Whether any address of network NAME is leased (stops at the first lease file).
fn any_member(paths: &Paths, name: &str) -> bool {
    std::fs::read_dir(leases(paths, name))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_str().is_some_and(|n| n.parse::<Ipv4Addr>().is_ok()))
}

/// Give back container's leases on network NAME; then a default network with no
/// member left (or one whose making was cut short) goes too. Takes the global lock.
pub fn release(paths: &Paths, network: &str, container: &str) -> Result<()> {
    let _lock = state::global_lock(paths)?;
    let dir = leases(paths, network);
    for a in leases_of(paths, network, container) {
        rm(&dir.join(a.to_string()))?;
        log::debug!("network {network}: released {a} of {container}");
    }
    rm(&dir.join(BY).join(container))?;
    if !paths.network(network).exists() || any_member(paths, network) {
        return Ok(());
    }
    match load(paths, network)? {
        Some(n) if !n.auto => Ok(()),
        _ => {
            log::info!("network {network}: its last container is gone; removing it");
            undo_all(paths, network)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_go_round_after_the_last_reserved_skipping_gateway_and_broadcast() {
        let dir = std::env::temp_dir().join(format!("hs-lease-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let net = Network {
            name: "t".into(),
            bridge: "t".into(),
            subnet: Ipv4Addr::new(10, 77, 0, 0),
            prefix_len: 29,
            gateway: Ipv4Addr::new(10, 77, 0, 1),
            uplink: None,
            ns: 1,
            auto: false,
        };
        let ip = |d| Ipv4Addr::new(10, 77, 0, d);
        assert_eq!(next_free(&net, &dir, |_| true).unwrap(), ip(2));
        std::fs::write(dir.join(LAST), "10.77.0.5\n").unwrap();
        assert_eq!(next_free(&net, &dir, |_| true).unwrap(), ip(6));
        assert_eq!(next_free(&net, &dir, |a| a != ip(6)).unwrap(), ip(2), "wraps round, .7 is the broadcast");
        assert!(next_free(&net, &dir, |_| false).is_err());
        assert!(check_fixed(&net, ip(1)).is_err() && check_fixed(&net, ip(7)).is_err());
        assert!(check_fixed(&net, Ipv4Addr::new(10, 77, 1, 2)).is_err() && check_fixed(&net, ip(3)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lease_is_found_through_its_link_or_by_reading_them_all() {
        let t = std::env::temp_dir().join(format!("hs-lease-by-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let paths = Paths::new(&t);
        let dir = leases(&paths, "n");
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3));
        std::fs::write(dir.join(a.to_string()), "old\n").unwrap();
        assert_eq!(leases_of(&paths, "n", "old"), vec![a], "a lease from before the links");
        std::fs::write(dir.join(b.to_string()), "new\n").unwrap();
        link_owner(&dir, "new", b).unwrap();
        assert_eq!(leases_of(&paths, "n", "new"), vec![b]);
        std::fs::write(dir.join(b.to_string()), "other\n").unwrap();
        assert!(leases_of(&paths, "n", "new").is_empty(), "a link to someone else's lease releases nothing");
        assert!(any_member(&paths, "n"));
        std::fs::remove_file(dir.join(a.to_string())).unwrap();
        std::fs::remove_file(dir.join(b.to_string())).unwrap();
        assert!(!any_member(&paths, "n"), "the link dir and last_reserved are not leases");
        std::fs::remove_dir_all(&t).unwrap();
    }
}
