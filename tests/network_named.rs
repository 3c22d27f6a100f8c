//! Bridge networks made with `network create` (fixed addresses, overlaps, `--uplink`),
//! `--net none`, red's pair, and two networks isolated from each other; in the
//! stand-in host of network_common.rs (lab_tests::standin), never in the real host's
//! network.

use lab_tests::standin::must;
use lab_tests::{stdout, text};

mod network_common;
use network_common::{lock, World};

#[test]
fn networks_none_and_the_pair() {
    let _serial = lock();
    let w = World::new();
    let before = w.forwarding();
    let (na, nb) = (w.network("a"), w.network("b"));
    w.ok(&["network", "create", &na, "--subnet", "10.91.0.0/24"]);
    w.ok(&["network", "create", &nb, "--subnet", "10.92.0.0/24", "--uplink", &w.uplink]);
    let overlap = w.run(&["network", "create", &w.network("c"), "--subnet", "10.91.0.128/25"]);
    assert_eq!(overlap.status.code(), Some(3), "{}", text(&overlap));
    let (a, b, n) = (w.name("a"), w.name("b"), w.name("n"));
    w.ok(&["up", &a, "--net", &na, "--address", "10.91.0.50"]);
    w.ok(&["up", &b, "--net", &nb]);
    w.ok(&["up", &n, "--net", "none"]);
    assert_eq!(w.members(&na), vec![(a.clone(), "10.91.0.50".parse().unwrap())]);
    assert_eq!(w.members(&nb), vec![(b.clone(), "10.92.0.2".parse().unwrap())]);
    let taken = w.run(&["up", &w.name("t"), "--net", &na, "--address", "10.91.0.50"]);
    assert_eq!(taken.status.code(), Some(3), "{}", text(&taken));
    assert!(String::from_utf8_lossy(&taken.stderr).contains(&format!("leased to {a}")), "{}", text(&taken));
    let busy = w.run(&["network", "rm", &na]);
    assert!(!busy.status.success() && String::from_utf8_lossy(&busy.stderr).contains("has members"));
    let ls = w.ok_stdout(&["network", "ls"]);
    assert!(ls.contains(&format!("{na:<16} bridge {na} 10.91.0.0/24 gateway 10.91.0.1")), "{ls}");
    let ping = |from: &str, to: &str| w.run(&["exec", from, "--", "ping", "-c", "1", "-W", "1", to]);
    assert!(ping(&a, "10.91.0.1").status.success(), "a reaches its gateway");
    assert!(ping(&b, "10.92.0.1").status.success(), "b reaches its gateway");
    // From any other netns (here: the test's own) a network is only looked at, never touched.
    let elsewhere = w.lab.run(&["network", "rm", &nb]);
    assert_eq!(elsewhere.status.code(), Some(3), "{}", text(&elsewhere));
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("was made in network namespace net:["));
    assert!(stdout(&w.lab.ok(&["network", "ls"])).contains("not this netns)"));

    let links = must(&["ip", "-n", &n.to_uppercase(), "-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "--net none: only lo\n{links}");
    // red and blue keep the tutorial's pair (explained only: their names are global).
    let red = w.ok_stdout(&["red", "--explain"]);
    assert!(red.contains("ip netns add RED") && red.contains("the veth pair is made when it comes up"), "{red}");
    assert!(!red.contains("# lease") && !red.contains(" master "), "red joins no network: {red}");

    w.ok(&["down", &a, &b, &n]);
    w.ok(&["network", "rm", &na, &nb]);
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
    w.ok(&["network", "create", &na, "--subnet", "10.93.0.0/24"]);
    w.ok(&["network", "create", &nb, "--subnet", "10.94.0.0/24"]);
    let (a, b) = (w.name("a"), w.name("b"));
    w.ok(&["up", &a, "--net", &na]);
    w.ok(&["up", &b, "--net", &nb]);
    let ping = |from: &str, to: &str| w.run(&["exec", from, "--", "ping", "-c", "1", "-W", "1", to]);
    assert!(ping(&a, "10.93.0.1").status.success(), "a reaches its gateway");
    assert!(!ping(&a, "10.94.0.2").status.success(), "a must not reach b's network");
    assert!(!ping(&b, "10.93.0.2").status.success(), "b must not reach a's network");
    w.ok(&["down", &a, &b]);
    w.ok(&["network", "rm", &na, &nb]);
    assert_eq!(w.leftovers(), Vec::<String>::new());
}
