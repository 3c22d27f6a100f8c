//! Sysctls under /proc/sys/net: one value ([`Sysctl`], its key and value) from which
//! both the file that `run` writes ([`Sysctl::path`]) and the `sysctl -w` line that
//! `--explain` prints ([`Sysctl::shell`]) are derived, so the key is typed once.
//!
//! A file under /proc/sys/net belongs to the network namespace of the task that opens
//! it, not to the one that mounted /proc: so a sysctl of a container's netns is written
//! from a thread that joined it (`ip netns exec NS sysctl -w ...`), and one of
//! host-setup's own netns from where it runs ([`At`] says which).
//!
//! Keys are kept as their path under /proc/sys (`net/ipv4/conf/hs0/route_localnet`) and
//! shown the way sysctl(8) reads them back: `/` and `.` swapped, so an interface named
//! `eth0.100` is `net.ipv4.conf.eth0/100.forwarding`, as sysctl(8) prints it. (The
//! dotted name alone is ambiguous there; the path is not.)

use std::borrow::Cow;
use std::fs::File;

use super::{check_netns_name, netns, sh};
use crate::error::{Result, SysContext};

/// `net.ipv4.ping_group_range`: the gids that may open ICMP datagram sockets
/// (unprivileged ping); default `1 0`, nobody.
pub const PING_GROUP_RANGE: &str = "net/ipv4/ping_group_range";

/// `net.ipv4.ip_unprivileged_port_start`: the lowest port a task without
/// CAP_NET_BIND_SERVICE in the netns's owning user namespace may bind; default 1024.
pub const UNPRIVILEGED_PORT_START: &str = "net/ipv4/ip_unprivileged_port_start";

/// `net.ipv6.conf.default.disable_ipv6`: IPv6 off on the links made in this netns
/// from now on (a container on a bridge network: steps/netns.rs).
pub const DEFAULT_DISABLE_IPV6: &str = "net/ipv6/conf/default/disable_ipv6";

/// The sysctls the netns step may set in a container's netns, as `status` reads them.
pub const CONTAINER_KEYS: [&str; 2] = [UNPRIVILEGED_PORT_START, PING_GROUP_RANGE];

/// The per-interface IPv4 forwarding switch of IFACE.
pub fn forwarding_key(iface: &str) -> String {
    format!("net/ipv4/conf/{iface}/forwarding")
}

/// Whether IFACE may route 127.0.0.0/8: a packet with a loopback source may leave by
/// it, and one to a loopback address may come in by it (else both are martians).
pub fn route_localnet_key(iface: &str) -> String {
    format!("net/ipv4/conf/{iface}/route_localnet")
}

/// IFACE's IPv6 off: a bridge port needs no address of its own (net/bridge.rs).
pub fn disable_ipv6_key(iface: &str) -> String {
    format!("net/ipv6/conf/{iface}/disable_ipv6")
}

/// Which network namespace's /proc/sys/net a sysctl is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// host-setup's own netns (the host's; a test's stand-in host in tests/network.rs):
    /// `old` is journalled (made.rs) and written back when what needed it goes; `ns`
    /// is that netns's inode, so the undo refuses to run from another netns.
    Host { old: String, ns: u64 },
    /// A container's netns, /run/netns/NAME. Not journalled and never undone: the
    /// value is the namespace's own and dies with it (`ip netns delete`), and nothing
    /// outside the namespace ever saw it.
    Netns(String),
}

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

    /// Write it in the netns `at` names: what the op runs.
    pub fn run(&self, at: &At) -> Result<()> {
        match at {
            At::Host { .. } => self.write_here(),
            At::Netns(netns) => set_in_netns(netns, self),
        }
    }

    /// The same as a shell line, for `--explain`: `sysctl -w KEY=VALUE    # was OLD`,
    /// or `ip netns exec NETNS sysctl -w KEY=VALUE`.
    pub fn shell(&self, at: &At) -> String {
        match at {
            At::Host { old, .. } => format!("sysctl -w {}    # was {}", self.assignment(), sh(old)),
            At::Netns(netns) => format!("ip netns exec {} sysctl -w {}", sh(netns), self.assignment()),
        }
    }

    /// `echo VALUE > /proc/sys/KEY` in the calling thread's netns: host-setup's own
    /// (an op's run, a journalled sysctl's undo writing `old` back).
    pub fn write_here(&self) -> Result<()> {
        let (path, value) = (self.path(), &self.value);
        let mut f = File::options().write(true).open(&path).sys(|| format!("open {path}"))?;
        std::io::Write::write_all(&mut f, value.as_bytes()).sys(|| format!("write {value} to {path}"))
    }
}

/// A sysctl of host-setup's own netns, by its path under /proc/sys
/// (`net/ipv4/conf/hs0/forwarding`): its value.
pub fn read_here(key: &str) -> Result<String> {
    let p = path(key);
    std::fs::read_to_string(&p).map(|s| s.trim().to_string()).sys(|| format!("read {p}"))
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
fn set_in_netns(netns: &str, s: &Sysctl) -> Result<()> {
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

    /// The file a `sysctl -w` line names: its KEY, `.` and `/` swapped back, under
    /// /proc/sys (what sysctl(8) itself opens for that line).
    fn file_named_by(line: &str) -> String {
        let arg = line.split_once("sysctl -w ").expect("a sysctl -w line").1;
        let key = arg.split_once('=').expect("KEY=VALUE").0;
        format!("/proc/sys/{}", dotted(key))
    }

    #[test]
    fn the_shell_line_names_the_file_that_run_writes() {
        let here = At::Host { old: "0".into(), ns: 1 };
        let there = At::Netns("WEB".into());
        let sets = [
            Sysctl::new(forwarding_key("eth0.100"), "1"),
            Sysctl::new(route_localnet_key("hs0"), "1"),
            Sysctl::new(UNPRIVILEGED_PORT_START, "0"),
            Sysctl::new(PING_GROUP_RANGE, "1000 1999"),
        ];
        for s in &sets {
            for at in [&here, &there] {
                // run writes s.path() (write_here, set_in_netns): the line must name it.
                assert_eq!(file_named_by(&s.shell(at)), s.path(), "{s:?} at {at:?}");
                assert!(s.shell(at).contains(&format!("={}", sh(&s.value))), "{s:?}");
            }
        }
        assert_eq!(
            Sysctl::new(forwarding_key("eth0.100"), "1").shell(&here),
            "sysctl -w net.ipv4.conf.eth0/100.forwarding=1    # was 0"
        );
        assert_eq!(
            Sysctl::new(PING_GROUP_RANGE, "1000 1999").shell(&there),
            "ip netns exec WEB sysctl -w net.ipv4.ping_group_range='1000 1999'"
        );
        // The check itself tells two keys apart: a line typed on its own, with a key
        // one letter off, names another file.
        let typed = "sysctl -w net.ipv4.conf.hs0.route_localnt=1";
        assert_ne!(file_named_by(typed), Sysctl::new(route_localnet_key("hs0"), "1").path());
    }
}
