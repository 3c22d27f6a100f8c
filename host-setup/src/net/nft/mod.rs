//! nf_tables for bridge networks, in-process over netlink: no `nft` or `iptables`
//! process runs (their commands appear only as [`NetworkNat::shell`] and friends, for
//! `--explain`). No crate fits (rustables is GPL, nftnl needs the C libnftnl), and the
//! messages are a small documented family, so they are built here: `wire.rs` (netlink
//! framing, tables, chains, the batch), `expr.rs` (the expressions of our rules),
//! `talk.rs` (socket and acks).
//!
//! What is made, always in table family `ip` (IPv4), in the calling thread's current
//! network namespace (the caller picks the namespace):
//!
//! - per network, [`NetworkNat`]: table `ip <table>` with
//!   `postrouting` (type nat hook postrouting priority 100, srcnat): `ip saddr SUBNET
//!   oifname != BRIDGE masquerade` (or `oifname UPLINK masquerade` when an uplink is
//!   given), as Docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE`, and `ip saddr 127.0.0.0/8
//!   oifname BRIDGE masquerade` (the host's own connections to a published port on
//!   127.0.0.1, with route_localnet on the bridge); and `forward` (type filter
//!   hook forward priority 0, policy accept): `iifname BRIDGE accept`, `oifname BRIDGE ct
//!   state established,related accept`, `oifname BRIDGE ct status dnat accept` (replies,
//!   and connections to published ports), then `oifname BRIDGE drop` (nothing else is
//!   routed into the bridge: other networks and the outside are kept out).
//! - per container with published ports, [`Ports`]: table `ip <table>` with `prerouting`
//!   and `output` (type nat, priority -100, dstnat), each with one rule per port:
//!   `fib daddr type local tcp dport HOST_PORT dnat to ADDR:PORT`. prerouting serves
//!   connections from outside (through the uplink), output those from the host itself to
//!   one of its own addresses, 127.0.0.1 included (the network's loopback masquerade). One table per container, so `down` removes it whole with
//!   one delete and never needs rule handles.
//!
//! Each `create` is one nf_tables batch, one transaction: all of it is applied or none.
//! It creates the table with NLM_F_EXCL: a table of that name that exists already (a
//! leftover, another network) fails the whole batch with EEXIST and is left as it was;
//! the caller decides (recovery: [`delete_table`], then `create` again). Nothing but the
//! tables whose names we are given is ever created, changed or deleted.
//!
//! Limits worth knowing: an `accept` here does not override a drop in another table's
//! forward chain (every table's base chains see the packet: e.g. Docker's iptables
//! FORWARD policy drop still drops); and a
//! container reaching another's published port through the host's address needs the
//! bridge's hairpin traffic to pass netfilter (br_netfilter).
//!
//! On the wire: one datagram per batch (the send buffer is raised to fit a big one, so a
//! thousand published ports still go in one transaction); only its last message asks
//! for an ack, the kernel answers every refused message anyway, and the first refused
//! one is the error, named as the `nft` command it stands for, e.g.
//! `nft add table ip hs-x: EEXIST: file exists; ...; nothing of the batch was applied`.
//!
//! The kernel needs nf_tables with its nat pieces: nft_chain_nat, nft_masq, nft_nat,
//! nft_fib_ipv4, nft_ct. As modules, the kernel loads them itself on first use (the
//! batch is replayed after the autoload); if one is missing the error says which step
//! failed and what to load.

mod expr;
mod talk;
mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::Ipv4Addr;

use log::debug;
use nix::errno::Errno;

use self::expr::{Exprs, CT_STATE_ESTABLISHED, CT_STATE_RELATED, IPS_DST_NAT, NFT_CMP_EQ, NFT_CMP_NEQ};
use self::expr::{NFT_CT_STATE, NFT_CT_STATUS, NFT_META_IIFNAME, NFT_META_OIFNAME};
use self::wire::{Chain, Hook, Msg};
use super::{check_ifname, sh};
use crate::error::{Error, Result};
use crate::usage;

/// Source NAT and forwarding for one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkNat {
    /// The nf_tables table, family ip, that holds it all (e.g. `hs-net-NAME`).
    pub table: String,
    /// The network's subnet: address and prefix length.
    pub subnet: (Ipv4Addr, u8),
    /// The bridge the containers hang on.
    pub bridge: String,
    /// Masquerade only what leaves through this interface; None: through any but the bridge.
    pub uplink: Option<String>,
}

/// TCP or UDP, for a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn ipproto(self) -> u8 {
        match self {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        }
    }
}

/// `tcp` or `udp`, as in `-p 8080:80/udp`.
impl std::str::FromStr for Proto {
    type Err = Error;

    fn from_str(s: &str) -> Result<Proto> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(usage!("invalid protocol {s:?}: tcp or udp")),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: HOST_PORT on the host's own addresses to ADDR:PORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMap {
    pub proto: Proto,
    pub host_port: u16,
    pub addr: Ipv4Addr,
    pub port: u16,
}

