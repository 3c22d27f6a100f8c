//! A container's veth end on the host (a port of its network's bridge) has no IPv6
//! of its own: no link-local address, no IPv6 route, disable_ipv6 set; nor has the
//! container's end. With IPv6
//! on, each port added an address and three routes to the host's netns, and the
//! kernel walks the whole IPv6 FIB on every port's deletion, so `down` grew with
//! the number of containers (docs/performance.md, "1,000 containers").
//! host-setup runs "as the host" in a test netns (as tests/network.rs does); a
//! guard takes the container and the network down and deletes the netns.

use std::process::{Command, Stdio};

use lab_tests::{bin, stdout, text, Lab};

fn ok(args: &[&str]) -> String {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    stdout(&o)
}

/// The stand-in host: a netns, a lab, and what to take down on drop.
struct Host {
    lab: Lab,
    ns: String,
    net: String,
    name: String,
}

impl Host {
    fn hs(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(bin("host-setup"))
            .args(args)
            .env("HOST_SETUP_STATE_DIR", &self.lab.state_dir)
            .env("HOST_SETUP_CGROUP_PARENT", &self.lab.cgroup_parent)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run host-setup")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.hs(&["down", &self.name]);
        let _ = self.hs(&["network", "rm", &self.net]);
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

impl Host {
    /// The stand-in host's netns, a network in it, and one container `up` on it.
    fn up(subnet: &str) -> Host {
        let lab = Lab::new();
        let tag = lab.tag().to_string();
        let name = lab.name("p");
        let h = Host { ns: format!("BP{tag}"), net: format!("n{tag}p"), name, lab };
        ok(&["ip", "netns", "add", &h.ns]);
        ok(&["ip", "-n", &h.ns, "link", "set", "lo", "up"]);
        let o = h.hs(&["network", "create", &h.net, "--subnet", subnet]);
        assert!(o.status.success(), "network create: {}", text(&o));
        let o = h.hs(&["up", &h.name, "--net", &h.net]);
        assert!(o.status.success(), "up: {}", text(&o));
        h
    }
}

#[test]
fn a_bridge_port_has_no_ipv6_of_its_own() {
    let h = Host::up("10.126.0.0/24");
    // The bridge's one port is the container's host end.
    let ports = ok(&["ip", "-n", &h.ns, "-o", "link", "show", "master", &h.net]);
    let port = ports.split(": ").nth(1).and_then(|p| p.split('@').next()).expect("one port").to_string();
    let sysctl = ok(&["nsenter", &format!("--net=/run/netns/{}", h.ns), "cat"]
        .into_iter()
        .chain([format!("/proc/sys/net/ipv6/conf/{port}/disable_ipv6").as_str()])
        .collect::<Vec<_>>());
    let addrs = ok(&["ip", "-n", &h.ns, "-6", "addr", "show", "dev", &port]);
    let routes = ok(&["ip", "-n", &h.ns, "-6", "route", "show", "table", "all", "dev", &port]);
    // The container itself still reaches its gateway (IPv4 through the port).
    let o = h.hs(&["exec", &h.name, "--", "ping", "-c", "1", "-W", "2", "10.126.0.1"]);
    assert_eq!(sysctl.trim(), "1", "disable_ipv6 of {port}");
    assert_eq!(addrs.trim(), "", "IPv6 addresses of {port}");
    assert_eq!(routes.trim(), "", "IPv6 routes through {port}");
    assert!(o.status.success(), "ping the gateway: {}", text(&o));
}

/// The container's end of the pair has no IPv6 either (the network is IPv4 only, as
/// Docker does it): no link-local address, so no DAD, MLD or router solicitation
/// that the bridge floods to every port of the network; its loopback keeps ::1.
#[test]
fn a_container_on_a_bridge_has_no_ipv6_on_its_link_and_keeps_its_loopbacks() {
    let h = Host::up("10.127.0.0/24");
    let netns = format!("--net=/run/netns/{}", h.name.to_uppercase());
    let eth0 = ok(&["nsenter", &netns, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]);
    let addrs = ok(&["nsenter", &netns, "ip", "-6", "addr", "show", "dev", "eth0"]);
    let lo = ok(&["nsenter", &netns, "ip", "-6", "addr", "show", "dev", "lo"]);
    let o = h.hs(&["exec", &h.name, "--", "ping", "-c", "1", "-W", "2", "10.127.0.1"]);
    assert_eq!(eth0.trim(), "1", "disable_ipv6 of the container's eth0");
    assert_eq!(addrs.trim(), "", "IPv6 addresses of the container's eth0");
    assert!(lo.contains("inet6 ::1/128"), "the container's loopback keeps ::1: {lo}");
    assert!(o.status.success(), "ping the gateway: {}", text(&o));
}
