//! Bridge networks end to end, as root, without ever touching the real host's network:
//! host-setup runs as `nsenter --net=/run/netns/NH<tag> host-setup ...` in a namespace
//! the test made to stand for the host, whose uplink veth leads to a second test
//! namespace standing for the outside world (192.168.231.1; the stand-in host is .2 and
//! routes by default through it). Bridges, host veth ends, nf_tables tables and
//! forwarding switches all live in the stand-in host; a guard takes every container and
//! network down and deletes both namespaces even when an assertion fails. No traffic goes
//! to an address the test did not make.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use lab_tests::{bin, stdout, text, Lab};

/// One test at a time: 16 containers are enough for 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

const HOST_ADDR: &str = "192.168.231.2";
const OUT_ADDR: &str = "192.168.231.1";
const WAIT: Duration = Duration::from_secs(10);

/// The stand-in host and the outside, and a lab (state dir, cgroup parent, names).
struct World {
    lab: Lab,
    host: String,
    out: String,
    uplink: String,
    names: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
}

fn ok(args: &[&str]) -> String {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    stdout(&o)
}

impl World {
    fn new() -> World {
        let lab = Lab::new();
        let tag = lab.tag().to_string();
        let (host, out, uplink) = (format!("NH{tag}"), format!("NO{tag}"), format!("up{tag}"));
        for ns in [&host, &out] {
            ok(&["ip", "netns", "add", ns]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let w = World { lab, host, out, uplink, names: Default::default(), networks: Default::default() };
        let peer = format!("out{tag}");
        ok(&["ip", "link", "add", &w.uplink, "netns", &w.host, "type", "veth", "peer", "name", &peer, "netns", &w.out]);
        ok(&["ip", "-n", &w.host, "addr", "add", &format!("{HOST_ADDR}/24"), "dev", &w.uplink]);
        ok(&["ip", "-n", &w.host, "link", "set", &w.uplink, "up"]);
        ok(&["ip", "-n", &w.out, "addr", "add", &format!("{OUT_ADDR}/24"), "dev", &peer]);
        ok(&["ip", "-n", &w.out, "link", "set", &peer, "up"]);
        ok(&["ip", "-n", &w.host, "route", "add", "default", "via", OUT_ADDR]);
        w
    }

    /// `host-setup ARGS` as the stand-in host.
    fn hs_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.host))
            .arg(bin("host-setup"))
            .args(args)
            .env("HOST_SETUP_STATE_DIR", &self.lab.state_dir)
            .env("HOST_SETUP_CGROUP_PARENT", &self.lab.cgroup_parent)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn hs(&self, args: &[&str]) -> Output {
        self.hs_cmd(args).output().expect("run host-setup")
    }

    fn hs_ok(&self, args: &[&str]) -> String {
        let o = self.hs(args);
        assert!(o.status.success(), "host-setup {}: {}", args.join(" "), text(&o));
        stdout(&o)
    }

    fn name(&self, suffix: &str) -> String {
        let n = self.lab.name(suffix);
        self.names.lock().unwrap().push(n.clone());
        n
    }

    /// A network name of this world (also its bridge's name).
    fn network(&self, suffix: &str) -> String {
        let n = format!("n{}{suffix}", self.lab.tag());
        self.networks.lock().unwrap().push(n.clone());
        n
    }

