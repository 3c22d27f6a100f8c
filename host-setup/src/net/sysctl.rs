//! Sysctls under /proc/sys/net, one value for what runs and what `--explain` prints.
//!
//! A file under /proc/sys/net belongs to the network namespace of the task that opens
//! it, not to the one that mounted /proc: so a sysctl of a container's netns is written
//! from a thread that joined it (`ip netns exec NS sysctl -w ...`), and one of
//! host-setup's own netns from where it runs.
//!
//! Keys are kept as their path under /proc/sys (`net/ipv4/conf/hs0/route_localnet`) and
//! shown the way sysctl(8) reads them back: `/` and `.` swapped, so an interface named
//! `eth0.100` is `net.ipv4.conf.eth0/100.forwarding`, as sysctl(8) prints it.

use std::borrow::Cow;

use super::{check_netns_name, netns, sh};
use crate::error::{Result, SysContext};

/// `net.ipv4.ping_group_range`: the gids that may open ICMP datagram sockets
/// (unprivileged ping); default `1 0`, nobody.
pub const PING_GROUP_RANGE: &str = "net/ipv4/ping_group_range";

/// `net.ipv4.ip_unprivileged_port_start`: the lowest port a task without
/// CAP_NET_BIND_SERVICE in the netns's owning user namespace may bind; default 1024.
pub const UNPRIVILEGED_PORT_START: &str = "net/ipv4/ip_unprivileged_port_start";

/// The sysctls the netns step may set in a container's netns, as `status` reads them.
pub const CONTAINER_KEYS: [&str; 2] = [UNPRIVILEGED_PORT_START, PING_GROUP_RANGE];

/// One sysctl and the value it is set to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The path under /proc/sys: `net/ipv4/ping_group_range`.
    pub key: String,
    pub value: String,
}

impl Sysctl {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Sysctl {
        Sysctl { key: key.into(), value: value.into() }
    }

    /// /proc/sys/KEY.
    pub fn path(&self) -> String {
        path(&self.key)
    }

    /// `net.ipv4.ping_group_range='1000 1999'`: the argument of `sysctl -w`.
    pub fn assignment(&self) -> String {
        format!("{}={}", sh(&dotted(&self.key)), sh(&self.value))
    }
}

/// /proc/sys/KEY.
pub fn path(key: &str) -> String {
    format!("/proc/sys/{key}")
}

/// The name sysctl(8) uses for a /proc/sys path: `/` and `.` swapped.
pub fn dotted(key: &str) -> Cow<'_, str> {
    if !key.contains(['.', '/']) {
        return Cow::Borrowed(key);
    }
    Cow::Owned(
        key.chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
    )
}

/// `ip netns exec NETNS sysctl -w KEY=VALUE`, in-process: a short-lived thread joins
/// the namespace and writes /proc/sys/KEY.
pub fn set_in_netns(netns: &str, s: &Sysctl) -> Result<()> {
    check_netns_name(netns)?;
    let ns = netns::open_existing(netns)?;
    let file = s.path();
    netns::run_in(netns, &ns, || {
        std::fs::write(&file, &s.value).sys(|| format!("write {:?} to {file} (netns {netns})", s.value))
    })
}

/// The values of `keys` in NETNS (white space as sysctl(8) prints it: tabs become
/// spaces); `None` if the namespace is absent.
pub fn read_in_netns(netns: &str, keys: &[&str]) -> Result<Option<Vec<Sysctl>>> {
    check_netns_name(netns)?;
    let Some(ns) = netns::open(netns)? else { return Ok(None) };
    netns::run_in(netns, &ns, || {
        keys.iter()
            .map(|k| {
                let p = path(k);
                let v = std::fs::read_to_string(&p).sys(|| format!("read {p} (netns {netns})"))?;
                Ok(Sysctl::new(*k, v.split_whitespace().collect::<Vec<_>>().join(" ")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    })
}

/// `net.ipv4.ip_unprivileged_port_start=0, net.ipv4.ping_group_range=1 0`, for `status`.
pub fn describe(v: &[Sysctl]) -> String {
    v.iter().map(|s| format!("{}={}", dotted(&s.key), s.value)).collect::<Vec<_>>().join(", ")
}

/// The kernel's values of [`CONTAINER_KEYS`] in NETNS, as `status` shows them.
pub fn status_text(netns: &str) -> String {
    match read_in_netns(netns, &CONTAINER_KEYS) {
        Ok(Some(v)) => describe(&v),
        Ok(None) => "none (netns absent)".into(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The same for `status --json`: `{"net.ipv4.ip_unprivileged_port_start": "0", ...}`;
/// `None` if they cannot be read (the netns is absent, or host-setup may not enter it).
pub fn status_map(netns: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let v = read_in_netns(netns, &CONTAINER_KEYS).ok()??;
    Some(v.into_iter().map(|s| (dotted(&s.key).into_owned(), s.value)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_as_sysctl_names_and_paths() {
        let s = Sysctl::new(PING_GROUP_RANGE, "100000 165535");
        assert_eq!(s.path(), "/proc/sys/net/ipv4/ping_group_range");
        assert_eq!(s.assignment(), "net.ipv4.ping_group_range='100000 165535'");
        assert_eq!(Sysctl::new(UNPRIVILEGED_PORT_START, "0").assignment(), "net.ipv4.ip_unprivileged_port_start=0");
        // sysctl(8) swaps the separators: a dot in an interface name becomes a slash.
        assert_eq!(dotted("net/ipv4/conf/eth0.100/forwarding"), "net.ipv4.conf.eth0/100.forwarding");
        assert_eq!(
            describe(&[Sysctl::new(UNPRIVILEGED_PORT_START, "0"), Sysctl::new(PING_GROUP_RANGE, "1 0")]),
            "net.ipv4.ip_unprivileged_port_start=0, net.ipv4.ping_group_range=1 0"
        );
    }
}
