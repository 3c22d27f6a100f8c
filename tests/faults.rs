//! Faults at every point of every step, generated from the binary: a clean `up` with
//! `RUST_LOG=debug` lists the fault points it passes (`fault point STEP:WHEN`,
//! host-setup/src/fault.rs), and each point is tested with every kind of fault:
//!
//! - `fail` (the step returns an error): exit 1 and the injected error;
//! - `interrupt` (host-setup raises SIGINT there): exit 130;
//! - `SIGINT`, `SIGTERM`, `SIGHUP` sent by this test to the pid of the `up` it
//!   spawned, while `up` waits at that point (`pause`): exit 130, 143, 129;
//! - `kill` (SIGKILL there): then `down`, or `up` again, recovers (alternately).
//!
//! After each case the host is exactly as before (the footprint: netns, cgroups,
//! mounts, state files, processes, and the stand-in host's links, addresses,
//! routes, nf_tables ruleset and forwarding switches), and a clean `up` works.
//! Three containers reach every step: a pair (the userns default, a veth to a
//! peer), a member of the default bridge network hs0 with a published port, and one
//! with `--disk`; a step that none of them reaches fails the test, so a new step
//! is covered without editing this file (or names the option it needs).
//! Everything runs "as the host" in a stand-in host netns (tests/network.rs).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use lab_tests::footprint::footprint;
use lab_tests::{bin, text, Lab};

/// A lab whose host-setup runs in a stand-in host netns NH<tag>.
struct World {
    lab: Lab,
    host: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl World {
    fn new() -> World {
        let lab = Lab::new();
        let host = format!("NH{}", lab.tag());
        must(&["ip", "netns", "add", &host]);
        must(&["ip", "-n", &host, "link", "set", "lo", "up"]);
        // (IPv4 only in the footprint: an IPv6 link-local address is "tentative" for a
        // while after the link comes up.) An uplink with a default route, as a host has (its peer sits in a netns of
        // its own that nothing else uses).
        let (up, peer, out) = (format!("up{}", lab.tag()), format!("out{}", lab.tag()), format!("NO{}", lab.tag()));
        must(&["ip", "netns", "add", &out]);
        must(&["ip", "link", "add", &up, "netns", &host, "type", "veth", "peer", "name", &peer, "netns", &out]);
        must(&["ip", "-n", &host, "addr", "add", "192.168.232.2/24", "dev", &up]);
        must(&["ip", "-n", &host, "link", "set", &up, "up"]);
        must(&["ip", "-n", &out, "link", "set", &peer, "up"]);
        must(&["ip", "-n", &host, "route", "add", "default", "via", "192.168.232.1"]);
        World { lab, host, names: Default::default() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
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

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run host-setup")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "host-setup {}: {}", args.join(" "), text(&o));
        o
    }

    /// The lab's footprint and the stand-in host's network state.
    fn footprint(&self) -> BTreeSet<String> {
        let mut out = footprint(&self.lab);
        // The rest of the state dir (networks and their leases), but the layer cache.
        let state = std::fs::read_dir(&self.lab.state_dir).unwrap().flatten().map(|e| e.path());
        for p in state.filter(|p| !p.ends_with("layers") && !p.ends_with("containers")) {
            out.insert(format!("file {}", p.display()));
            out.extend(lab_tests::footprint::walk(&p).into_iter().map(|f| format!("file {f}")));
        }
        let ns = format!("--net=/run/netns/{}", self.host);
        for what in
            [&["ip", "-o", "link"][..], &["ip", "-o", "-4", "addr"], &["ip", "route"], &["nft", "list", "ruleset"]]
        {
            let o = Command::new("nsenter").arg(&ns).args(what).output().unwrap();
            assert!(o.status.success(), "{what:?}: {}", text(&o));
            for l in String::from_utf8_lossy(&o.stdout).lines() {
                out.insert(format!("{} {l}", what.join(" ")));
            }
        }
        let sysctls = "grep -r . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding \
                       /proc/sys/net/ipv4/conf/*/route_localnet";
        let o = Command::new("nsenter").arg(&ns).args(["sh", "-c", sysctls]).output().unwrap();
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            out.insert(format!("sysctl {l}"));
        }
        out
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let names = self.names.lock().unwrap().clone();
        let mut a = vec!["down", "--timeout", "1"];
        a.extend(names.iter().map(String::as_str));
        let _ = self.run(&a);
        for ns in [self.host.clone(), format!("NO{}", self.lab.tag())] {
            let _ = Command::new("ip").args(["netns", "delete", &ns]).output();
        }
    }
}

fn must(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(o.status.success(), "{args:?}: {}", text(&o));
}

/// One container the matrix brings up, with what it needs first and a check that it works.
struct Config {
    what: &'static str,
    /// `up NAME ARGS`, with `{peer}` replaced.
    args: &'static [&'static str],
    /// A peer to bring up first (`--peer NAME` both ways), if any.
    peer: bool,
    /// What the container runs to show it works (`exec NAME -- CHECK`), or `verify`'s check.
    check: Check,
}

