//! The rtnetlink messages the network module sends, and the reading of the kernel's
//! answers: pure functions, unit-tested without root.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::AddressFamily;

use super::LinkStatus;

/// Which link a request is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Index(u32),
    /// The kernel looks the name up itself (IFLA_IFNAME with ifi_index 0).
    Name(&'a str),
}

fn link(target: Target) -> LinkMessage {
    let mut m = LinkMessage::default();
    match target {
        Target::Index(i) => m.header.index = i,
        Target::Name(n) => m.attributes.push(LinkAttribute::IfName(n.to_string())),
    }
    m
}

/// RTM_NEWLINK body for `ip link add A netns NS_A type veth peer name B netns NS_B`:
/// ```text
/// ifinfomsg, IFLA_IFNAME A, IFLA_NET_NS_FD ns_a,
/// IFLA_LINKINFO { IFLA_INFO_KIND "veth",
///                 IFLA_INFO_DATA { VETH_INFO_PEER: ifinfomsg, IFLA_IFNAME B, IFLA_NET_NS_FD ns_b } }
/// ```
/// Each end is created straight in its namespace: the kernel resolves both fds in the
/// sender's fd table while it handles the message, so they must stay open until the ack.
pub(crate) fn new_veth_pair(a_name: &str, a_netns_fd: RawFd, b_name: &str, b_netns_fd: RawFd) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes = vec![LinkAttribute::IfName(b_name.to_string()), LinkAttribute::NetNsFd(b_netns_fd)];
    let mut m = LinkMessage::default();
    m.attributes = vec![
        LinkAttribute::IfName(a_name.to_string()),
        LinkAttribute::NetNsFd(a_netns_fd),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]),
    ];
    m
}

/// RTM_GETLINK / RTM_DELLINK body for one link.
pub(crate) fn link_ref(target: Target) -> LinkMessage {
    link(target)
}

/// RTM_SETLINK body for `ip link set X up`: IFF_UP in flags and in the change mask, so
/// no other flag is touched.
pub(crate) fn link_up(target: Target) -> LinkMessage {
    let mut m = link(target);
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

/// The broadcast address `ip addr add ADDR/LEN brd +` sets: host bits all ones.
/// None for /31 and /32, which have no broadcast (RFC 3021).
pub(crate) fn ipv4_broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(addr) | host_mask))
}

/// RTM_NEWADDR body for `ip addr add dev X ADDR/LEN brd +`: IFA_LOCAL is the interface's
/// own address, IFA_ADDRESS the same for a non-point-to-point link.
pub(crate) fn new_ipv4_address(index: u32, addr: Ipv4Addr, prefix_len: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix_len;
    m.header.scope = AddressScope::Universe;
    m.header.index = index;
    m.attributes = vec![AddressAttribute::Local(IpAddr::V4(addr)), AddressAttribute::Address(IpAddr::V4(addr))];
    if let Some(brd) = ipv4_broadcast(addr, prefix_len) {
        m.attributes.push(AddressAttribute::Broadcast(brd));
    }
    m
}

/// RTM_GETADDR dump body: every IPv4 address of the namespace.
pub(crate) fn ipv4_addresses() -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m
}

