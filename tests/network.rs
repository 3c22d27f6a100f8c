//! Bridge networks end to end, the default network hs0: many containers joining it at
//! once, the outside, published ports, SIGKILL while joining, `--explain` writing
//! nothing anywhere. As root, without ever touching the real host's network:
//! host-setup runs "as the host" in a test netns whose uplink leads to a second test
//! netns standing for the outside world (lab_tests::standin; the networks' world is
//! network_common.rs). Networks made with `network create`: network_named.rs;
//! docs/networking.md's web example: network_web.rs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use lab_tests::standin::{must, HOST_ADDR, OUT_ADDR};
use lab_tests::{stdout, text};

mod network_common;
use network_common::{lock, World, WAIT};

/// Bring containers up `--pause`d, all at once: `args` follow each name.
fn up_all(w: &World, names: &[String], args: &[&str]) {
    let kids: Vec<_> = names
        .iter()
        .map(|n| {
            let mut a = vec!["up", n.as_str()];
            a.extend_from_slice(args);
            (n, w.cmd(&a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        })
        .collect();
    for (n, k) in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "up {n}: {}", text(&o));
    }
}

/// A TCP connection from netns `from` to `to`, accepted on `l`: the peer address `l` saw.
fn tcp_peer(l: &TcpListener, from: &str, to: &str) -> Ipv4Addr {
    let to_addr: SocketAddr = to.parse().unwrap();
    let mut c = World::in_ns(from, || TcpStream::connect_timeout(&to_addr, WAIT))
        .unwrap_or_else(|e| panic!("connect to {to} from netns {from}: {e}"));
    let (mut s, peer) = l.accept().unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    s.write_all(b"pong").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    match peer {
        SocketAddr::V4(a) => *a.ip(),
        p => panic!("{p}"),
    }
}

/// A datagram from netns `from` to `to`, answered from `server`.
fn udp_answers(server: &UdpSocket, from: &str, to: &str) {
    let c = World::in_ns(from, || UdpSocket::bind("0.0.0.0:0").unwrap());
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.send_to(b"ping", to).unwrap();
    let mut buf = [0u8; 8];
    let (n, peer) = server.recv_from(&mut buf).unwrap_or_else(|e| panic!("udp {to} from {from}: {e}"));
    assert_eq!(&buf[..n], b"ping");
    server.send_to(b"pong", peer).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap_or_else(|e| panic!("udp answer from {to} to {from}: {e}"));
    assert_eq!(&buf[..n], b"pong");
}

#[test]
fn sixteen_containers_on_the_default_network_reach_each_other_and_the_gateway() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let names: Vec<String> = (0..16).map(|i| w.name(&format!("c{i}"))).collect();
    // 8 at once (the first of them makes the network), then 8 more at once.
    up_all(&w, &names[..8], &["--net", "hs0"]);
    up_all(&w, &names[8..], &["--net", "hs0"]);
    let members = w.members("hs0");
    let mut addrs: Vec<Ipv4Addr> = members.iter().map(|m| m.1).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!((members.len(), addrs.len()), (16, 16), "16 distinct addresses: {members:?}");
    let gateway = Ipv4Addr::from(u32::from(addrs[0]) & 0xffff_0000 | 1);
    let all: Vec<String> = addrs.iter().chain([&gateway]).map(ToString::to_string).collect();
    let script = format!("for a in {}; do ping -c 1 -W 2 $a >/dev/null || echo unreachable $a; done", all.join(" "));
    for n in &names {
        let o = w.run(&["exec", n, "--", "sh", "-c", &script]);
        assert!(o.status.success() && stdout(&o).is_empty(), "{n}: {}", text(&o));
    }
    let st = w.ok_stdout(&["status", &names[3]]);
    assert!(st.contains("network   hs0 (bridge hs0"), "{st}");

    let mut a = vec!["down", "--timeout", "1"];
    a.extend(names.iter().map(String::as_str));
    w.ok(&a);
    assert_eq!(w.leftovers(), Vec::<String>::new(), "the default network goes with its last container");
    assert_eq!(w.forwarding(), before);
}