    /// Bring containers up `--pause`d, all at once: `args` follow each name.
    fn up_all(&self, names: &[String], args: &[&str]) {
        let kids: Vec<_> = names
            .iter()
            .map(|n| {
                let mut a = vec!["up", n.as_str()];
                a.extend_from_slice(args);
                (n, self.hs_cmd(&a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            })
            .collect();
        for (n, k) in kids {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "up {n}: {}", text(&o));
        }
    }

    /// `network ls`'s members of NETWORK: (container, address).
    fn members(&self, network: &str) -> Vec<(String, Ipv4Addr)> {
        let ls = self.hs_ok(&["network", "ls"]);
        let mut lines = ls.lines().skip_while(|l| !l.starts_with(&format!("{network} ")));
        let m = lines.nth(1).unwrap_or_else(|| panic!("no {network} in network ls:\n{ls}"));
        let m = m.trim().strip_prefix("members: ").unwrap_or_else(|| panic!("{m}"));
        if m == "none" {
            return vec![];
        }
        m.split(", ").map(|e| e.split_once(' ').unwrap()).map(|(c, a)| (c.into(), a.parse().unwrap())).collect()
    }

    /// Runs `f` on a thread that joined /run/netns/NS.
    fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .expect("the thread in the netns panicked")
        })
    }

    /// Every forwarding switch of the stand-in host (its own /proc/sys/net).
    fn forwarding(&self) -> Vec<(String, String)> {
        let mut v = self.conf("forwarding");
        let ip_forward = World::in_ns(&self.host, || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"));
        v.push(("ip_forward".into(), ip_forward.unwrap()));
        v.sort();
        v
    }

    /// net.ipv4.conf.*.KEY of the stand-in host: (interface, value), sorted.
    fn conf(&self, key: &str) -> Vec<(String, String)> {
        World::in_ns(&self.host, || {
            let mut v: Vec<(String, String)> = std::fs::read_dir("/proc/sys/net/ipv4/conf")
                .unwrap()
                .flatten()
                .map(|e| {
                    let f = std::fs::read_to_string(e.path().join(key)).unwrap();
                    (e.file_name().to_string_lossy().into_owned(), f.trim().to_string())
                })
                .collect();
            v.sort();
            v
        })
    }

    /// What host-setup may have left in the stand-in host or the state dir.
    fn leftovers(&self) -> Vec<String> {
        let mut left = vec![];
        for l in ok(&["ip", "-n", &self.host, "-o", "link", "show"]).lines() {
            let name = l.split(':').nth(1).unwrap_or("").trim().split('@').next().unwrap().to_string();
            if name != "lo" && name != self.uplink {
                left.push(format!("link {name}"));
            }
        }
        let rules = ok(&["ip", "netns", "exec", &self.host, "nft", "list", "ruleset"]);
        if !rules.trim().is_empty() {
            left.push(format!("nf_tables: {rules}"));
        }
        for e in std::fs::read_dir(self.lab.state_dir.join("networks")).into_iter().flatten().flatten() {
            left.push(e.path().display().to_string());
        }
        let names = self.names.lock().unwrap().clone();
        left.extend(self.lab.leftovers(&names.iter().map(String::as_str).collect::<Vec<_>>()));
        left
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let names = self.names.lock().unwrap().clone();
        let mut a = vec!["down", "--timeout", "1"];
        a.extend(names.iter().map(String::as_str));
        let _ = self.hs(&a);
        for n in self.networks.lock().unwrap().iter() {
            let _ = self.hs(&["network", "rm", n]);
        }
        for ns in [&self.host, &self.out] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
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

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn sixteen_containers_on_the_default_network_reach_each_other_and_the_gateway() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let names: Vec<String> = (0..16).map(|i| w.name(&format!("c{i}"))).collect();
    // 8 at once (the first of them makes the network), then 8 more at once.
    w.up_all(&names[..8], &["--net", "hs0"]);
    w.up_all(&names[8..], &["--net", "hs0"]);
    let members = w.members("hs0");
    let mut addrs: Vec<Ipv4Addr> = members.iter().map(|m| m.1).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!((members.len(), addrs.len()), (16, 16), "16 distinct addresses: {members:?}");
    let gateway = Ipv4Addr::from(u32::from(addrs[0]) & 0xffff_0000 | 1);
    let all: Vec<String> = addrs.iter().chain([&gateway]).map(ToString::to_string).collect();
    let script = format!("for a in {}; do ping -c 1 -W 2 $a >/dev/null || echo unreachable $a; done", all.join(" "));
    for n in &names {
        let o = w.hs(&["exec", n, "--", "sh", "-c", &script]);
        assert!(o.status.success() && stdout(&o).is_empty(), "{n}: {}", text(&o));
    }
    let st = w.hs_ok(&["status", &names[3]]);
    assert!(st.contains("network   hs0 (bridge hs0"), "{st}");

    let mut a = vec!["down", "--timeout", "1"];
    a.extend(names.iter().map(String::as_str));
    w.hs_ok(&a);
    assert_eq!(w.leftovers(), Vec::<String>::new(), "the default network goes with its last container");
    assert_eq!(w.forwarding(), before);
}

#[test]
fn the_outside_sees_the_uplink_address_and_published_ports_answer_from_outside_and_from_the_host() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let c = w.name("p");
    w.hs_ok(&["up", &c, "--net", "hs0", "-p", "8080:80", "-p", "5353:53/udp"]);
    let (_, addr) = w.members("hs0")[0].clone();
    // The outside could answer the container's own address: without the masquerade the
    // check fails on the address it sees, not on a timeout.
    ok(&["ip", "-n", &w.out, "route", "add", &format!("{addr}/32"), "via", HOST_ADDR]);

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
    let st = w.hs_ok(&["status", &c]);
    assert!(st.contains(&format!("{addr}/16 on eth0, ports 8080->80/tcp 5353->53/udp")), "{st}");
    let ex = w.hs_ok(&["up", &w.name("x"), "--net", "hs0", "-p", "1:2", "--explain"]);
    assert!(ex.contains("add rule ip host-setup-hs") && ex.contains("dnat to"), "{ex}");
    // verify's ping check: to the network's gateway.
    let v = w.hs_ok(&["verify", &c, "--check", "ping"]);
    assert!(v.lines().any(|l| l.contains("ping") && l.contains("PASS") && l.contains("gateway of hs0")), "{v}");

    w.hs_ok(&["down", &c]);
    World::in_ns(&w.out, || {
        let to: SocketAddr = to_tcp.parse().unwrap();
        assert!(TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_err(), "the port is gone with down");
    });
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!(w.forwarding(), before);
}

