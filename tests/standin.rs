//! A stand-in host: host-setup run "as the host" without ever touching the real host's
//! network. `NH<tag>` is a test netns standing for the host, with an uplink veth
//! (`up<tag>`, 192.168.231.2/24, the default route) to `NO<tag>`, a second test netns
//! standing for the outside world (192.168.231.1). host-setup runs as
//! `nsenter --net=/run/netns/NH<tag> host-setup ...` with the lab's state dir and cgroup
//! parent, so bridges, host veth ends, nf_tables tables and forwarding switches all
//! live in the stand-in host. Drop takes every container it named down, then deletes
//! both namespaces, even when an assertion failed (tests/network*.rs, tests/faults.rs).

use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::{bin, stdout, text, Lab};

/// The stand-in host's uplink address, and the outside's (its default gateway).
pub const HOST_ADDR: &str = "192.168.231.2";
pub const OUT_ADDR: &str = "192.168.231.1";

pub struct Standin {
    pub lab: Lab,
    /// The netns standing for the host (`NH<tag>`), and for the outside (`NO<tag>`).
    pub host: String,
    pub out: String,
    /// The host's uplink (in `host`; its peer `out<tag>` is in `out`).
    pub uplink: String,
    names: Mutex<Vec<String>>,
}

/// `PROGRAM ARGS`, which must succeed: its stdout.
pub fn must(args: &[&str]) -> String {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    stdout(&o)
}

impl Standin {
    pub fn new() -> Standin {
        let lab = Lab::new();
        let tag = lab.tag().to_string();
        let (host, out, uplink) = (format!("NH{tag}"), format!("NO{tag}"), format!("up{tag}"));
        // Made before the first `ip netns add`, so Drop deletes whatever of it exists.
        let s = Standin { lab, host, out, uplink, names: Default::default() };
        for ns in [&s.host, &s.out] {
            must(&["ip", "netns", "add", ns]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let peer = format!("out{tag}");
        must(&[
            "ip", "link", "add", &s.uplink, "netns", &s.host, "type", "veth", "peer", "name", &peer, "netns", &s.out,
        ]);
        must(&["ip", "-n", &s.host, "addr", "add", &format!("{HOST_ADDR}/24"), "dev", &s.uplink]);
        must(&["ip", "-n", &s.host, "link", "set", &s.uplink, "up"]);
        must(&["ip", "-n", &s.out, "addr", "add", &format!("{OUT_ADDR}/24"), "dev", &peer]);
        must(&["ip", "-n", &s.out, "link", "set", &peer, "up"]);
        must(&["ip", "-n", &s.host, "route", "add", "default", "via", OUT_ADDR]);
        s
    }

    /// `host-setup ARGS` as the stand-in host, in the lab (no RUST_LOG, no
    /// HOST_SETUP_FAULT from the test's environment; set them on the Command).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.host))
            .arg(bin("host-setup"))
            .args(args)
            .env("HOST_SETUP_STATE_DIR", &self.lab.state_dir)
            .env("HOST_SETUP_CGROUP_PARENT", &self.lab.cgroup_parent)
            .env_remove("RUST_LOG")
            .env_remove("HOST_SETUP_FAULT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run host-setup")
    }

    /// Run and require exit 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "host-setup {}: {}", args.join(" "), text(&o));
        o
    }

    /// Run, require exit 0: its stdout.
    pub fn ok_stdout(&self, args: &[&str]) -> String {
        stdout(&self.ok(args))
    }

    /// A container name of this lab (`t<tag><suffix>`), taken down on drop.
    pub fn name(&self, suffix: &str) -> String {
        let n = self.lab.name(suffix);
        self.track(n.clone());
        n
    }

    /// Take container `name` down on drop.
    pub fn track(&self, name: String) {
        self.names.lock().unwrap().push(name);
    }

    /// Every container named so far: taken down at once (`down --timeout 1`), errors
    /// ignored; the next call downs only names made after this one.
    pub fn down_all(&self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        let mut a = vec!["down", "--timeout", "1"];
        a.extend(names.iter().map(String::as_str));
        let _ = self.run(&a);
    }

    /// The names of the containers to take down (for leftovers checks).
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Default for Standin {
    fn default() -> Self {
        Standin::new()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.down_all();
        for ns in [&self.host, &self.out] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}