#[test]
fn the_outside_sees_the_uplink_address_and_published_ports_answer_from_outside_and_from_the_host() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let c = w.name("p");
    w.ok(&["up", &c, "--net", "hs0", "-p", "8080:80", "-p", "5353:53/udp"]);
    let (_, addr) = w.members("hs0")[0].clone();
    // The outside could answer the container's own address: without the masquerade the
    // check fails on the address it sees, not on a timeout.
    must(&["ip", "-n", &w.out, "route", "add", &format!("{addr}/32"), "via", HOST_ADDR]);

    let l = World::in_ns(&w.out, || TcpListener::bind(format!("{OUT_ADDR}:7000")).unwrap());
    let seen = tcp_peer(&l, &c.to_uppercase(), &format!("{OUT_ADDR}:7000"));
    assert_eq!(seen.to_string(), HOST_ADDR, "the outside sees the uplink's address, not {addr}");

    let (tl, ul) = World::in_ns(&c.to_uppercase(), || {
        (TcpListener::bind("0.0.0.0:80").unwrap(), UdpSocket::bind("0.0.0.0:53").unwrap())
    });
    ul.set_read_timeout(Some(WAIT)).unwrap();
    let to_tcp = format!("{HOST_ADDR}:8080");
    let to_udp = format!("{HOST_ADDR}:5353");
    assert_eq!(tcp_peer(&tl, &w.out, &to_tcp).to_string(), OUT_ADDR, "from outside, DNAT only");
    udp_answers(&ul, &w.out, &to_udp);
    tcp_peer(&tl, &w.host, &to_tcp);
    udp_answers(&ul, &w.host, &to_udp);
    let st = w.ok_stdout(&["status", &c]);
    assert!(st.contains(&format!("{addr}/16 on eth0, ports 8080->80/tcp 5353->53/udp")), "{st}");
    let ex = w.ok_stdout(&["up", &w.name("x"), "--net", "hs0", "-p", "1:2", "--explain"]);
    assert!(ex.contains("add rule ip host-setup-hs") && ex.contains("dnat to"), "{ex}");
    // verify's ping check: to the network's gateway.
    let v = w.ok_stdout(&["verify", &c, "--check", "ping"]);
    assert!(v.lines().any(|l| l.contains("ping") && l.contains("PASS") && l.contains("gateway of hs0")), "{v}");

    w.ok(&["down", &c]);
    World::in_ns(&w.out, || {
        let to: SocketAddr = to_tcp.parse().unwrap();
        assert!(TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_err(), "the port is gone with down");
    });
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!(w.forwarding(), before);
}

#[test]
fn sigkill_while_joining_a_network_is_recovered() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let c = w.name("k");
    for fault in ["lease:recorded:kill", "lease:after:kill", "network:recorded:kill", "network:after:kill"] {
        let o = w.cmd(&["up", &c, "--net", "hs0", "-p", "9000:90"]).env("HOST_SETUP_FAULT", fault).output().unwrap();
        assert_eq!(o.status.code(), None, "{fault}: killed: {}", text(&o));
        w.ok(&["down", &c]);
        assert_eq!(w.leftovers(), Vec::<String>::new(), "after {fault} and down");
        assert_eq!(w.forwarding(), before, "after {fault} and down");
    }
    // Killed again, then `up` itself recovers first.
    let o = w.cmd(&["up", &c, "--net", "hs0"]).env("HOST_SETUP_FAULT", "network:recorded:kill").output().unwrap();
    assert_eq!(o.status.code(), None, "{}", text(&o));
    w.ok(&["up", &c, "--net", "hs0"]);
    assert_eq!(w.members("hs0").len(), 1);
    w.ok(&["down", &c]);
    assert_eq!(w.leftovers(), Vec::<String>::new());
}

/// `--explain` only prints: with a state dir path that does not exist yet, `up` (a new
/// network, a published port), `network create` and `red` explained leave no state dir
/// (not even containers/ for a lock file), netns, cgroup, bridge, nf_tables table or sysctl.
#[test]
fn explain_writes_nothing_anywhere() {
    let _serial = lock();
    let w = World::new();
    let state = w.lab.state_dir.clone();
    assert!(!state.exists(), "not a fresh state dir path: {}", state.display());
    let sysctls = (w.forwarding(), w.conf("route_localnet"));
    let (c, net) = (w.name("x"), w.network("x"));
    let ns = c.to_uppercase();
    let up = w.ok_stdout(&["up", &c, "--net", "hs0", "-p", "8080:80", "--explain"]);
    // Both kinds of sysctl line, each from its one Sysctl value (net/sysctl.rs).
    assert!(up.contains(&format!("ip netns exec {ns} sysctl -w net.ipv4.ip_unprivileged_port_start=0")), "{up}");
    assert!(up.contains("\nsysctl -w net.ipv4.conf.hs0."), "{up}");
    let create = w.ok_stdout(&["network", "create", &net, "--explain"]);
    assert!(create.contains(&format!("ip link add {net} type bridge")), "{create}");
    w.ok(&["red", "--explain"]);

    assert!(!state.exists(), "--explain made {}", state.display());
    assert!(!std::path::Path::new(&format!("/run/netns/{ns}")).exists(), "--explain made netns {ns}");
    let cg = w.lab.cgroup_dirs(&c);
    for d in cg.iter().chain(&host_setup::cgroup::parents(&cg)) {
        assert!(!d.exists(), "--explain made cgroup {}", d.display());
    }
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!((w.forwarding(), w.conf("route_localnet")), sysctls);
}
