//! The world of the bridge-network suites (network.rs, network_named.rs,
//! network_web.rs): a stand-in host (lab_tests::standin: host-setup runs as
//! `nsenter --net=/run/netns/NH<tag> host-setup ...`, its uplink leading to a second
//! test netns standing for the outside), the networks a test made, and what to look
//! at in the stand-in host. Drop takes every container and network down and deletes
//! both namespaces even when an assertion fails. No traffic goes to an address the
//! test did not make.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use lab_tests::standin::{must, Standin};

/// One test at a time: 16 containers are enough for 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

#[allow(dead_code)] // (not every suite waits)
pub const WAIT: Duration = Duration::from_secs(10);

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stand-in host and the outside, a lab (state dir, cgroup parent, names) and the
/// networks made.
pub struct World {
    s: Standin,
    networks: Mutex<Vec<String>>,
}

impl std::ops::Deref for World {
    type Target = Standin;
    fn deref(&self) -> &Standin {
        &self.s
    }
}

impl World {
    pub fn new() -> World {
        World { s: Standin::new(), networks: Default::default() }
    }

    /// A network name of this world (also its bridge's name).
    #[allow(dead_code)] // (not every suite makes networks)
    pub fn network(&self, suffix: &str) -> String {
        let n = format!("n{}{suffix}", self.lab.tag());
        self.networks.lock().unwrap().push(n.clone());
        n
    }

    /// `network ls`'s members of NETWORK: (container, address).
    pub fn members(&self, network: &str) -> Vec<(String, Ipv4Addr)> {
        let ls = self.ok_stdout(&["network", "ls"]);
        let mut lines = ls.lines().skip_while(|l| !l.starts_with(&format!("{network} ")));
        let m = lines.nth(1).unwrap_or_else(|| panic!("no {network} in network ls:\n{ls}"));
        let m = m.trim().strip_prefix("members: ").unwrap_or_else(|| panic!("{m}"));
        if m == "none" {
            return vec![];
        }
        m.split(", ").map(|e| e.split_once(' ').unwrap()).map(|(c, a)| (c.into(), a.parse().unwrap())).collect()
    }

    /// Runs `f` on a thread that joined /run/netns/NS.
    pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
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
    pub fn forwarding(&self) -> Vec<(String, String)> {
        let mut v = self.conf("forwarding");
        let ip_forward = World::in_ns(&self.host, || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"));
        v.push(("ip_forward".into(), ip_forward.unwrap()));
        v.sort();
        v
    }

    /// net.ipv4.conf.*.KEY of the stand-in host: (interface, value), sorted.
    pub fn conf(&self, key: &str) -> Vec<(String, String)> {
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
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = vec![];
        for l in must(&["ip", "-n", &self.host, "-o", "link", "show"]).lines() {
            let name = l.split(':').nth(1).unwrap_or("").trim().split('@').next().unwrap().to_string();
            if name != "lo" && name != self.uplink {
                left.push(format!("link {name}"));
            }
        }
        let rules = must(&["ip", "netns", "exec", &self.host, "nft", "list", "ruleset"]);
        if !rules.trim().is_empty() {
            left.push(format!("nf_tables: {rules}"));
        }
        for e in std::fs::read_dir(self.lab.state_dir.join("networks")).into_iter().flatten().flatten() {
            left.push(e.path().display().to_string());
        }
        let names = self.names();
        left.extend(self.lab.leftovers(&names.iter().map(String::as_str).collect::<Vec<_>>()));
        left
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Containers first (a network with members is not removed), then the networks;
        // the stand-in's own Drop deletes both namespaces.
        self.s.down_all();
        for n in self.networks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = self.s.run(&["network", "rm", n]);
        }
    }
}