enum Check {
    Exec(&'static [&'static str]),
    Verify(&'static str),
}

const CONFIGS: &[Config] = &[
    Config {
        what: "pair",
        args: &["--address", "11.11.11.2/24", "--peer", "{peer}"],
        peer: true,
        check: Check::Exec(&["ping", "-c", "1", "-W", "2", "11.11.11.3"]),
    },
    Config { what: "bridge", args: &["--net", "hs0", "-p", "8080:80"], peer: false, check: Check::Verify("ping") },
    Config {
        what: "disk",
        args: &["--disk", "8M"],
        peer: false,
        check: Check::Exec(&["sh", "-c", "echo x > /written && read l < /written && [ $l = x ]"]),
    },
];

/// How a fault is made, and what `up` must say.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Fail,
    Interrupt,
    Signal(nix::sys::signal::Signal),
    Kill,
}

fn kinds() -> Vec<Kind> {
    use nix::sys::signal::Signal::*;
    vec![Kind::Fail, Kind::Interrupt, Kind::Signal(SIGINT), Kind::Signal(SIGTERM), Kind::Signal(SIGHUP), Kind::Kill]
}

struct Run<'a> {
    w: &'a World,
    c: &'a Config,
    name: String,
    args: Vec<String>,
}

impl Run<'_> {
    fn up_args(&self) -> Vec<&str> {
        let mut a = vec!["up", self.name.as_str()];
        a.extend(self.args.iter().map(String::as_str));
        a
    }

    fn works(&self) {
        let o = match self.c.check {
            Check::Exec(cmd) => {
                let mut a = vec!["exec", self.name.as_str(), "--"];
                a.extend_from_slice(cmd);
                self.w.run(&a)
            }
            Check::Verify(check) => self.w.run(&["verify", &self.name, "--check", check]),
        };
        assert!(o.status.success(), "{} {}: it does not work: {}", self.c.what, self.name, text(&o));
    }

    /// The fault points a clean `up` passes, in order; then it is taken down again.
    fn points(&self) -> Vec<(String, String)> {
        let o = self.w.cmd(&self.up_args()).env("RUST_LOG", "debug").output().unwrap();
        assert!(o.status.success(), "{}: {}", self.c.what, text(&o));
        self.works();
        self.w.ok(&["down", &self.name]);
        let err = String::from_utf8_lossy(&o.stderr);
        let points: Vec<(String, String)> = err
            .lines()
            .filter_map(|l| l.split_once("fault point ")?.1.split_once(':'))
            .map(|(s, w)| (s.to_string(), w.to_string()))
            .collect();
        // Every step --explain shows for this container has its before and after points.
        let ex = self.w.cmd(&[&self.up_args()[..], &["--explain"]].concat()).output().unwrap();
        assert!(ex.status.success(), "{}", text(&ex));
        for step in String::from_utf8_lossy(&ex.stdout).lines().filter_map(|l| l.strip_prefix("# step ")) {
            for when in ["before", "after"] {
                assert!(points.contains(&(step.into(), when.into())), "{step}:{when} is not in the points of {err}");
            }
        }
        points
    }

    /// `up` with the fault; its output.
    fn up_with(&self, step: &str, when: &str, kind: Kind) -> Output {
        let action = match kind {
            Kind::Fail => "fail",
            Kind::Interrupt => "interrupt",
            Kind::Signal(_) => "pause",
            Kind::Kill => "kill",
        };
        let mut c = self.w.cmd(&self.up_args());
        c.env("HOST_SETUP_FAULT", format!("{step}:{when}:{action}"));
        let Kind::Signal(sig) = kind else { return c.output().unwrap() };
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut l = String::new();
            if err.read_line(&mut l).unwrap() == 0 {
                let st = child.wait().unwrap();
                panic!("{step}:{when}: up ended ({st}) before its pause:\n{seen}");
            }
            seen.push_str(&l);
            if l.contains(&format!("HOST_SETUP_FAULT: pause at {step}:{when}")) {
                break;
            }
        }
        // The pid is our own child's (nsenter execs host-setup in place): checked.
        let pid = child.id() as i32;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "host-setup", "pid {pid} is our up");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        let status = child.wait().unwrap();
        Output { status, stdout: vec![], stderr: (seen + &rest).into_bytes() }
    }

    /// One case: the fault, what `up` says, the host as before, a clean `up` after.
    fn case(&self, step: &str, when: &str, kind: Kind, recover_by_up: bool, before: &BTreeSet<String>) {
        let case = format!("{} {step}:{when} {kind:?}", self.c.what);
        let o = self.up_with(step, when, kind);
        let err = String::from_utf8_lossy(&o.stderr);
        let (code, says) = match kind {
            Kind::Fail => (Some(1), format!("injected fault at {step}:{when}")),
            Kind::Interrupt => (Some(130), "interrupted by SIGINT".into()),
            Kind::Signal(s) => (Some(128 + s as i32), format!("interrupted by {s}")),
            Kind::Kill => (None, String::new()),
        };
        if let Kind::Kill = kind {
            assert_eq!(std::os::unix::process::ExitStatusExt::signal(&o.status), Some(9), "{case}: {}", text(&o));
            if recover_by_up {
                let o = self.w.run(&self.up_args());
                if (step, when) == ("launch", "after") {
                    // Killed once the container ran: it is up, and says so.
                    assert_eq!(o.status.code(), Some(3), "{case}, then up: {}", text(&o));
                    assert!(String::from_utf8_lossy(&o.stderr).contains("is already up"), "{case}: {}", text(&o));
                } else {
                    assert!(o.status.success(), "{case}, then up: {}", text(&o));
                }
                self.works();
            }
            self.w.ok(&["down", &self.name]);
            let by = if recover_by_up { "up, down" } else { "down" };
            assert_eq!(&self.w.footprint(), before, "{case}, recovered by {by}: the host is not as before");
        } else {
            assert_eq!(o.status.code(), code, "{case}: {}", text(&o));
            assert!(err.contains(&says), "{case}: wanted {says:?} in: {}", text(&o));
            assert_eq!(&self.w.footprint(), before, "{case} left the host changed");
            self.w.ok(&self.up_args());
            self.works();
            self.w.ok(&["down", &self.name]);
        }
    }
}

