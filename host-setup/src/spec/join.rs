//! `--net`: which network a container is on. `pair` is the tutorial's veth pair (red
//! and blue; any container with `--address`), `none` leaves only loopback, any other
//! word names a bridge network (`host-setup network create`, or the default `hs0`,
//! made on first use). On a network, `--address` picks a fixed address and `-p`
//! publishes ports.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::usage;

/// The network made on first use and removed with its last container.
pub const DEFAULT_NETWORK: &str = "hs0";

/// A container on a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    pub network: String,
    /// The interface inside: eth0 unless --iface says otherwise.
    pub iface: String,
    /// `--address`: a fixed address instead of the next free one.
    pub address: Option<Ipv4Addr>,
    /// `-p HOSTPORT:PORT[/tcp|/udp]`, in the order given.
    pub ports: Vec<Publish>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{}/{}", self.host_port, self.port, self.proto.as_str())
    }
}

/// What `--net` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    Pair,
    None,
    Network(String),
}

pub fn parse_net(text: &str) -> Result<NetMode> {
    match text {
        "pair" => Ok(NetMode::Pair),
        "none" => Ok(NetMode::None),
        n => {
            validate_network_name(n)?;
            Ok(NetMode::Network(n.to_string()))
        }
    }
}

/// Network names: 1–15 of [a-z0-9_-], starting with a letter; the bridge gets the
/// same name. `pair` and `none` are the other two modes.
pub fn validate_network_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(usage!(
            "invalid network name {name:?}: use 1 to 15 lower-case letters, digits, '-' or '_', starting with a \
             letter (e.g. {DEFAULT_NETWORK}); the bridge gets the same name"
        ));
    }
    if name == "pair" || name == "none" {
        return Err(usage!("invalid network name {name:?}: it is a --net mode; pick another name"));
    }
    Ok(())
}

/// `8080:80`, `8080:80/tcp`, `5353:53/udp`.
pub fn parse_publish(text: &str) -> Result<Publish> {
    let bad = || usage!("invalid -p {text:?}: give HOSTPORT:PORT[/tcp|/udp], ports 1 to 65535 (e.g. -p 8080:80)");
    let (ports, proto) = match text.split_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some(_) => return Err(bad()),
        None => (text, Proto::Tcp),
    };
    let (h, c) = ports.split_once(':').ok_or_else(bad)?;
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
    Ok(Publish { host_port: port(h)?, port: port(c)?, proto })
}

/// `--address` on a network: `10.77.0.9` or `10.77.0.9/16` (the prefix must then be
/// the network's; checked when the network is known).
pub fn parse_fixed(text: &str) -> Result<Ipv4Addr> {
    let a = text.split_once('/').map_or(text, |(a, _)| a);
    a.parse().map_err(|_| usage!("invalid address {text:?}: not an IPv4 address (e.g. 10.77.0.9)"))
}

/// The join of a container on network `network`, from the user's options.
pub fn join(network: String, iface: Option<&str>, address: Option<&str>, publish: &[String]) -> Result<JoinSpec> {
    let mut ports: Vec<Publish> = vec![];
    for p in publish {
        let p = parse_publish(p)?;
        if ports.iter().any(|q| q.host_port == p.host_port && q.proto == p.proto) {
            return Err(usage!("-p {p}: host port {}/{} is published twice", p.host_port, p.proto.as_str()));
        }
        ports.push(p);
    }
    Ok(JoinSpec {
        network,
        iface: iface.unwrap_or("eth0").to_string(),
        address: address.map(parse_fixed).transpose()?,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_ports_and_names() {
        assert_eq!(parse_net("pair").unwrap(), NetMode::Pair);
        assert_eq!(parse_net("none").unwrap(), NetMode::None);
        assert_eq!(parse_net("hs0").unwrap(), NetMode::Network("hs0".into()));
        for bad in ["", "Hs0", "0net", "a-very-long-network", "a/b"] {
            assert_eq!(parse_net(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert!(validate_network_name("none").is_err());
        assert_eq!(parse_publish("8080:80").unwrap(), Publish { host_port: 8080, port: 80, proto: Proto::Tcp });
        assert_eq!(parse_publish("53:5353/udp").unwrap(), Publish { host_port: 53, port: 5353, proto: Proto::Udp });
        for bad in ["80", "0:80", "80:70000", "80:80/sctp", "a:b"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
        let j = join("hs0".into(), None, Some("10.77.0.9/16"), &["8080:80".into(), "8080:80/udp".into()]).unwrap();
        assert_eq!((j.iface.as_str(), j.address), ("eth0", Some(Ipv4Addr::new(10, 77, 0, 9))));
        assert!(join("hs0".into(), None, None, &["1:2".into(), "1:3".into()]).is_err());
    }
}