/// A container's published ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// The nf_tables table, family ip, one per container (e.g. `hs-ports-NAME`).
    pub table: String,
    /// The bridge of the container's network (named in the explanation only: the rules
    /// match the destination address type, not an interface).
    pub bridge: String,
    pub maps: Vec<PortMap>,
}

/// A rule of ours: its chain, its text as `nft` writes it, and its expressions.
struct Rule {
    chain: &'static str,
    text: String,
    exprs: Exprs,
}

impl NetworkNat {
    const POSTROUTING: Chain =
        Chain { name: "postrouting", kind: "nat", hook: Hook::Postrouting, priority: 100, policy_accept: false };
    const FORWARD: Chain =
        Chain { name: "forward", kind: "filter", hook: Hook::Forward, priority: 0, policy_accept: true };

    fn check(&self) -> Result<()> {
        check_table_name(&self.table)?;
        check_ifname(&self.bridge)?;
        if let Some(up) = &self.uplink {
            check_ifname(up)?;
        }
        if self.subnet.1 > 32 {
            return Err(usage!("invalid prefix length /{} for {}: at most 32", self.subnet.1, self.subnet.0));
        }
        Ok(())
    }

    fn rules(&self) -> Vec<Rule> {
        let (net, len) = self.subnet;
        let net = Ipv4Addr::from(u32::from(net) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0));
        let br = &self.bridge;
        let mut masq = Exprs::default();
        masq.saddr_in(net, len);
        let out = match &self.uplink {
            Some(up) => {
                masq.ifname(NFT_META_OIFNAME, NFT_CMP_EQ, up);
                format!("oifname \"{up}\"")
            }
            None => {
                masq.ifname(NFT_META_OIFNAME, NFT_CMP_NEQ, br);
                format!("oifname != \"{br}\"")
            }
        };
        masq.masquerade();
        let saddr = if len == 0 { String::new() } else { format!("ip saddr {net}/{len} ") };

        // The host's own connections to 127.0.0.1:PORT, DNATted in output to a
        // container, leave by the bridge with source 127.0.0.1 (route_localnet): the
        // container would answer its own loopback. They take the gateway's address.
        let mut localhost = Exprs::default();
        localhost.saddr_in(Ipv4Addr::new(127, 0, 0, 0), 8).ifname(NFT_META_OIFNAME, NFT_CMP_EQ, br).masquerade();

        let mut from_bridge = Exprs::default();
        from_bridge.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, br).accept();
        let mut replies = Exprs::default();
        replies
            .ifname(NFT_META_OIFNAME, NFT_CMP_EQ, br)
            .ct_any(NFT_CT_STATE, CT_STATE_ESTABLISHED | CT_STATE_RELATED)
            .accept();
        let mut published = Exprs::default();
        published.ifname(NFT_META_OIFNAME, NFT_CMP_EQ, br).ct_any(NFT_CT_STATUS, IPS_DST_NAT).accept();
        // Anything else routed into the bridge — from another network's bridge, or a
        // new connection from outside — is dropped: networks are isolated, as Docker's
        // DOCKER-ISOLATION chains make them. Inside one bridge, frames are switched
        // and never reach this hook (without br_netfilter).
        let mut isolate = Exprs::default();
        isolate.ifname(NFT_META_OIFNAME, NFT_CMP_EQ, br).drop();
        vec![
            Rule { chain: "postrouting", text: format!("{saddr}{out} masquerade"), exprs: masq },
            Rule {
                chain: "postrouting",
                text: format!("ip saddr 127.0.0.0/8 oifname \"{br}\" masquerade"),
                exprs: localhost,
            },
            Rule { chain: "forward", text: format!("iifname \"{br}\" accept"), exprs: from_bridge },
            Rule {
                chain: "forward",
                text: format!("oifname \"{br}\" ct state established,related accept"),
                exprs: replies,
            },
            Rule { chain: "forward", text: format!("oifname \"{br}\" ct status dnat accept"), exprs: published },
            Rule { chain: "forward", text: format!("oifname \"{br}\" drop"), exprs: isolate },
        ]
    }

    fn msgs(&self) -> Vec<Msg> {
        batch_msgs(&self.table, &[Self::POSTROUTING, Self::FORWARD], &self.rules())
    }

    /// Table, chains and rules in one atomic batch (see the module doc). A table of that
    /// name that exists already fails it: `nft add table ip NAME: EEXIST: file exists`.
    pub fn create(&self) -> Result<()> {
        self.check()?;
        debug!(
            "nf_tables: create table ip {} (nat for {}/{} on {})",
            self.table, self.subnet.0, self.subnet.1, self.bridge
        );
        talk::apply(&format!("nft create table ip {} (batch)", self.table), &self.msgs(), hint)
    }

    /// The `nft` command lines that do the same.
    pub fn shell(&self) -> Vec<String> {
        shell_lines(&self.table, &[Self::POSTROUTING, Self::FORWARD], &self.rules())
    }
}

