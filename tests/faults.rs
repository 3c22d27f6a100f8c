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
//! Everything runs "as the host" in a stand-in host netns (lab_tests::standin).
//!
//! One test per container and step group: the cgroup steps (CGROUP_STEPS, the only
//! code that differs between cgroup v1 and v2: the cgroup VM runs these) and every
//! other step the binary logs (the catch-all: a new step lands there by itself).
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use lab_tests::footprint::footprint;
use lab_tests::standin::Standin;
use lab_tests::text;

/// The lab's footprint and the stand-in host's network state.
fn host_footprint(w: &Standin) -> BTreeSet<String> {
    let mut out = footprint(&w.lab);
    // The rest of the state dir (networks and their leases), but the layer cache.
    let state = std::fs::read_dir(&w.lab.state_dir).unwrap().flatten().map(|e| e.path());
    for p in state.filter(|p| !p.ends_with("layers") && !p.ends_with("containers")) {
        out.insert(format!("file {}", p.display()));
        out.extend(lab_tests::footprint::walk(&p).into_iter().map(|f| format!("file {f}")));
    }
    let ns = format!("--net=/run/netns/{}", w.host);
    for what in [&["ip", "-o", "link"][..], &["ip", "-o", "-4", "addr"], &["ip", "route"], &["nft", "list", "ruleset"]]
    {
        let o = Command::new("nsenter").arg(&ns).args(what).output().unwrap();
        assert!(o.status.success(), "{what:?}: {}", text(&o));
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            out.insert(format!("{} {l}", what.join(" ")));
        }
    }
    // (IPv4 only above: an IPv6 link-local address is "tentative" for a while after
    // the link comes up.)
    let sysctls = "grep -r . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding \
                   /proc/sys/net/ipv4/conf/*/route_localnet";
    let o = Command::new("nsenter").arg(&ns).args(["sh", "-c", sysctls]).output().unwrap();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        out.insert(format!("sysctl {l}"));
    }
    out
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
    w: &'a Standin,
    c: &'a Config,
    name: String,
    args: Vec<String>,
}

impl<'a> Run<'a> {
    /// Container `c` in `w` (its names taken down on drop), its peer up if it has one.
    fn new(w: &'a Standin, c: &'a Config) -> Run<'a> {
        let (name, peer) = (format!("t{}x", w.lab.tag()), format!("t{}y", w.lab.tag()));
        w.track(name.clone());
        w.track(peer.clone());
        let args: Vec<String> = c.args.iter().map(|a| a.replace("{peer}", &peer)).collect();
        if c.peer {
            w.ok(&["up", &peer, "--address", "11.11.11.3/24", "--peer", &name]);
        }
        Run { w, c, name, args }
    }

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
            assert_eq!(&host_footprint(self.w), before, "{case}, recovered by {by}: the host is not as before");
        } else {
            assert_eq!(o.status.code(), code, "{case}: {}", text(&o));
            assert!(err.contains(&says), "{case}: wanted {says:?} in: {}", text(&o));
            assert_eq!(&host_footprint(self.w), before, "{case} left the host changed");
            self.w.ok(&self.up_args());
            self.works();
            self.w.ok(&["down", &self.name]);
        }
    }
}

/// The steps whose code differs between cgroup v1 and v2, all the rest being the same:
/// `cgroups` makes the cgroups and writes the limits (v1's hierarchies or v2's one
/// dir), and `launch` puts the supervisor in `NAME.supervisor` and init in the
/// container's cgroup (on v2 born in it, clone3's CLONE_INTO_CGROUP).
const CGROUP_STEPS: &[&str] = &["cgroups", "launch"];

/// Which steps' points a test injects faults at.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Group {
    /// CGROUP_STEPS.
    Cgroup,
    /// Every step the binary logs but those: a step this file does not name is here.
    Other,
}

impl Group {
    fn has(self, step: &str) -> bool {
        CGROUP_STEPS.contains(&step) == (self == Group::Cgroup)
    }
}

fn config(what: &str) -> &'static Config {
    CONFIGS.iter().find(|c| c.what == what).unwrap_or_else(|| panic!("no config {what}"))
}

/// Every kind of fault at every point of `group`'s steps of container `what`.
fn matrix(what: &str, group: Group) {
    let t0 = std::time::Instant::now();
    let c = config(what);
    let w = Standin::new();
    let r = Run::new(&w, c);
    // A first clean up and down makes what stays (the layer cache, lock files).
    let points = r.points();
    let list: Vec<String> = points.iter().map(|(s, w)| format!("{s}:{w}")).collect();
    eprintln!("{}: {} points: {}", c.what, points.len(), list.join(" "));
    if group == Group::Cgroup {
        for step in CGROUP_STEPS {
            assert!(points.iter().any(|p| p.0 == *step), "{what} does not reach the cgroup step {step}: {list:?}");
        }
    }
    let before = host_footprint(&w);
    let mut n = 0;
    // SIGKILL is recovered by `up` at every other point of the whole list, by `down`
    // at the rest (the same points whichever group runs).
    for (i, (step, when)) in points.iter().enumerate().filter(|(_, p)| group.has(&p.0)) {
        for kind in kinds() {
            r.case(step, when, kind, i % 2 == 0, &before);
            n += 1;
        }
    }
    assert!(n > 0, "{what}: no point of the {group:?} steps in {list:?}");
    eprintln!("{what}, {group:?} steps: {n} cases in {:.1} s", t0.elapsed().as_secs_f64());
}

/// One test per group and container, each listed in TESTED.
macro_rules! matrix_tests {
    ($($test:ident: $group:ident $what:literal;)*) => {
        $(#[test]
        fn $test() {
            matrix($what, Group::$group);
        })*
        const TESTED: &[(Group, &str)] = &[$((Group::$group, $what)),*];
    };
}

matrix_tests! {
    cgroup_steps_of_the_pair: Cgroup "pair";
    cgroup_steps_of_a_bridge_member: Cgroup "bridge";
    cgroup_steps_of_a_disk_container: Cgroup "disk";
    other_steps_of_the_pair: Other "pair";
    other_steps_of_a_bridge_member: Other "bridge";
    other_steps_of_a_disk_container: Other "disk";
}

/// Every step of the binary is reached by some container (a clean `up` of each), every
/// container has its test for each group, and CGROUP_STEPS names steps that exist.
#[test]
fn every_step_is_reached_by_a_container_with_a_test_for_each_group() {
    let all: BTreeSet<String> = host_setup::steps::all().iter().map(|s| s.name().to_string()).collect();
    for step in CGROUP_STEPS {
        assert!(all.contains(*step), "CGROUP_STEPS names {step}, which is not a step: {all:?}");
    }
    for c in CONFIGS {
        for group in [Group::Cgroup, Group::Other] {
            assert!(TESTED.contains(&(group, c.what)), "{} has no test of the {group:?} steps (matrix_tests!)", c.what);
        }
    }
    let reached: BTreeSet<String> = std::thread::scope(|s| {
        let hs: Vec<_> = CONFIGS
            .iter()
            .map(|c| {
                s.spawn(move || {
                    let w = Standin::new();
                    Run::new(&w, c).points().into_iter().map(|p| p.0).collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let missed: Vec<&String> = all.difference(&reached).collect();
    assert!(missed.is_empty(), "steps no configuration reaches (add one to CONFIGS): {missed:?}");
}
