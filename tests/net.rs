//! host_setup::net against the real kernel, as root: named namespaces, the veth pair,
//! ping across it, and teardown. Every name is unique to this test process (pid), every
//! address lies in 11.11.0.0/16 inside namespaces the tests made, and a guard removes
//! whatever a failed assertion left behind.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};

use host_setup::net::{self, VethEnd};

/// `NT<pid><tag>`: a netns name of this test process (at most 12 characters).
fn ns_name(tag: &str) -> String {
    format!("NT{}{tag}", std::process::id())
}

/// `nt<pid><tag>`: an interface name of this test process (at most 12 characters).
fn if_name(tag: &str) -> String {
    format!("nt{}{tag}", std::process::id())
}

/// 11.11.X.host, X picked from the pid (the addresses exist only inside our namespaces).
fn addr(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(11, 11, 20 + (std::process::id() % 200) as u8, host)
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names `ip netns list` shows (its lines are `NAME` or `NAME (id: N)`).
fn ip_netns_list() -> Vec<String> {
    ok(&["ip", "netns", "list"]).lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

/// `ip -o link show type veth` in the host's namespace.
fn host_veths() -> String {
    ok(&["ip", "-o", "link", "show", "type", "veth"])
}

fn ping(from_netns: &str, to: Ipv4Addr) -> Output {
    run(&["ip", "netns", "exec", from_netns, "ping", "-c", "1", "-W", "2", &to.to_string()])
}

/// Removes this test's links and namespaces on the way out, also when an assertion
/// failed. It uses iproute2, not the code under test.
struct Cleanup {
    netns: Vec<String>,
    links: Vec<(String, String)>,
}

impl Cleanup {
    fn new(netns: &[&str]) -> Cleanup {
        Cleanup { netns: netns.iter().map(|s| s.to_string()).collect(), links: Vec::new() }
    }
    fn link(&mut self, netns: &str, ifname: &str) {
        self.links.push((netns.to_string(), ifname.to_string()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (ns, ifname) in &self.links {
            if net::netns_path(ns).exists() {
                let _ = run(&["ip", "netns", "exec", ns, "ip", "link", "delete", ifname]);
            }
        }
        for ns in &self.netns {
            let path = net::netns_path(ns);
            if std::fs::symlink_metadata(&path).is_ok() {
                let out = run(&["ip", "netns", "delete", ns]);
                if !out.status.success() {
                    // e.g. a plain file that never got its mount
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}

fn assert_gone(netns: &[&str], ifnames: &[&str]) {
    let listed = ip_netns_list();
    let veths = host_veths();
    for ns in netns {
        assert!(!listed.iter().any(|l| l == ns), "{ns} still in `ip netns list`: {listed:?}");
        assert!(!Path::new(&net::netns_path(ns)).exists(), "{} is left", net::netns_path(ns).display());
    }
    for ifname in ifnames {
        assert!(!veths.contains(ifname), "{ifname} is left in the host's namespace: {veths}");
    }
}

#[test]
fn red_and_blue_ping_over_the_veth_pair_and_go_away_again() {
    lab_tests::require_root();
    let (red, blue) = (ns_name("A"), ns_name("B"));
    let (veth_r, veth_b) = (if_name("a"), if_name("b"));
    let mut guard = Cleanup::new(&[&red, &blue]);
    guard.link(&red, &veth_r);
    assert!(!net::netns_exists(&red) && !net::netns_exists(&blue), "names of an earlier run are left over");

    // ip netns add RED; ip netns add BLUE
    net::create_netns(&red).unwrap();
    net::create_netns(&blue).unwrap();
    assert!(net::netns_exists(&red) && net::netns_exists(&blue));
    let listed = ip_netns_list();
    assert!(listed.contains(&red) && listed.contains(&blue), "`ip netns list` shows {listed:?}");

    // ip netns exec RED ip link set lo up
    for ns in [&red, &blue] {
        net::set_loopback_up(ns).unwrap();
        let lo = net::link_status(ns, "lo").unwrap().expect("lo exists");
        assert!(lo.up, "lo is down in {ns}: {lo:?}");
        assert!(lo.addrs.contains(&(Ipv4Addr::LOCALHOST, 8)), "{lo:?}");
        assert!(!lo.has_peer && lo.kind.is_none(), "{lo:?}");
        let shown = ok(&["ip", "netns", "exec", ns, "ip", "-o", "link", "show", "lo"]);
        assert!(shown.contains(",UP") || shown.contains("<UP"), "{shown}");
    }

    // ip link add veth0 netns RED type veth peer name veth1 netns BLUE; addresses; up
    let a = VethEnd::new(red.as_str(), veth_r.as_str(), addr(2), 24);
    let b = VethEnd::new(blue.as_str(), veth_b.as_str(), addr(3), 24);
    net::create_veth_pair(&a, &b).unwrap();

    for (end, peer) in [(&a, &b), (&b, &a)] {
        let st = net::link_status(&end.netns, &end.ifname).unwrap().unwrap_or_else(|| panic!("{end} is missing"));
        assert!(st.up && st.lower_up, "{end}: {st:?}");
        assert_eq!(st.addrs, vec![(end.addr, 24)], "{end}");
        assert_eq!(st.kind.as_deref(), Some("veth"));
        assert!(st.has_peer, "{end}: {st:?}");
        let peer_index = net::link_status(&peer.netns, &peer.ifname).unwrap().unwrap().index;
        assert_eq!(st.peer_ifindex, Some(peer_index), "{end}'s IFLA_LINK is its peer's index");
        assert!(st.peer_netnsid.is_some(), "the peer lives in another netns: {st:?}");

        let shown = ok(&["ip", "netns", "exec", &end.netns, "ip", "-o", "-4", "addr", "show", "dev", &end.ifname]);
        let want = format!("inet {}/24 brd {} ", end.addr, Ipv4Addr::from(u32::from(end.addr) | 0xff));
        assert!(shown.contains(&want), "want {want:?} in: {shown}");
    }
    // Neither end ever shows up in the host's namespace.
    let veths = host_veths();
    assert!(!veths.contains(&veth_r) && !veths.contains(&veth_b), "{veths}");

    for (from, to) in [(&red, b.addr), (&blue, a.addr)] {
        let out = ping(from, to);
        assert!(
            out.status.success(),
            "ping {to} from {from} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // ip netns exec RED ip link delete veth0: the peer in BLUE goes with it.
    assert!(net::delete_link(&red, &veth_r).unwrap());
    assert_eq!(net::link_status(&red, &veth_r).unwrap(), None);
    assert_eq!(net::link_status(&blue, &veth_b).unwrap(), None, "deleting one end deletes the other");
    assert!(!run(&["ip", "netns", "exec", &blue, "ip", "link", "show", &veth_b]).status.success());
    assert!(!net::delete_link(&red, &veth_r).unwrap(), "a second delete finds nothing");
    assert!(!net::delete_link(&blue, &veth_b).unwrap());

    // ip netns delete RED; ip netns delete BLUE
    assert!(net::delete_netns(&red).unwrap());
    assert!(net::delete_netns(&blue).unwrap());
    assert!(!net::delete_netns(&red).unwrap(), "deleting twice is fine");
    assert!(!net::netns_exists(&red) && !net::netns_exists(&blue));
    assert_eq!(net::link_status(&red, &veth_r).unwrap(), None, "no namespace, no link");
    assert!(!net::delete_link(&red, &veth_r).unwrap());
    assert_gone(&[&red, &blue], &[&veth_r, &veth_b]);
    drop(guard);
}

#[test]
fn adding_an_existing_netns_fails_and_leaves_it_intact() {
    lab_tests::require_root();
    let ns = ns_name("C");
    let guard = Cleanup::new(&[&ns]);

    net::create_netns(&ns).unwrap();
    net::set_loopback_up(&ns).unwrap();

    let err = net::create_netns(&ns).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(err.to_string(), format!("netns {ns} already exists (/run/netns/{ns})"));

    // Still the same namespace: a new one would have its loopback down.
    assert!(net::link_status(&ns, "lo").unwrap().unwrap().up);
    let shown = ok(&["ip", "netns", "exec", &ns, "ip", "-o", "link", "show", "lo"]);
    assert!(shown.contains(",UP"), "{shown}");
    // ... and mounted once, not twice.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount_point = format!(" /run/netns/{ns} ");
    assert_eq!(mountinfo.lines().filter(|l| l.contains(&mount_point)).count(), 1, "{mountinfo}");

    assert!(net::delete_netns(&ns).unwrap());
    assert_gone(&[&ns], &[]);
    drop(guard);
}

#[test]
fn veth_errors_name_the_step_and_leave_nothing_behind() {
    lab_tests::require_root();
    let (d, e, missing) = (ns_name("D"), ns_name("E"), ns_name("M"));
    let (vd, ve, vd2) = (if_name("d"), if_name("e"), if_name("f"));
    let mut guard = Cleanup::new(&[&d, &e, &missing]);
    guard.link(&d, &vd);
    guard.link(&d, &vd2);
    net::create_netns(&d).unwrap();
    net::create_netns(&e).unwrap();

    let a = VethEnd::new(d.as_str(), vd.as_str(), addr(2), 24);
    let b = VethEnd::new(e.as_str(), ve.as_str(), addr(3), 24);
    net::create_veth_pair(&a, &b).unwrap();

    // The same pair again: EEXIST, and the first pair still carries traffic.
    let err = net::create_veth_pair(&a, &b).unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::EEXIST), "{err}");
    let want = format!("create veth pair {vd} (netns {d}) <-> {ve} (netns {e}): EEXIST: file exists");
    assert!(err.to_string().starts_with(&want), "{err}");
    assert!(ping(&d, b.addr).status.success(), "the first pair broke");

    // Only the peer's name is taken: the one request fails whole, no half pair is left.
    let a2 = VethEnd::new(d.as_str(), vd2.as_str(), addr(4), 24);
    let err = net::create_veth_pair(&a2, &b).unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::EEXIST), "{err}");
    assert_eq!(net::link_status(&d, &vd2).unwrap(), None, "half a pair was left");

    // A namespace that does not exist: a precondition, nothing created.
    let to_missing = VethEnd::new(missing.as_str(), ve.as_str(), addr(5), 24);
    let err = net::create_veth_pair(&a2, &to_missing).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(err.to_string(), format!("netns {missing} does not exist (/run/netns/{missing})"));
    assert_eq!(net::link_status(&d, &vd2).unwrap(), None);
    let err = net::set_loopback_up(&missing).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(net::link_status(&missing, "lo").unwrap(), None);
    assert!(!net::delete_link(&missing, &vd).unwrap());
    assert!(!net::delete_netns(&missing).unwrap());

    // Bad values are refused before anything is touched.
    let err = net::create_veth_pair(&VethEnd::new(d.as_str(), "this-name-is-too-long", addr(6), 24), &b).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");

    assert!(net::delete_link(&e, &ve).unwrap(), "deleting from the other end works too");
    assert_eq!(net::link_status(&d, &vd).unwrap(), None);
    assert!(net::delete_netns(&d).unwrap());
    assert!(net::delete_netns(&e).unwrap());
    assert_gone(&[&d, &e, &missing], &[&vd, &ve, &vd2]);
    drop(guard);
}

#[test]
fn a_file_without_a_namespace_is_reported_and_removable() {
    lab_tests::require_root();
    let ns = ns_name("F");
    let guard = Cleanup::new(&[&ns]);
    // What an interrupted `ip netns add` leaves: the file, but no namespace mounted on it.
    std::fs::create_dir_all(net::NETNS_DIR).unwrap();
    std::fs::File::create(net::netns_path(&ns)).unwrap();
    assert!(net::netns_exists(&ns));

    let err = net::set_loopback_up(&ns).unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::EINVAL), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "enter netns {ns} (/run/netns/{ns}): EINVAL: invalid argument; the file is not a mounted network namespace"
        )
    );
    let err = net::create_netns(&ns).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    // Teardown goes through: no namespace, so no link to delete.
    assert!(!net::delete_link(&ns, "lo").unwrap());

    assert!(net::delete_netns(&ns).unwrap());
    assert!(!net::delete_netns(&ns).unwrap());
    assert_gone(&[&ns], &[]);
    drop(guard);
}
