//! Section 3 of the tutorial, "컨테이너 네트워크", done in-process: named network
//! namespaces and a veth pair between them, through rtnetlink. No `ip` program runs.
//!
//! | tutorial                                                             | here                 |
//! |----------------------------------------------------------------------|----------------------|
//! | `ip netns add RED`                                                   | [`create_netns`]     |
//! | `ip netns exec RED ip link set lo up`                                | [`set_loopback_up`]  |
//! | `ip netns exec RED sysctl -w KEY=VALUE`                              | [`Sysctl::run`]      |
//! | `ip link add veth0 netns RED type veth peer name veth1 netns BLUE`,  | [`create_veth_pair`] |
//! | then per end `ip netns exec RED ip addr add dev veth0 11.11.11.2/24` |                      |
//! | and `ip netns exec RED ip link set veth0 up`                         |                      |
//! | `ip netns exec RED ip link delete veth0`                             | [`delete_link`]      |
//! | `ip netns delete RED`                                                | [`delete_netns`]     |
//!
//! [`Op`] is what the netns and link steps do, as data: run, and rendered as those
//! shell lines for `--explain` (op.rs).
//!
//! How a namespace is reached: a netlink socket answers for the network namespace it was
//! created in, for its whole life. So a short-lived thread joins /run/netns/NAME, opens
//! the socket and ends (see `netlink.rs`); the calling thread never changes namespace.

pub mod bridge;
mod messages;
mod netlink;
mod netns;
pub mod nft;
mod op;
pub mod sysctl;

pub use bridge::Join;
pub use op::Op;
pub use sysctl::Sysctl;

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use log::{debug, warn};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;

use self::messages::Target;
use self::netlink::Netlink;
use crate::error::{Error, Result};
use crate::usage;

/// Where iproute2 keeps named network namespaces (/var/run/netns is a link to it).
pub const NETNS_DIR: &str = "/run/netns";

/// The longest interface name the kernel takes (IFNAMSIZ 16, with the NUL).
pub const IFNAME_MAX: usize = 15;

/// /run/netns/NAME.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Whether /run/netns/NAME exists (what `ip netns list` shows).
pub fn netns_exists(name: &str) -> bool {
    check_netns_name(name).is_ok() && std::fs::symlink_metadata(netns_path(name)).is_ok()
}

/// A namespace name: a plain file name under /run/netns. Kept to letters, digits and
/// `-_.` so it is safe in paths and in the `--explain` shell lines.
pub fn check_netns_name(name: &str) -> Result<()> {
    // An absolute path: a namespace bound at a file of its own (an OCI
    // container's, in its directory), made and removed the same way.
    if name.starts_with('/') && !name.split('/').any(|c| c == "..") {
        return Ok(());
    }
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else if name == "." || name == ".." {
        "it is not a file name"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        "only letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(usage!("invalid netns name {name:?}: {why}"))
}

/// An interface name as the kernel accepts it (dev_valid_name): 1 to 15 bytes, not `.`
/// or `..`, without `/`, `:` or white space.
pub fn check_ifname(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > IFNAME_MAX {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "it is not a valid name"
    } else if name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace()) {
        "'/', ':' and white space are not allowed"
    } else {
        return Ok(());
    };
    Err(usage!("invalid interface name {name:?}: {why}"))
}

/// `ip netns add NAME`: creates a named network namespace exactly as iproute2 does, so
/// `ip netns exec NAME ...` and `nsenter --net=/run/netns/NAME` work with it.
///
/// mkdir /run/netns; make it a shared mount (bind-mounting it onto itself first if it
/// is none yet); create /run/netns/NAME with O_EXCL (an existing name is an
/// `Error::Precondition`, and the existing namespace is left alone); unshare(CLONE_NEWNET)
/// in a short-lived thread and bind-mount its /proc/thread-self/ns/net onto the file. If
/// that fails the file is removed again.
pub fn create_netns(name: &str) -> Result<()> {
    check_netns_name(name)?;
    debug!("ip netns add {name}");
    netns::create(name)
}

/// `ip netns delete NAME`: umount2(MNT_DETACH) and unlink. `Ok(false)` if it was absent.
///
/// The kernel frees the namespace, and destroys the veths still in it (with their peers),
/// asynchronously once no process, mount or open fd holds it any more.
pub fn delete_netns(name: &str) -> Result<bool> {
    check_netns_name(name)?;
    debug!("ip netns delete {name}");
    netns::delete(name)
}