impl Ports {
    const PREROUTING: Chain =
        Chain { name: "prerouting", kind: "nat", hook: Hook::Prerouting, priority: -100, policy_accept: false };
    const OUTPUT: Chain =
        Chain { name: "output", kind: "nat", hook: Hook::Output, priority: -100, policy_accept: false };

    fn check(&self) -> Result<()> {
        check_table_name(&self.table)?;
        check_ifname(&self.bridge)?;
        for m in &self.maps {
            if m.host_port == 0 || m.port == 0 {
                return Err(usage!(
                    "invalid port mapping {}:{} -> {}:{}: port 0",
                    m.proto,
                    m.host_port,
                    m.addr,
                    m.port
                ));
            }
        }
        Ok(())
    }

    fn rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        for chain in [Self::PREROUTING.name, Self::OUTPUT.name] {
            for m in &self.maps {
                let mut e = Exprs::default();
                e.daddr_local().dport(m.proto.ipproto(), m.host_port).dnat(m.addr, m.port);
                let text =
                    format!("fib daddr type local {} dport {} dnat to {}:{}", m.proto, m.host_port, m.addr, m.port);
                rules.push(Rule { chain, text, exprs: e });
            }
        }
        rules
    }

    /// Table, chains and one DNAT rule per port and chain, in one atomic batch (see the
    /// module doc). A table of that name that exists already fails it with EEXIST.
    pub fn create(&self) -> Result<()> {
        self.check()?;
        debug!("nf_tables: create table ip {} ({} published ports)", self.table, self.maps.len());
        let msgs = batch_msgs(&self.table, &[Self::PREROUTING, Self::OUTPUT], &self.rules());
        talk::apply(&format!("nft create table ip {} (batch)", self.table), &msgs, hint)
    }

    /// The `nft` command lines that do the same.
    pub fn shell(&self) -> Vec<String> {
        shell_lines(&self.table, &[Self::PREROUTING, Self::OUTPUT], &self.rules())
    }
}

/// `nft delete table ip NAME`: the table with its chains and rules, at once. `Ok(false)`
/// if there was no such table. Only that table is touched.
pub fn delete_table(name: &str) -> Result<bool> {
    check_table_name(name)?;
    debug!("nf_tables: delete table ip {name}");
    match talk::apply(&format!("nft delete table ip {name} (batch)"), &[wire::del_table(name)], hint) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            debug!("nf_tables: table ip {name} did not exist");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Whether table `ip NAME` exists in the current network namespace.
pub fn table_exists(name: &str) -> Result<bool> {
    check_table_name(name)?;
    talk::table_exists(name)
}

/// A table name we create: 1 to 255 bytes (NFT_NAME_MAXLEN 256 with the NUL), a letter
/// first, then letters, digits, `-`, `_`, `.`: what `nft` reads back as a bare name, and
/// safe in the shell lines.
pub fn check_table_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else if !name.as_bytes()[0].is_ascii_alphabetic() {
        "it must start with a letter"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        "only letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(usage!("invalid nf_tables table name {name:?}: {why}"))
}

fn batch_msgs(table: &str, chains: &[Chain], rules: &[Rule]) -> Vec<Msg> {
    let mut msgs = vec![wire::new_table(table)];
    msgs.extend(chains.iter().map(|c| c.msg(table)));
    msgs.extend(rules.iter().map(|r| wire::new_rule(table, r.chain, &r.text, &r.exprs.0)));
    msgs
}

fn shell_lines(table: &str, chains: &[Chain], rules: &[Rule]) -> Vec<String> {
    let mut lines = vec![format!("nft add table ip {}", sh(table))];
    lines.extend(chains.iter().map(|c| format!("nft {}", sh(&c.text(table)))));
    lines.extend(rules.iter().map(|r| format!("nft {}", sh(&format!("add rule ip {table} {} {}", r.chain, r.text)))));
    lines
}

/// Advice for a message the kernel refused.
fn hint(m: &Msg, e: &Error) -> Option<String> {
    let what = &m.what;
    match (e.errno()?, m.kind) {
        (Errno::EEXIST, wire::NFT_MSG_NEWTABLE) => {
            Some("the table exists already (a leftover of an earlier run?): delete it first".into())
        }
        // The kernel looks chain types and expressions up by name (loading their module
        // if it can) and answers ENOENT when there is none. EOPNOTSUPP means something
        // else there: a hook or priority the type does not allow.
        (Errno::ENOENT, wire::NFT_MSG_NEWCHAIN) if what.contains("type nat") => {
            Some("the kernel has no nat chain type: load it (modprobe nft_chain_nat)".into())
        }
        (Errno::ENOENT, wire::NFT_MSG_NEWRULE) => Some(
            "the kernel lacks an nf_tables expression this rule uses: load them (modprobe nft_nat nft_masq nft_fib_ipv4 nft_ct)"
                .into(),
        ),
        _ => None,
    }
}
