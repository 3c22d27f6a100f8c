//! Networks of many containers, Docker's bridge driver done over rtnetlink: a Linux
//! bridge with the gateway address in host-setup's own network namespace ("the host"),
//! and per container a veth pair whose host end is the bridge's port and whose other
//! end, in the container's netns, has an address of the subnet and a default route
//! through the gateway.
//!
//! | shell                                                        | here             |
//! |--------------------------------------------------------------|------------------|
//! | `ip link add hs0 type bridge; ip addr add ...; ip link set hs0 up` | [`create_bridge`] |
//! | `ip link add H type veth peer name eth0 netns NS`,           | [`join_bridge`]  |
//! | `ip link set H master hs0 up`, the address, `up` and         |                  |
//! | `ip route add default via GW` inside NS                      |                  |
//! | `ip link delete H` (here)                                    | [`delete_host_link`] |
//! | `ip route show default`                                      | [`default_route_iface`] |

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::messages::{self, Target};
use super::netlink::Netlink;
use super::{check_ifname, check_netns_name, configure_end, delete_by_name, get_link, netns, or_undo, VethEnd};
use crate::error::{Result, SysContext};

/// The identity of host-setup's own network namespace: the inode of
/// /proc/thread-self/ns/net (what `ls -L -i /proc/self/ns/net` shows).
pub fn own_netns_ino() -> Result<u64> {
    let p = "/proc/thread-self/ns/net";
    std::fs::metadata(p).map(|m| m.ino()).sys(|| format!("stat {p}"))
}

/// Errors unless host-setup runs in the network namespace `ino` (where a network was
/// made): a bridge, a sysctl or an nf_tables table of another namespace is never touched.
pub fn check_own_netns(ino: u64, what: &str) -> Result<()> {
    let here = own_netns_ino()?;
    if here != ino {
        return Err(crate::precondition!(
            "{what} was made in network namespace net:[{ino}], host-setup runs in net:[{here}]: run it there \
             (e.g. nsenter --net=/proc/PID/ns/net host-setup ...)"
        ));
    }
    Ok(())
}

/// One container on a bridge: the veth pair, the address and the default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub bridge: String,
    /// The veth end on the host, the bridge's port.
    pub host_end: String,
    /// The container's named netns and the interface in it.
    pub netns: String,
    pub iface: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// host-setup's own netns (inode), where the host end is.
    pub ns: u64,
}

/// `ip link add NAME type bridge; ip addr add dev NAME GW/LEN brd +; ip link set NAME up`,
/// in host-setup's own netns. If the address or `up` fails, the bridge is deleted again.
pub fn create_bridge(name: &str, gateway: Ipv4Addr, prefix_len: u8) -> Result<()> {
    check_ifname(name)?;
    let nl = Netlink::open_here()?;
    let mut m = LinkMessage::default();
    m.attributes =
        vec![LinkAttribute::IfName(name.to_string()), LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)])];
    nl.request(&format!("create bridge {name}"), NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(m)).map_err(
        |e| match e.errno() {
            Some(Errno::EEXIST) => e.hint("an interface of that name exists already"),
            Some(Errno::EOPNOTSUPP) => crate::precondition!("{e}; the bridge driver is missing: modprobe bridge"),
            _ => e,
        },
    )?;
    or_undo(
        || configure_end(&nl, &VethEnd::new(HOST, name, gateway, prefix_len)),
        || delete_by_name(&nl, HOST, name),
        &format!("delete the new bridge {name} again"),
    )
}

/// What error messages call host-setup's own netns.
const HOST: &str = "host";