#[test]
fn networks_none_and_the_pair() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let (na, nb) = (w.network("a"), w.network("b"));
    w.hs_ok(&["network", "create", &na, "--subnet", "10.91.0.0/24"]);
    w.hs_ok(&["network", "create", &nb, "--subnet", "10.92.0.0/24", "--uplink", &w.uplink]);
    let overlap = w.hs(&["network", "create", &w.network("c"), "--subnet", "10.91.0.128/25"]);
    assert_eq!(overlap.status.code(), Some(3), "{}", text(&overlap));
    let (a, b, n) = (w.name("a"), w.name("b"), w.name("n"));
    w.hs_ok(&["up", &a, "--net", &na, "--address", "10.91.0.50"]);
    w.hs_ok(&["up", &b, "--net", &nb]);
    w.hs_ok(&["up", &n, "--net", "none"]);
    assert_eq!(w.members(&na), vec![(a.clone(), "10.91.0.50".parse().unwrap())]);
    assert_eq!(w.members(&nb), vec![(b.clone(), "10.92.0.2".parse().unwrap())]);
    let taken = w.hs(&["up", &w.name("t"), "--net", &na, "--address", "10.91.0.50"]);
    assert_eq!(taken.status.code(), Some(3), "{}", text(&taken));
    assert!(String::from_utf8_lossy(&taken.stderr).contains(&format!("leased to {a}")), "{}", text(&taken));
    let busy = w.hs(&["network", "rm", &na]);
    assert!(!busy.status.success() && String::from_utf8_lossy(&busy.stderr).contains("has members"));
    let ls = w.hs_ok(&["network", "ls"]);
    assert!(ls.contains(&format!("{na:<16} bridge {na} 10.91.0.0/24 gateway 10.91.0.1")), "{ls}");
    let ping = |from: &str, to: &str| w.hs(&["exec", from, "--", "ping", "-c", "1", "-W", "1", to]);
    assert!(ping(&a, "10.91.0.1").status.success(), "a reaches its gateway");
    assert!(ping(&b, "10.92.0.1").status.success(), "b reaches its gateway");
    // From any other netns (here: the test's own) a network is only looked at, never touched.
    let elsewhere = w.lab.run(&["network", "rm", &nb]);
    assert_eq!(elsewhere.status.code(), Some(3), "{}", text(&elsewhere));
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("was made in network namespace net:["));
    assert!(stdout(&w.lab.ok(&["network", "ls"])).contains("not this netns)"));

    let links = ok(&["ip", "-n", &n.to_uppercase(), "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "--net none: only lo\n{links}");
    // red and blue keep the tutorial's pair (explained only: their names are global).
    let red = w.hs_ok(&["red", "--explain"]);
    assert!(red.contains("ip netns add RED") && red.contains("the veth pair is made when it comes up"), "{red}");
    assert!(!red.contains("# lease") && !red.contains(" master "), "red joins no network: {red}");

    w.hs_ok(&["down", &a, &b, &n]);
    w.hs_ok(&["network", "rm", &na, &nb]);
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!(w.forwarding(), before);
}

/// Isolation is the network's forward chain's (net::nft::NetworkNat): new connections
/// into a bridge from anywhere but the bridge itself (and not to a published port) must
/// be dropped, as Docker's DOCKER-ISOLATION chains do.
#[test]
fn two_networks_are_isolated_from_each_other() {
    let _serial = lock();
    let w = World::new();
    let (na, nb) = (w.network("a"), w.network("b"));
    w.hs_ok(&["network", "create", &na, "--subnet", "10.93.0.0/24"]);
    w.hs_ok(&["network", "create", &nb, "--subnet", "10.94.0.0/24"]);
    let (a, b) = (w.name("a"), w.name("b"));
    w.hs_ok(&["up", &a, "--net", &na]);
    w.hs_ok(&["up", &b, "--net", &nb]);
    let ping = |from: &str, to: &str| w.hs(&["exec", from, "--", "ping", "-c", "1", "-W", "1", to]);
    assert!(ping(&a, "10.93.0.1").status.success(), "a reaches its gateway");
    assert!(!ping(&a, "10.94.0.2").status.success(), "a must not reach b's network");
    assert!(!ping(&b, "10.93.0.2").status.success(), "b must not reach a's network");
    w.hs_ok(&["down", &a, &b]);
    w.hs_ok(&["network", "rm", &na, &nb]);
    assert_eq!(w.leftovers(), Vec::<String>::new());
}

#[test]
fn sigkill_while_joining_a_network_is_recovered() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let c = w.name("k");
    for fault in ["lease:recorded:kill", "lease:after:kill", "network:recorded:kill", "network:after:kill"] {
        let o = w.hs_cmd(&["up", &c, "--net", "hs0", "-p", "9000:90"]).env("HOST_SETUP_FAULT", fault).output().unwrap();
        assert_eq!(o.status.code(), None, "{fault}: killed: {}", text(&o));
        w.hs_ok(&["down", &c]);
        assert_eq!(w.leftovers(), Vec::<String>::new(), "after {fault} and down");
        assert_eq!(w.forwarding(), before, "after {fault} and down");
    }
    // Killed again, then `up` itself recovers first.
    let o = w.hs_cmd(&["up", &c, "--net", "hs0"]).env("HOST_SETUP_FAULT", "network:recorded:kill").output().unwrap();
    assert_eq!(o.status.code(), None, "{}", text(&o));
    w.hs_ok(&["up", &c, "--net", "hs0"]);
    assert_eq!(w.members("hs0").len(), 1);
    w.hs_ok(&["down", &c]);
    assert_eq!(w.leftovers(), Vec::<String>::new());
}