/// `ip netns exec NETNS ip link set lo up`. A new namespace's loopback starts down.
pub fn set_loopback_up(netns: &str) -> Result<()> {
    check_netns_name(netns)?;
    let ns = netns::open_existing(netns)?;
    let nl = Netlink::open(netns, &ns)?;
    nl.request(
        &format!("set lo up (netns {netns})"),
        0,
        RouteNetlinkMessage::SetLink(messages::link_up(Target::Name("lo"))),
    )?;
    Ok(())
}

/// One end of a veth pair: its namespace, its name there, and its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VethEnd {
    pub netns: String,
    pub ifname: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl VethEnd {
    pub fn new(netns: impl Into<String>, ifname: impl Into<String>, addr: Ipv4Addr, prefix_len: u8) -> Self {
        VethEnd { netns: netns.into(), ifname: ifname.into(), addr, prefix_len }
    }

    fn check(&self) -> Result<()> {
        check_netns_name(&self.netns)?;
        check_ifname(&self.ifname)?;
        if self.prefix_len > 32 {
            return Err(usage!("invalid prefix length /{} for {}: at most 32", self.prefix_len, self.addr));
        }
        Ok(())
    }
}

/// `veth0 (netns RED)`, as error messages name an end.
impl fmt::Display for VethEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (netns {})", self.ifname, self.netns)
    }
}

/// `ip link add A netns NS_A type veth peer name B netns NS_B`, then for each end
/// `ip addr add dev X ADDR/LEN brd +` and `ip link set X up` inside its namespace.
///
/// One RTM_NEWLINK creates both ends, each straight in its own namespace (IFLA_NET_NS_FD
/// on the link and on the peer, as netavark does), so no end ever appears in the
/// caller's namespace, and a name already taken in either namespace fails the whole
/// request (EEXIST) with nothing created. If a later step fails, the pair is deleted
/// again before the error is returned. Both namespaces must exist.
pub fn create_veth_pair(a: &VethEnd, b: &VethEnd) -> Result<()> {
    a.check()?;
    b.check()?;
    if a.netns == b.netns && a.ifname == b.ifname {
        return Err(usage!("both ends of the veth pair are {a}"));
    }
    // Both files stay open until the kernel has acked: it resolves the fds in our fd
    // table while it handles the request.
    let ns_a = netns::open_existing(&a.netns)?;
    let ns_b = netns::open_existing(&b.netns)?;
    let nl_a = Netlink::open(&a.netns, &ns_a)?;
    let nl_b_own;
    let nl_b = if b.netns == a.netns {
        &nl_a
    } else {
        nl_b_own = Netlink::open(&b.netns, &ns_b)?;
        &nl_b_own
    };

    let what = format!("create veth pair {a} <-> {b}");
    let msg = messages::new_veth_pair(&a.ifname, ns_a.as_raw_fd(), &b.ifname, ns_b.as_raw_fd());
    nl_a.request(&what, NLM_F_CREATE | NLM_F_EXCL, RouteNetlinkMessage::NewLink(msg)).map_err(|e| match e.errno() {
        Some(Errno::EEXIST) => e.hint("an interface of one of these names exists already in its netns"),
        // "Unknown device type": the kernel has no veth driver loaded.
        Some(Errno::EOPNOTSUPP) => crate::precondition!("{e}; the veth driver is missing: load it (modprobe veth)"),
        _ => e,
    })?;

    or_undo(
        || {
            configure_end(&nl_a, a)?;
            configure_end(nl_b, b)
        },
        || delete_by_name(&nl_a, &a.netns, &a.ifname),
        &format!("delete the new veth pair again ({a})"),
    )
}

/// `ip addr add dev X ADDR/LEN brd +` and `ip link set X up`, in the end's namespace.
fn configure_end(nl: &Netlink, end: &VethEnd) -> Result<()> {
    let Some(link) = get_link(nl, &end.netns, &end.ifname)? else {
        return Err(Error::sys(format!("find {end}"), Errno::ENODEV));
    };
    let index = link.header.index;
    let addr = messages::new_ipv4_address(index, end.addr, end.prefix_len);
    nl.request(
        &format!("add address {}/{} to {end}", end.addr, end.prefix_len),
        NLM_F_CREATE | NLM_F_EXCL,
        RouteNetlinkMessage::NewAddress(addr),
    )?;
    nl.request(&format!("set {end} up"), 0, RouteNetlinkMessage::SetLink(messages::link_up(Target::Index(index))))?;
    Ok(())
}