/// Reads a link's RTM_NEWLINK answer and the namespace's address dump.
pub(crate) fn link_status(link: &LinkMessage, addrs: &[AddressMessage]) -> LinkStatus {
    let index = link.header.index;
    let mut kind = None;
    let mut peer_ifindex = None;
    let mut peer_netnsid = None;
    for attr in &link.attributes {
        match attr {
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        kind = Some(k.to_string());
                    }
                }
            }
            // IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace), 0 once
            // the peer is gone.
            LinkAttribute::Link(i) if *i != 0 => peer_ifindex = Some(*i),
            LinkAttribute::LinkNetNsId(id) if *id >= 0 => peer_netnsid = Some(*id),
            _ => {}
        }
    }
    let mut v4 = Vec::new();
    for a in addrs.iter().filter(|a| a.header.index == index && a.header.family == AddressFamily::Inet) {
        let mut local = None;
        let mut address = None;
        for attr in &a.attributes {
            match attr {
                AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
                AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(*ip),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            v4.push((ip, a.header.prefix_len));
        }
    }
    LinkStatus {
        index,
        kind,
        up: link.header.flags.contains(LinkFlags::Up),
        lower_up: link.header.flags.contains(LinkFlags::LowerUp),
        addrs: v4,
        has_peer: peer_ifindex.is_some(),
        peer_ifindex,
        peer_netnsid,
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    use netlink_packet_route::RouteNetlinkMessage;

    use super::*;

    /// Serialises as it goes on the wire and parses back, as the kernel would read it.
    fn round_trip(msg: RouteNetlinkMessage) -> (Vec<u8>, RouteNetlinkMessage) {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf).unwrap().payload {
            NetlinkPayload::InnerMessage(m) => (buf, m),
            other => panic!("unexpected payload {other:?}"),
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn veth_request_nests_the_peer_with_its_own_name_and_netns_fd() {
        let msg = new_veth_pair("veth0", 7, "veth1", 9);
        let (bytes, parsed) = round_trip(RouteNetlinkMessage::NewLink(msg.clone()));
        let RouteNetlinkMessage::NewLink(link) = parsed else { panic!("not RTM_NEWLINK") };
        assert_eq!(link, msg);
        assert_eq!(&bytes[4..6], &libc::RTM_NEWLINK.to_ne_bytes());

        // top level: the first end's name and netns fd
        assert!(link.attributes.contains(&LinkAttribute::IfName("veth0".into())));
        assert!(link.attributes.contains(&LinkAttribute::NetNsFd(7)));
        // inside IFLA_LINKINFO: kind veth, and the peer with the other name and fd
        let infos = link
            .attributes
            .iter()
            .find_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i) } else { None })
            .expect("IFLA_LINKINFO");
        assert!(infos.contains(&LinkInfo::Kind(InfoKind::Veth)));
        let peer = infos
            .iter()
            .find_map(|i| if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = i { Some(p) } else { None })
            .expect("VETH_INFO_PEER");
        assert_eq!(peer.attributes, vec![LinkAttribute::IfName("veth1".into()), LinkAttribute::NetNsFd(9)]);
        assert_eq!(peer.header.index, 0);

        // on the wire: the peer's name lies inside IFLA_LINKINFO, after the kind "veth"
        let linkinfo = contains(&bytes, &libc::IFLA_LINKINFO.to_ne_bytes()).unwrap();
        let kind = contains(&bytes, b"veth\0").unwrap();
        let peer_name = contains(&bytes, b"veth1\0").unwrap();
        assert!(contains(&bytes, b"veth0\0").unwrap() < linkinfo);
        assert!(linkinfo < kind && kind < peer_name);
        // the peer's IFLA_NET_NS_FD (type 28, value 9) follows its name
        let mut fd_nla = Vec::new();
        fd_nla.extend_from_slice(&8u16.to_ne_bytes());
        fd_nla.extend_from_slice(&libc::IFLA_NET_NS_FD.to_ne_bytes());
        fd_nla.extend_from_slice(&9i32.to_ne_bytes());
        assert!(contains(&bytes, &fd_nla).unwrap() > peer_name);
    }

    #[test]
    fn link_up_sets_only_iff_up() {
        let m = link_up(Target::Index(4));
        assert_eq!(m.header.index, 4);
        assert_eq!(m.header.flags, LinkFlags::Up);
        assert_eq!(m.header.change_mask, LinkFlags::Up);
        assert!(m.attributes.is_empty());
        let lo = link_up(Target::Name("lo"));
        assert_eq!(lo.header.index, 0);
        assert_eq!(lo.attributes, vec![LinkAttribute::IfName("lo".into())]);
        let (_, parsed) = round_trip(RouteNetlinkMessage::SetLink(lo.clone()));
        assert_eq!(parsed, RouteNetlinkMessage::SetLink(lo));
    }

    #[test]
    fn broadcast_is_the_host_part_all_ones() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(ipv4_broadcast(ip("11.11.11.2"), 24), Some(ip("11.11.11.255")));
        assert_eq!(ipv4_broadcast(ip("10.1.2.3"), 8), Some(ip("10.255.255.255")));
        assert_eq!(ipv4_broadcast(ip("10.1.2.3"), 0), Some(ip("255.255.255.255")));
        assert_eq!(ipv4_broadcast(ip("10.1.2.3"), 30), Some(ip("10.1.2.3")));
        assert_eq!(ipv4_broadcast(ip("10.1.2.3"), 31), None);
        assert_eq!(ipv4_broadcast(ip("10.1.2.3"), 32), None);
    }

    #[test]
    fn address_request_has_local_address_and_broadcast() {
        let m = new_ipv4_address(3, "11.11.11.2".parse().unwrap(), 24);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!((m.header.index, m.header.prefix_len), (3, 24));
        assert_eq!(m.header.scope, AddressScope::Universe);
        let ip: IpAddr = "11.11.11.2".parse().unwrap();
        assert_eq!(
            m.attributes,
            vec![
                AddressAttribute::Local(ip),
                AddressAttribute::Address(ip),
                AddressAttribute::Broadcast("11.11.11.255".parse().unwrap()),
            ]
        );
        let (_, parsed) = round_trip(RouteNetlinkMessage::NewAddress(m.clone()));
        assert_eq!(parsed, RouteNetlinkMessage::NewAddress(m));
    }

    #[test]
    fn status_reads_flags_peer_and_only_this_links_addresses() {
        let mut link = LinkMessage::default();
        link.header.index = 2;
        link.header.flags = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Broadcast;
        link.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(0),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let mine = new_ipv4_address(2, "11.11.11.2".parse().unwrap(), 24);
        let other = new_ipv4_address(1, "127.0.0.1".parse().unwrap(), 8);
        let st = link_status(&link, &[other, mine]);
        assert_eq!(st.index, 2);
        assert!(st.up && st.lower_up && st.has_peer);
        assert_eq!(st.kind.as_deref(), Some("veth"));
        assert_eq!((st.peer_ifindex, st.peer_netnsid), (Some(2), Some(0)));
        assert_eq!(st.addrs, vec![("11.11.11.2".parse().unwrap(), 24)]);
    }

    #[test]
    fn status_of_a_down_link_without_peer() {
        let mut link = LinkMessage::default();
        link.header.index = 1;
        link.header.flags = LinkFlags::Loopback;
        link.attributes = vec![LinkAttribute::IfName("lo".into())];
        let st = link_status(&link, &[]);
        assert!(!st.up && !st.has_peer && st.addrs.is_empty() && st.kind.is_none());
        // a veth whose peer is gone reports IFLA_LINK 0
        link.attributes.push(LinkAttribute::Link(0));
        assert!(!link_status(&link, &[]).has_peer);
    }
}
