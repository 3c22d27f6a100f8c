//! host_setup::net::nft against the real kernel, as root, only inside network namespaces
//! these tests make (`hsnft<pid><tag>`, removed by a guard even when an assertion
//! fails): the ruleset read back with the `nft` tool, and real TCP/UDP traffic through
//! the masquerade and the published ports. The host's own namespace is never touched:
//! no table, no forwarding, no route there.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use host_setup::net::nft::{self, NetworkNat, PortMap, Ports, Proto};
use serde_json::{json, Value};

/// A network namespace of this test process, deleted on drop (with its interfaces and
/// its nf_tables tables).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        lab_tests::require_root();
        let name = format!("hsnft{}{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        ok(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.0];
        all.extend_from_slice(args);
        ok(&all)
    }

    /// `ip netns exec NS ARGS...`
    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        ok(&all)
    }

    /// Runs `f` on a thread that joined this namespace; the test's own thread stays.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .expect("the thread in the netns panicked")
        })
    }

    /// `nft -j list table ip NAME` in this namespace: the table's objects.
    fn table_json(&self, table: &str) -> Vec<Value> {
        let out = self.exec(&["nft", "-j", "list", "table", "ip", table]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j output {out:?}: {e}"));
        v["nftables"].as_array().expect("an nftables array").clone()
    }

    /// This namespace's tables, as `nft list tables` prints them.
    fn tables(&self) -> String {
        self.exec(&["nft", "list", "tables"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip").args(["netns", "delete", &self.0]).output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("could not delete netns {}: {out:?}", self.0);
        }
    }
}

fn ok(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chain<'a>(objs: &'a [Value], name: &str) -> &'a Value {
    objs.iter()
        .find_map(|o| o.get("chain").filter(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no chain {name} in {objs:?}"))
}

/// The expression lists of the chain's rules, in order.
fn rules(objs: &[Value], chain: &str) -> Vec<Value> {
    objs.iter().filter_map(|o| o.get("rule").filter(|r| r["chain"] == chain)).map(|r| r["expr"].clone()).collect()
}

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn the_kernel_holds_the_chains_and_rules_we_asked_for_and_delete_touches_only_ours() {
    let ns = Netns::new("r");
    let nat = NetworkNat {
        table: "hs-net".into(),
        subnet: (addr("10.77.0.1"), 24), // host bits set: the rule must match the network
        bridge: "hsbr0".into(),
        uplink: None,
    };
    let nat_up = NetworkNat { table: "hs-net-up".into(), uplink: Some("eth9".into()), ..nat.clone() };
    // A name no other test uses: it is also looked for in the test's own namespace.
    let ports_table = format!("hsnft{}-ports", std::process::id());
    let ports = Ports {
        table: ports_table.clone(),
        bridge: "hsbr0".into(),
        maps: vec![
            PortMap { proto: Proto::Tcp, host_port: 8080, addr: addr("10.77.0.2"), port: 80 },
            PortMap { proto: Proto::Udp, host_port: 5353, addr: addr("10.77.0.2"), port: 53 },
        ],
    };
    ns.run(|| {
        nat.create().unwrap();
        nat_up.create().unwrap();
        ports.create().unwrap();
    });

    let t = ns.table_json("hs-net");
    let post = chain(&t, "postrouting");
    assert_eq!((&post["type"], &post["hook"], &post["prio"]), (&json!("nat"), &json!("postrouting"), &json!(100)));
    let fwd = chain(&t, "forward");
    assert_eq!(
        (&fwd["type"], &fwd["hook"], &fwd["prio"], &fwd["policy"]),
        (&json!("filter"), &json!("forward"), &json!(0), &json!("accept"))
    );
    let oifname =
        |op: &str, name: &str| json!({"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": name}});
    let saddr = json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                 "right": {"prefix": {"addr": "10.77.0.0", "len": 24}}}});
    let lo = json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                              "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}});
    assert_eq!(
        rules(&t, "postrouting"),
        vec![
            json!([saddr, oifname("!=", "hsbr0"), {"masquerade": null}]),
            json!([lo, oifname("==", "hsbr0"), {"masquerade": null}]),
        ]
    );
    let ct = |key: &str, bits: Value| json!({"match": {"op": "in", "left": {"ct": {"key": key}}, "right": bits}});
    assert_eq!(
        rules(&t, "forward"),
        vec![
            json!([{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "hsbr0"}}, {"accept": null}]),
            json!([oifname("==", "hsbr0"), ct("state", json!(["established", "related"])), {"accept": null}]),
            json!([oifname("==", "hsbr0"), ct("status", json!("dnat")), {"accept": null}]),
            json!([oifname("==", "hsbr0"), {"drop": null}]),
        ]
    );
    let t_up = ns.table_json("hs-net-up");
    assert_eq!(rules(&t_up, "postrouting")[0], json!([saddr, oifname("==", "eth9"), {"masquerade": null}]));

    // Made in ns, by the thread that was in ns: the test's own namespace (the host's)
    // has no such table.
    assert!(!nft::table_exists(&ports_table).unwrap());
    let p = ns.table_json(&ports_table);
    for (name, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        let c = chain(&p, name);
        assert_eq!((&c["type"], &c["hook"], &c["prio"]), (&json!("nat"), &json!(hook), &json!(-100)));
        let local =
            json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}});
        let dport = |proto: &str, port: u16| json!({"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": port}});
        assert_eq!(
            rules(&p, name),
            vec![
                json!([local, dport("tcp", 8080), {"dnat": {"addr": "10.77.0.2", "port": 80}}]),
                json!([local, dport("udp", 5353), {"dnat": {"addr": "10.77.0.2", "port": 53}}]),
            ]
        );
    }

    // What shell() claims is what the nft tool prints for the kernel's rules.
    let listing = ns.exec(&["nft", "list", "ruleset"]);
    for line in nat.shell().iter().chain(&nat_up.shell()).chain(&ports.shell()) {
        if let Some(rule) = line.strip_prefix("nft 'add rule ip ") {
            let text = rule.trim_end_matches('\'').splitn(3, ' ').nth(2).unwrap();
            assert!(listing.contains(&format!("\t{text}\n")), "{text:?} is not in:\n{listing}");
        }
    }

    // A table of someone else's, made by the nft tool.
    ns.exec(&["nft", "add", "table", "ip", "other"]);
    ns.run(|| {
        assert!(nft::table_exists("hs-net").unwrap());
        assert!(nft::delete_table("hs-net").unwrap());
        assert!(!nft::table_exists("hs-net").unwrap());
        assert!(!nft::delete_table("hs-net").unwrap(), "a second delete finds nothing");
        assert!(nft::table_exists("other").unwrap());
    });
    let tables = ns.tables();
    assert!(!tables.contains("table ip hs-net\n"), "{tables}");
    assert!(tables.contains("table ip other\n") && tables.contains(&format!("table ip {ports_table}\n")), "{tables}");

    // An existing table fails the whole batch: the chains that the same batch would
    // have added to it are not there either.
    let taken = Ports { table: "other".into(), ..ports.clone() };
    let err = ns.run(|| taken.create()).unwrap_err().to_string();
    assert!(err.starts_with("nft add table ip other: EEXIST: file exists"), "{err}");
    assert!(err.contains("nothing of the batch was applied"), "{err}");
    let other = ns.table_json("other");
    assert!(other.iter().all(|o| o.get("chain").is_none() && o.get("rule").is_none()), "{other:?}");
    let err = ns.run(|| nat_up.create()).unwrap_err().to_string();
    assert!(err.starts_with("nft add table ip hs-net-up: EEXIST"), "{err}");
}