/// Every point of every step of `c`, with every kind of fault; the steps it reached.
fn matrix(c: &'static Config) -> (BTreeSet<String>, usize) {
    let w = World::new();
    let (name, peer) = (format!("t{}x", w.lab.tag()), format!("t{}y", w.lab.tag()));
    w.names.lock().unwrap().extend([name.clone(), peer.clone()]);
    let args: Vec<String> = c.args.iter().map(|a| a.replace("{peer}", &peer)).collect();
    if c.peer {
        w.ok(&["up", &peer, "--address", "11.11.11.3/24", "--peer", &name]);
    }
    let r = Run { w: &w, c, name, args };
    // A first clean up and down makes what stays (the layer cache, lock files).
    let points = r.points();
    let list: Vec<String> = points.iter().map(|(s, w)| format!("{s}:{w}")).collect();
    eprintln!("{}: {} points: {}", c.what, points.len(), list.join(" "));
    let before = w.footprint();
    let mut by_up = false;
    let mut n = 0;
    for (step, when) in &points {
        for kind in kinds() {
            if let Kind::Kill = kind {
                by_up = !by_up;
            }
            r.case(step, when, kind, by_up, &before);
            n += 1;
        }
    }
    (points.into_iter().map(|p| p.0).collect(), n)
}

#[test]
fn every_fault_at_every_point_of_every_step_is_undone() {
    let t0 = std::time::Instant::now();
    let done: Vec<(BTreeSet<String>, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = CONFIGS.iter().map(|c| s.spawn(move || matrix(c))).collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let reached: BTreeSet<String> = done.iter().flat_map(|d| d.0.iter().cloned()).collect();
    let all: BTreeSet<String> = host_setup::steps::all().iter().map(|s| s.name().to_string()).collect();
    let missed: Vec<&String> = all.difference(&reached).collect();
    assert!(missed.is_empty(), "steps no configuration reaches (add one to CONFIGS): {missed:?}");
    let cases: usize = done.iter().map(|d| d.1).sum();
    eprintln!("{cases} cases, {} steps, in {:.1} s", reached.len(), t0.elapsed().as_secs_f64());
}