/// The web example of docs/networking.md (its own file, to keep this one short).
#[path = "network/web.rs"]
mod web;

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
    let up = w.hs_ok(&["up", &c, "--net", "hs0", "-p", "8080:80", "--explain"]);
    // Both kinds of sysctl line, each from its one Sysctl value (net/sysctl.rs).
    assert!(up.contains(&format!("ip netns exec {ns} sysctl -w net.ipv4.ip_unprivileged_port_start=0")), "{up}");
    assert!(up.contains("\nsysctl -w net.ipv4.conf.hs0."), "{up}");
    let create = w.hs_ok(&["network", "create", &net, "--explain"]);
    assert!(create.contains(&format!("ip link add {net} type bridge")), "{create}");
    w.hs_ok(&["red", "--explain"]);

    assert!(!state.exists(), "--explain made {}", state.display());
    assert!(!std::path::Path::new(&format!("/run/netns/{ns}")).exists(), "--explain made netns {ns}");
    let cg = w.lab.cgroup_dirs(&c);
    for d in cg.iter().chain(&host_setup::cgroup::parents(&cg)) {
        assert!(!d.exists(), "--explain made cgroup {}", d.display());
    }
    assert_eq!(w.leftovers(), Vec::<String>::new());
    assert_eq!((w.forwarding(), w.conf("route_localnet")), sysctls);
}