/// c (a container, 10.88.0.2 on the bridge) -- h (the host: bridge 10.88.0.1, uplink
/// 192.0.2.1, forwarding on in h only) -- o (outside, 192.0.2.2).
struct Topology {
    c: Netns,
    h: Netns,
    o: Netns,
}

const BRIDGE: &str = "hsbr0";
const UPLINK: &str = "hsup0";

impl Topology {
    fn new() -> Topology {
        let (c, h, o) = (Netns::new("c"), Netns::new("h"), Netns::new("o"));
        h.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        h.ip(&["addr", "add", "10.88.0.1/24", "dev", BRIDGE]);
        h.ip(&["link", "set", BRIDGE, "up"]);
        h.ip(&["link", "add", "hsvh", "type", "veth", "peer", "name", "hsvc", "netns", &c.0]);
        h.ip(&["link", "set", "hsvh", "master", BRIDGE, "up"]);
        c.ip(&["addr", "add", "10.88.0.2/24", "dev", "hsvc"]);
        c.ip(&["link", "set", "hsvc", "up"]);
        c.ip(&["route", "add", "default", "via", "10.88.0.1"]);
        h.ip(&["link", "add", UPLINK, "type", "veth", "peer", "name", "hsout", "netns", &o.0]);
        h.ip(&["addr", "add", "192.0.2.1/24", "dev", UPLINK]);
        h.ip(&["link", "set", UPLINK, "up"]);
        o.ip(&["addr", "add", "192.0.2.2/24", "dev", "hsout"]);
        o.ip(&["link", "set", "hsout", "up"]);
        // o can answer 10.88.0.0/24 directly: without the masquerade a connection from c
        // still works, and shows c's own address (the check fails on the address, not on
        // a timeout).
        o.ip(&["route", "add", "10.88.0.0/24", "via", "192.0.2.1"]);
        // Forwarding on h's two interfaces, inside h (its own /proc/sys/net).
        for dev in [BRIDGE, UPLINK] {
            h.exec(&["sh", "-c", &format!("echo 1 > /proc/sys/net/ipv4/conf/{dev}/forwarding")]);
        }
        Topology { c, h, o }
    }
}