/// Runs `step`; if it fails, runs `undo` and returns the step's error (noting on it if
/// the undo failed too).
fn or_undo<T>(step: impl FnOnce() -> Result<T>, undo: impl FnOnce() -> Result<bool>, undo_what: &str) -> Result<T> {
    let err = match step() {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    match undo() {
        Ok(_) => {
            debug!("{undo_what}: done, after: {err}");
            Err(err)
        }
        Err(u) => {
            warn!("{undo_what}: {u}");
            Err(err.hint(format!("and then could not {undo_what}: {u}")))
        }
    }
}

/// RTM_GETLINK by name; `None` if there is no such link (ENODEV).
fn get_link(nl: &Netlink, netns: &str, ifname: &str) -> Result<Option<LinkMessage>> {
    let what = format!("get link {ifname} (netns {netns})");
    match nl.request(&what, 0, RouteNetlinkMessage::GetLink(messages::link_ref(Target::Name(ifname)))) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })),
        Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// RTM_DELLINK by name; `Ok(false)` if there is no such link.
///
/// Deleting one end of a veth deletes both: the kernel's veth_dellink unregisters the
/// peer too, in whatever namespace it is, since a veth end cannot exist without its peer.
fn delete_by_name(nl: &Netlink, netns: &str, ifname: &str) -> Result<bool> {
    let what = format!("delete link {ifname} (netns {netns})");
    match nl.request(&what, 0, RouteNetlinkMessage::DelLink(messages::link_ref(Target::Name(ifname)))) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ENODEV) => {
            debug!("{what}: no such link");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// `ip netns exec NETNS ip link delete IFNAME`. Deleting one end of a veth removes both.
/// `Ok(false)` if the link, or the whole namespace, is absent (a namespace's interfaces
/// die with it), or if /run/netns/NETNS is a file with no namespace mounted on it.
pub fn delete_link(netns: &str, ifname: &str) -> Result<bool> {
    check_netns_name(netns)?;
    check_ifname(ifname)?;
    let Some(ns) = netns::open(netns)? else {
        debug!("delete link {ifname}: netns {netns} is absent");
        return Ok(false);
    };
    let nl = match Netlink::open(netns, &ns) {
        Ok(nl) => nl,
        // A file that an interrupted `ip netns add` left has no namespace, so no links.
        Err(e) if e.errno() == Some(Errno::EINVAL) => {
            debug!("delete link {ifname}: {e}");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    delete_by_name(&nl, netns, ifname)
}

/// A link's state as `host-setup status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// ifindex in its namespace.
    pub index: u32,
    /// IFLA_INFO_KIND, e.g. "veth"; None for lo and other kind-less devices.
    pub kind: Option<String>,
    /// IFF_UP: set up administratively (`ip link set X up`).
    pub up: bool,
    /// IFF_LOWER_UP, the carrier: for a veth, true only once its peer is up as well.
    pub lower_up: bool,
    /// IPv4 addresses with their prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// A veth that still has its peer (IFLA_LINK is the peer's ifindex, non-zero).
    pub has_peer: bool,
    /// The peer's ifindex, in the peer's namespace.
    pub peer_ifindex: Option<u32>,
    /// The id this namespace gives the peer's namespace (IFLA_LINK_NETNSID), if it is another.
    pub peer_netnsid: Option<i32>,
}

/// The state of link IFNAME in NETNS; `None` if the link, or the namespace, is absent.
pub fn link_status(netns: &str, ifname: &str) -> Result<Option<LinkStatus>> {
    check_netns_name(netns)?;
    check_ifname(ifname)?;
    let Some(ns) = netns::open(netns)? else {
        return Ok(None);
    };
    let nl = Netlink::open(netns, &ns)?;
    let Some(link) = get_link(&nl, netns, ifname)? else {
        return Ok(None);
    };
    let addrs: Vec<_> = nl
        .request(
            &format!("list addresses (netns {netns})"),
            NLM_F_DUMP,
            RouteNetlinkMessage::GetAddress(messages::ipv4_addresses()),
        )?
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewAddress(a) => Some(a),
            _ => None,
        })
        .collect();
    Ok(Some(messages::link_status(&link, &addrs)))
}

/// A word as a POSIX shell reads it back: as is when it is plain, else single-quoted.
pub fn sh(word: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b);
    if !word.is_empty() && word.bytes().all(plain) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests;