/// The container's side of a bridge network, in one RTM_NEWLINK (the host end here, the
/// peer straight in the container's netns), then: the host end `master` the bridge and
/// up; the address and `up` inside; `ip route add default via GW` inside. If anything
/// after the first request fails, the pair is deleted again (which removes both ends).
pub fn join_bridge(j: &Join) -> Result<()> {
    check_ifname(&j.bridge)?;
    check_ifname(&j.host_end)?;
    check_ifname(&j.iface)?;
    check_netns_name(&j.netns)?;
    let ns = netns::open_existing(&j.netns)?;
    let here = Netlink::open_here()?;
    let inside = Netlink::open(&j.netns, &ns)?;
    let Some(bridge) = get_link(&here, HOST, &j.bridge)? else {
        return Err(crate::precondition!("bridge {} does not exist: create the network again", j.bridge));
    };
    let what = format!("create veth pair {} <-> {} (netns {})", j.host_end, j.iface, j.netns);
    let mut peer = LinkMessage::default();
    peer.attributes = vec![LinkAttribute::IfName(j.iface.clone()), LinkAttribute::NetNsFd(ns.as_raw_fd())];
    let mut m = LinkMessage::default();
    m.attributes = vec![
        LinkAttribute::IfName(j.host_end.clone()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]),
    ];
    here.request(&what, NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(m)).map_err(|e| match e.errno() {
        Some(Errno::EEXIST) => e.hint("an interface of one of these names exists already"),
        _ => e,
    })?;
    or_undo(
        || {
            no_ipv6_on_port(&j.host_end)?;
            let mut m = messages::link_up(Target::Name(&j.host_end));
            m.attributes.push(LinkAttribute::Controller(bridge.header.index));
            here.request(&format!("set {} master {} up", j.host_end, j.bridge), 0, RouteNetlinkMessage::SetLink(m))?;
            configure_end(&inside, &VethEnd::new(&j.netns, &j.iface, j.addr, j.prefix_len))?;
            inside.request(
                &format!("add default route via {} (netns {})", j.gateway, j.netns),
                NLM_F_CREATE | NLM_F_EXCL,
                RouteNetlinkMessage::NewRoute(default_route(j.gateway)),
            )?;
            Ok(())
        },
        || delete_by_name(&here, HOST, &j.host_end),
        &format!("delete the new veth pair again ({})", j.host_end),
    )
}

/// A bridge port needs no IPv6 of its own. Left on, each host end got a link-local
/// address and three IPv6 routes in host-setup's netns, and the kernel walks the
/// whole IPv6 FIB on each port's deletion (fib6_ifdown, under the rtnl lock): one
/// port of 1,000 took 4x as long to delete as one of 40 (docs/performance.md). The
/// value is the interface's own and goes with it: nothing to journal. A kernel
/// without IPv6 (ipv6.disable=1) has no such file: nothing to do.
fn no_ipv6_on_port(iface: &str) -> Result<()> {
    let set = super::sysctl::Sysctl::new(super::sysctl::disable_ipv6_key(iface), "1");
    match set.write_here() {
        Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// RTM_NEWROUTE body for `ip route add default via GW` (table main, proto boot).
fn default_route(gateway: Ipv4Addr) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
    m
}

/// `ip link delete NAME` in host-setup's own netns; `Ok(false)` if there is none.
/// A veth's host end takes its peer with it; a bridge lets go of its ports.
pub fn delete_host_link(name: &str) -> Result<bool> {
    check_ifname(name)?;
    delete_by_name(&Netlink::open_here()?, HOST, name)
}

/// Whether interface NAME exists in host-setup's own netns.
pub fn host_link_exists(name: &str) -> Result<bool> {
    check_ifname(name)?;
    Ok(get_link(&Netlink::open_here()?, HOST, name)?.is_some())
}

/// One IPv4 route, as far as we look at it.
struct Route {
    dst: Ipv4Addr,
    len: u8,
    oif: Option<u32>,
    table: u32,
}

/// Every IPv4 route of host-setup's own netns, all tables.
fn routes(nl: &Netlink) -> Result<Vec<Route>> {
    let mut q = RouteMessage::default();
    q.header.address_family = AddressFamily::Inet;
    let replies = nl.request("list routes (host)", NLM_F_DUMP, RouteNetlinkMessage::GetRoute(q))?;
    Ok(replies
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })
        .filter(|r| r.header.address_family == AddressFamily::Inet)
        .map(|r| {
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut oif = None;
            let mut table = r.header.table as u32;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Table(t) => table = *t,
                    _ => {}
                }
            }
            Route { dst, len: r.header.destination_prefix_length, oif, table }
        })
        .collect())
}

/// The destinations of every IPv4 route here (what a new subnet must not overlap).
pub fn host_route_destinations() -> Result<Vec<(Ipv4Addr, u8)>> {
    Ok(routes(&Netlink::open_here()?)?.into_iter().map(|r| (r.dst, r.len)).collect())
}

/// The interface of the default route of the main table (`ip route show default`),
/// the uplink a network's traffic leaves by; `None` if there is no default route.
pub fn default_route_iface() -> Result<Option<String>> {
    let nl = Netlink::open_here()?;
    let Some(index) = routes(&nl)?
        .into_iter()
        .find(|r| r.len == 0 && r.table == u32::from(RouteHeader::RT_TABLE_MAIN) && r.oif.is_some())
        .and_then(|r| r.oif)
    else {
        return Ok(None);
    };
    let replies = nl.request(
        &format!("get link {index} (host)"),
        0,
        RouteNetlinkMessage::GetLink(messages::link_ref(Target::Index(index))),
    )?;
    Ok(replies.into_iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n),
            _ => None,
        }),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_message_is_a_gateway_in_main() {
        let m = default_route(Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.table, 254);
        assert_eq!(m.attributes, vec![RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(10, 77, 0, 1)))]);
    }
}