const WAIT: Duration = Duration::from_secs(10);

fn listen_tcp(ns: &Netns, at: &str) -> TcpListener {
    ns.run(|| TcpListener::bind(at).unwrap_or_else(|e| panic!("bind {at} in {}: {e}", ns.0)))
}

fn connect_tcp(ns: &Netns, to: &str) -> std::io::Result<TcpStream> {
    let to: SocketAddr = to.parse().unwrap();
    ns.run(|| TcpStream::connect_timeout(&to, WAIT))
}

/// One TCP connection from `from` to `to`, accepted on `listener`: the peer address the
/// listener saw; a line goes each way.
fn tcp_peer(listener: &TcpListener, from: &Netns, to: &str) -> Ipv4Addr {
    let mut client = connect_tcp(from, to).unwrap_or_else(|e| panic!("connect to {to} from {}: {e}", from.0));
    let (mut server, peer) = listener.accept().unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    match peer {
        SocketAddr::V4(a) => *a.ip(),
        other => panic!("peer {other}"),
    }
}

fn udp_socket(ns: &Netns, at: &str) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind(at).unwrap_or_else(|e| panic!("bind udp {at} in {}: {e}", ns.0)));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// A datagram from a fresh socket in `from` to `to`, received on `server`, answered:
/// the sender the server saw, and where the answer came from as the client saw it.
fn udp_peer(server: &UdpSocket, from: &Netns, to: &str) -> (Ipv4Addr, SocketAddr) {
    let client = udp_socket(from, "0.0.0.0:0");
    client.send_to(b"ping", to).unwrap();
    let mut buf = [0u8; 16];
    let (n, peer) = server.recv_from(&mut buf).unwrap_or_else(|e| panic!("udp to {to} from {}: {e}", from.0));
    assert_eq!(&buf[..n], b"ping");
    server.send_to(b"pong", peer).unwrap();
    let (n, answer_from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
    match peer {
        SocketAddr::V4(a) => (*a.ip(), answer_from),
        other => panic!("peer {other}"),
    }
}

#[test]
fn masquerade_and_published_ports_carry_real_traffic() {
    let Topology { c, h, o } = Topology::new();
    let container = addr("10.88.0.2");
    let uplink = addr("192.0.2.1");
    let outside = addr("192.0.2.2");

    // Outbound from the container: before the NAT o sees the container's own address.
    let o_tcp = listen_tcp(&o, "192.0.2.2:7000");
    let o_udp = udp_socket(&o, "192.0.2.2:7001");
    assert_eq!(tcp_peer(&o_tcp, &c, "192.0.2.2:7000"), container, "the control, before any NAT");
    assert_eq!(udp_peer(&o_udp, &c, "192.0.2.2:7001").0, container);

    let nat =
        NetworkNat { table: "hs-net".into(), subnet: (addr("10.88.0.0"), 24), bridge: BRIDGE.into(), uplink: None };
    h.run(|| nat.create()).unwrap();
    assert_eq!(tcp_peer(&o_tcp, &c, "192.0.2.2:7000"), uplink, "masqueraded to the uplink's address");
    let (seen, answer_from) = udp_peer(&o_udp, &c, "192.0.2.2:7001");
    assert_eq!(seen, uplink);
    assert_eq!(answer_from, "192.0.2.2:7001".parse().unwrap(), "the answer is un-NATted on its way back");

    // Inbound to a published port: refused before (nothing listens on h), then it
    // reaches the container, from outside and from h itself.
    let c_tcp = listen_tcp(&c, "0.0.0.0:80");
    let c_udp = udp_socket(&c, "0.0.0.0:81");
    let refused = connect_tcp(&o, "192.0.2.1:8080").map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "the control, before the ports: {refused}");
    let ports = Ports {
        table: "hs-ports-c".into(),
        bridge: BRIDGE.into(),
        maps: vec![
            PortMap { proto: Proto::Tcp, host_port: 8080, addr: container, port: 80 },
            PortMap { proto: Proto::Udp, host_port: 8081, addr: container, port: 81 },
        ],
    };
    h.run(|| ports.create()).unwrap();
    assert_eq!(tcp_peer(&c_tcp, &o, "192.0.2.1:8080"), outside, "from outside through the uplink");
    assert_eq!(tcp_peer(&c_tcp, &h, "192.0.2.1:8080"), uplink, "from the host itself (output chain)");
    assert_eq!(tcp_peer(&c_tcp, &h, "10.88.0.1:8080"), addr("10.88.0.1"), "to the host's bridge address");
    let (seen, answer_from) = udp_peer(&c_udp, &o, "192.0.2.1:8081");
    assert_eq!(seen, outside);
    assert_eq!(
        answer_from,
        SocketAddr::V4(SocketAddrV4::new(uplink, 8081)),
        "the answer comes from the published port"
    );

    // down: one delete, and the port is closed again.
    assert!(h.run(|| nft::delete_table("hs-ports-c")).unwrap());
    let refused = connect_tcp(&o, "192.0.2.1:8080").map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "after delete_table: {refused}");
    assert!(h.tables().contains("table ip hs-net\n"), "the network's table stays");
}

/// A port range published as 1000 maps: one batch of ~2000 rules (about 1 MB, past the
/// socket's default buffers) is applied whole.
#[test]
fn a_thousand_published_ports_go_in_one_batch() {
    let ns = Netns::new("m");
    let maps: Vec<PortMap> =
        (10000..11000).map(|p| PortMap { proto: Proto::Tcp, host_port: p, addr: addr("10.66.0.2"), port: p }).collect();
    let ports = Ports { table: "hs-ports-many".into(), bridge: "hsbr0".into(), maps };
    ns.run(|| ports.create()).unwrap();
    let t = ns.table_json("hs-ports-many");
    for chain in ["prerouting", "output"] {
        let r = rules(&t, chain);
        assert_eq!(r.len(), 1000, "{chain}");
        assert_eq!(r[999][2], json!({"dnat": {"addr": "10.66.0.2", "port": 10999}}), "{chain}");
    }
    assert!(ns.run(|| nft::delete_table("hs-ports-many")).unwrap());
}
