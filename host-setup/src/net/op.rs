//! What the netns and link steps do (the tutorial's section 3), as data: each op
//! runs through netlink and renders itself as the `ip` commands that do the same.

use std::net::Ipv4Addr;

use super::bridge::{self, Join};
use super::nft;
use super::sysctl::{At, Sysctl};
use super::{create_netns, create_veth_pair, set_loopback_up, sh, VethEnd};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ip netns add NAME`.
    AddNetns(String),
    /// `ip netns exec NAME ip link set lo up`: a new namespace's loopback starts down.
    LoopbackUp(String),
    /// `ip link add A netns NS_A type veth peer name B netns NS_B`, then each end's
    /// address and `up`, in one RTM_NEWLINK and four requests (create_veth_pair).
    VethPair(VethEnd, VethEnd),
    /// `ip link add NAME type bridge`, the gateway's address on it, `up`; in
    /// host-setup's own netns.
    Bridge { name: String, gateway: Ipv4Addr, prefix_len: u8, ns: u64 },
    /// A container's veth pair onto a bridge, its address and default route.
    JoinBridge(Join),
    /// `sysctl -w KEY=VALUE` in host-setup's own netns (journalled, `old` written
    /// back when what needed it goes: a network's forwarding), or `ip netns exec NS
    /// sysctl -w KEY=VALUE` in a container's (not undone: it dies with the netns).
    /// `set` is the one value both run and shell use (net/sysctl.rs).
    Sysctl { set: Sysctl, at: At },
    /// A network's nf_tables table: masquerade out of the uplink, forwarding.
    Nat { nat: nft::NetworkNat, ns: u64 },
    /// A container's published ports: DNAT from the host's addresses.
    Ports { ports: nft::Ports, ns: u64 },
}

impl Op {
    pub fn run(&self) -> Result<()> {
        match self {
            Op::AddNetns(name) => create_netns(name),
            Op::LoopbackUp(name) => set_loopback_up(name),
            Op::VethPair(a, b) => create_veth_pair(a, b),
            Op::Bridge { name, gateway, prefix_len, .. } => bridge::create_bridge(name, *gateway, *prefix_len),
            Op::JoinBridge(j) => bridge::join_bridge(j),
            Op::Sysctl { set, at } => set.run(at),
            Op::Nat { nat, .. } => nat.create(),
            Op::Ports { ports, .. } => ports.create(),
        }
    }

    pub fn shell(&self) -> Vec<String> {
        match self {
            Op::AddNetns(name) => vec![format!("ip netns add {}", sh(name))],
            Op::LoopbackUp(name) => vec![format!("ip netns exec {} ip link set lo up", sh(name))],
            Op::VethPair(a, b) => {
                let mut lines = vec![format!(
                    "ip link add {} netns {} type veth peer name {} netns {}",
                    sh(&a.ifname),
                    sh(&a.netns),
                    sh(&b.ifname),
                    sh(&b.netns)
                )];
                // `brd +`: the broadcast address is set as well (iproute2 sets none unless asked).
                for end in [a, b] {
                    let (ns, dev) = (sh(&end.netns), sh(&end.ifname));
                    lines.push(format!(
                        "ip netns exec {ns} ip addr add dev {dev} {}/{} brd +",
                        end.addr, end.prefix_len
                    ));
                    lines.push(format!("ip netns exec {ns} ip link set {dev} up"));
                }
                lines
            }
            Op::Bridge { name, gateway, prefix_len, .. } => {
                let n = sh(name);
                vec![
                    format!("ip link add {n} type bridge"),
                    format!("ip addr add dev {n} {gateway}/{prefix_len} brd +"),
                    format!("ip link set {n} up"),
                ]
            }
            Op::JoinBridge(j) => {
                let (h, ns, dev) = (sh(&j.host_end), sh(&j.netns), sh(&j.iface));
                vec![
                    format!("ip link add {h} type veth peer name {dev} netns {ns}"),
                    format!("echo 1 > /proc/sys/net/ipv6/conf/{h}/disable_ipv6    # a bridge port: no IPv6 of its own"),
                    format!("ip link set {h} master {} up", sh(&j.bridge)),
                    format!("ip netns exec {ns} ip addr add dev {dev} {}/{} brd +", j.addr, j.prefix_len),
                    format!("ip netns exec {ns} ip link set {dev} up"),
                    format!("ip netns exec {ns} ip route add default via {}", j.gateway),
                ]
            }
            Op::Nat { nat, .. } => nat.shell(),
            Op::Ports { ports, .. } => ports.shell(),
            Op::Sysctl { set, at } => vec![set.shell(at)],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn shell_gives_the_tutorials_commands() {
        let red = VethEnd::new("RED", "veth0", Ipv4Addr::new(11, 11, 11, 2), 24);
        let blue = VethEnd::new("BLUE", "veth1", Ipv4Addr::new(11, 11, 11, 3), 24);
        assert_eq!(Op::AddNetns("RED".into()).shell(), vec!["ip netns add RED"]);
        assert_eq!(Op::LoopbackUp("BLUE".into()).shell(), vec!["ip netns exec BLUE ip link set lo up"]);
        assert_eq!(
            Op::VethPair(red, blue).shell(),
            vec![
                "ip link add veth0 netns RED type veth peer name veth1 netns BLUE",
                "ip netns exec RED ip addr add dev veth0 11.11.11.2/24 brd +",
                "ip netns exec RED ip link set veth0 up",
                "ip netns exec BLUE ip addr add dev veth1 11.11.11.3/24 brd +",
                "ip netns exec BLUE ip link set veth1 up",
            ]
        );
    }

    #[test]
    fn sysctls_render_as_sysctl_lines_from_the_same_value_that_runs() {
        let set = Sysctl::new(super::super::sysctl::UNPRIVILEGED_PORT_START, "0");
        assert_eq!(
            Op::Sysctl { set, at: At::Netns("WEB".into()) }.shell(),
            vec!["ip netns exec WEB sysctl -w net.ipv4.ip_unprivileged_port_start=0"]
        );
        let set = Sysctl::new(super::super::sysctl::route_localnet_key("hs0"), "1");
        let op = Op::Sysctl { set, at: At::Host { old: "0".into(), ns: 1 } };
        assert_eq!(op.shell(), vec!["sysctl -w net.ipv4.conf.hs0.route_localnet=1    # was 0"]);
    }

    #[test]
    fn shell_quotes_what_the_shell_would_split() {
        assert_eq!(Op::AddNetns("A$x".into()).shell(), vec!["ip netns add 'A$x'"]);
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
    }
}
