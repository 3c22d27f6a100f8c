//! "What you read is what runs": `host-setup red --explain` and `blue --explain`
//! print scripts that bash runs as they are, and the containers they make have
//! the kernel state host-setup's own have: netns, links, addresses, routes,
//! cgroup values, the mounts inside, hostname, namespaces and capabilities.
//!
//! Everything runs "as the host" in a stand-in: a test netns (never the real
//! host's network) and a private mount namespace with its own /run/netns, so
//! the tutorial's names RED and BLUE are the test's alone. A holder process
//! keeps both; every command enters them with `nsenter -t HOLDER -m -n`. The
//! state dirs and cgroup parents are the test's own; a guard kills what runs in
//! those cgroups and removes everything, even when an assertion fails.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_setup::cgroup::Cgroups;
use lab_tests::{bin, require_root, seq, text};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

const PAIR: [&str; 2] = ["red", "blue"];

/// One way of bringing red and blue up: its own state dir and cgroup parent.
struct Side {
    state: PathBuf,
    parent: String,
}

/// The stand-in host: a netns, a mount namespace holder in it, two sides.
struct World {
    host: String,
    holder: Child,
    sides: [Side; 2],
    out: PathBuf,
}

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl World {
    fn new() -> World {
        require_root();
        let tag = format!("{}{}", std::process::id() % 100_000, seq());
        let host = format!("NHx{tag}");
        run(Command::new("ip").args(["netns", "add", &host]));
        // The holder: in the stand-in netns, a private mount namespace with a
        // /run/netns of its own; it lives until its stdin closes.
        let mut holder = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{host}"))
            .args(["unshare", "-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/netns && echo ready && exec cat >/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the holder");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        let side =
            |s: &str| Side { state: format!("/tmp/hs-test-x{tag}{s}").into(), parent: format!("hs-test-x{tag}{s}") };
        let out = PathBuf::from(format!("/tmp/hs-test-x{tag}out"));
        fs::create_dir_all(&out).unwrap();
        let w = World { host, holder, sides: [side("s"), side("h")], out };
        assert_eq!(line.trim(), "ready", "the holder did not start");
        w
    }

    /// `ARGS` as the stand-in host.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "-n", "--"]).args(args).env_remove("RUST_LOG");
        c.stdin(Stdio::null());
        c
    }

    fn hs(&self, side: &Side, args: &[&str]) -> String {
        let hs = bin("host-setup").display().to_string();
        let mut a = vec![hs.as_str(), "--state-dir", side.state.to_str().unwrap(), "--cgroup-parent", &side.parent];
        a.extend_from_slice(args);
        run(&mut self.cmd(&a))
    }

    /// Run `script` with bash -e; its stdout and stderr go to files (the
    /// container's processes keep them open).
    fn bash(&self, name: &str, script: &str) {
        let path = self.out.join(format!("{name}.sh"));
        File::create(&path).unwrap().write_all(script.as_bytes()).unwrap();
        let log = self.out.join(format!("{name}.log"));
        let status = self
            .cmd(&["bash", "-e", path.to_str().unwrap()])
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(&log).unwrap())
            .status()
            .unwrap();
        let said = fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "bash -e {name}.sh: {status}\n{said}\n--- the script:\n{script}");
    }

    /// The container's PID 1 (host pid), from its cgroup.
    fn pid1(&self, side: &Side, name: &str) -> i32 {
        let dir = Cgroups::detect().unwrap().dirs(&side.parent, name).remove(0);
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pid = procs.lines().filter_map(|p| p.parse::<i32>().ok()).find(|p| {
            let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            status.lines().any(|l| l.starts_with("NSpid:") && l.ends_with("\t1"))
        });
        pid.unwrap_or_else(|| panic!("no PID 1 in {}: {procs}", dir.display()))
    }

    /// The kernel state of one container, its names and pids made neutral.
    fn state(&self, side: &Side, name: &str) -> BTreeMap<String, String> {
        let ns = name.to_uppercase();
        let pid = self.pid1(side, name);
        let mut s = BTreeMap::new();
        let neutral = |t: String| {
            t.replace(side.state.to_str().unwrap(), "STATE")
                .replace(&side.parent, "PARENT")
                .replace(&pid.to_string(), "PID")
        };
        s.insert("netns files".into(), run(&mut self.cmd(&["ls", "/run/netns"])));
        let ip = |what: &[&str]| {
            let mut a = vec!["ip", "-n", &ns, "-j"];
            a.extend_from_slice(what);
            serde_json::from_str::<serde_json::Value>(&run(&mut self.cmd(&a))).unwrap()
        };
        for l in ip(&["-d", "link"]).as_array().unwrap() {
            let f = |k: &str| l.get(k).map(|v| v.to_string()).unwrap_or_default();
            let kind = l.pointer("/linkinfo/info_kind").map(|v| v.to_string()).unwrap_or_default();
            // Not the carrier (NO-CARRIER, LOWER_UP, operstate): the kernel
            // updates it asynchronously (linkwatch), after `ip link set up`.
            let flags: Vec<String> = l["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .filter(|f| !f.contains("CARRIER") && !f.contains("LOWER_UP"))
                .collect();
            let what = [flags.join(","), f("mtu"), f("link_type"), kind, f("link_netnsid")];
            s.insert(format!("link {}", f("ifname")), what.join(" "));
        }
        for l in ip(&["addr"]).as_array().unwrap() {
            let mut addrs: Vec<String> = l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                // IPv6 link-local: the kernel adds it on its own once the
                // carrier is up (addrconf, asynchronous): no command makes it.
                .filter(|a| !(a["family"] == "inet6" && a["scope"] == "link"))
                .map(|a| {
                    let f = |k: &str| a.get(k).map(|v| v.to_string()).unwrap_or_default();
                    [f("family"), f("local"), f("prefixlen"), f("broadcast"), f("scope")].join(" ")
                })
                .collect();
            addrs.sort();
            s.insert(format!("addr {}", l["ifname"]), addrs.join("; "));
        }
        let mut routes: Vec<String> = ip(&["route", "show", "table", "all"])
            .as_array()
            .unwrap()
            .iter()
            // The routes of the link-local address (fe80::/64, ff00::/8, and its
            // own local route "local fe80::..." once addrconf added it), as above.
            .filter(|r| {
                let dst = r["dst"].as_str().unwrap_or("");
                !(["fe80::/64", "ff00::/8"].contains(&dst) || dst.starts_with("fe80:"))
            })
            .map(|r| {
                let f = |k: &str| r.get(k).map(|v| v.to_string()).unwrap_or_default();
                [f("type"), f("dst"), f("dev"), f("table"), f("protocol"), f("scope"), f("prefsrc")].join(" ")
            })
            .collect();
        routes.sort();
        s.insert("routes".into(), routes.join("\n"));
        // The netns PID 1 is in is the one /run/netns names.
        let netns_of = |p: &str| fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
        let inside = run(&mut self.cmd(&["stat", "-L", "-c", "%i", &format!("/run/netns/{ns}")]));
        s.insert(
            "pid 1's netns".into(),
            (netns_of(&format!("/proc/{pid}/ns/net")).map(|i| i.to_string()) == Some(inside.trim().to_string()))
                .to_string(),
        );
        // Which namespaces are its own (not the stand-in host's).
        let holder = self.holder.id();
        for kind in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
            let own = fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
                != fs::read_link(format!("/proc/{holder}/ns/{kind}")).ok();
            s.insert(format!("ns {kind} own"), own.to_string());
        }
        for dir in Cgroups::detect().unwrap().dirs(&side.parent, name) {
            let files = [
                "cpu.cfs_period_us",
                "cpu.cfs_quota_us",
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.swappiness",
                "pids.max",
                "devices.list",
                "cpu.max",
                "memory.max",
                "memory.swap.max",
                "freezer.state",
            ];
            for f in files {
                if let Ok(v) = fs::read_to_string(dir.join(f)) {
                    s.insert(format!("cgroup {}", neutral(dir.join(f).display().to_string())), v);
                }
            }
        }
        // Without the hierarchies host-setup's supervisor moves itself into
        // (name=systemd and cgroup2 on v1, supervisor_cgroup.rs), which init
        // inherits: the script has no supervisor (checked in the test). On v2
        // init's one line ("0::") is its own cgroup, compared; the supervisor
        // (init's parent) sits beside it, so its cgroup is its parent's.
        let v1 = Cgroups::detect().unwrap().version() == 1;
        let cgroup = neutral(fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
        let (sup, limits): (Vec<&str>, Vec<&str>) =
            cgroup.lines().partition(|l| l.contains(":name=systemd:") || (v1 && l.starts_with("0::")));
        s.insert("/proc/PID/cgroup".into(), limits.join("\n"));
        let sup = match v1 {
            true => sup.join("\n"),
            false => {
                let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().to_string();
                neutral(fs::read_to_string(format!("/proc/{ppid}/cgroup")).unwrap_or_default())
            }
        };
        s.insert("supervisor's cgroups".into(), sup);
        // Mounts: everything but the ids and device numbers, sorted.
        let mut mounts: Vec<String> = fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let dash = f.iter().position(|x| *x == "-").unwrap();
                neutral(format!(
                    "{} {} {} {} {}",
                    f[3],
                    f[4],
                    f[5],
                    f[dash + 1..].join(" "),
                    f[6..dash].iter().filter(|o| !o.starts_with("master:")).count()
                ))
            })
            .collect();
        mounts.sort();
        s.insert("mounts".into(), mounts.join("\n"));
        s.insert("hostname".into(), run(&mut self.cmd(&["nsenter", "-t", &pid.to_string(), "-u", "hostname"])));
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        for l in status.lines() {
            let keep = ["Cap", "NoNewPrivs", "Uid", "Gid", "Groups", "NSpid"];
            if keep.iter().any(|k| l.starts_with(k)) {
                let (k, v) = l.split_once(':').unwrap();
                s.insert(format!("status {k}"), neutral(v.trim().to_string()));
            }
        }
        s.insert(
            "cmdline".into(),
            neutral(fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().replace('\0', " ")),
        );
        s
    }

    /// Stop what the script made: PID 1 (SIGTERM; it exits 0), then the netns,
    /// the cgroups (newest first) and the state dir.
    fn down_script(&self, side: &Side) {
        for name in PAIR {
            let pid = self.pid1(side, name);
            let dir = Cgroups::detect().unwrap().dirs(&side.parent, name).remove(0);
            let fd = pidfd_in(&dir, pid).unwrap_or_else(|| panic!("PID 1 {pid} left {} by itself", dir.display()));
            stop(&fd, Signal::SIGTERM).unwrap_or_else(|e| panic!("PID 1 of {name}'s script ({pid}): {e}"));
            run(&mut self.cmd(&["ip", "netns", "del", &name.to_uppercase()]));
        }
        remove(side);
    }
}

/// A pidfd for `pid` if it is in the cgroup `dir`: opened first, then the cgroup
/// read again, so the fd names the process found there and not one that got its
/// pid after it was reaped (an open pidfd keeps the pid from being reused).
fn pidfd_in(dir: &Path, pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // ESRCH: gone already.
        return None;
    }
    // SAFETY: fd was just returned by pidfd_open and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    procs.lines().any(|p| p == pid.to_string()).then_some(fd)
}

/// Sends `sig` through `pidfd` and waits until that process has exited: a pidfd
/// polls readable then (zombie or reaped). Not gone in 30 s: an error.
fn stop(pidfd: &OwnedFd, sig: Signal) -> Result<(), String> {
    // SAFETY: pidfd_send_signal(2): a pidfd we own, a signal number, no siginfo, no flags.
    let r =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig as i32, std::ptr::null::<u8>(), 0) };
    // ESRCH: it exited meanwhile, which is what we wait for.
    if r < 0 && Errno::last() != Errno::ESRCH {
        return Err(format!("pidfd_send_signal {sig}: {}", Errno::last()));
    }
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match poll(&mut fds, PollTimeout::try_from(left).unwrap()) {
            Ok(0) => return Err(format!("still there 30 s after {sig}")),
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll its pidfd: {e}")),
        }
    }
}

/// Kill what still runs in the side's cgroups (pids read from cgroups only this
/// test made), then remove the cgroups and the state dir. A process that does not
/// go fails the test (after the rest is removed), or is printed when the test is
/// failing already (a second panic in drop would abort the run).
fn remove(side: &Side) {
    let Ok(cg) = Cgroups::detect() else { return };
    let mut stuck = vec![];
    for name in PAIR {
        let dirs = cg.dirs(&side.parent, name);
        for dir in &dirs {
            for p in fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines() {
                let Some(fd) = p.parse::<i32>().ok().and_then(|pid| pidfd_in(dir, pid)) else { continue };
                if let Err(e) = stop(&fd, Signal::SIGKILL) {
                    stuck.push(format!("{p} in {}: {e}", dir.display()));
                }
            }
        }
        for dir in dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
    for d in host_setup::cgroup::parents(&cg.dirs(&side.parent, "x")) {
        let _ = fs::remove_dir(&d);
    }
    let _ = fs::remove_dir_all(&side.state);
    if !stuck.is_empty() {
        let what = format!("teardown: processes that would not go: {stuck:?}");
        match std::thread::panicking() {
            true => eprintln!("{what}"),
            false => panic!("{what}"),
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for side in &self.sides {
            remove(side);
        }
        // The holder ends when its stdin closes; its pid is our own child's.
        drop(self.holder.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.host]).status();
        let _ = fs::remove_dir_all(&self.out);
    }
}

#[test]
fn explain_scripts_make_what_host_setup_makes() {
    let w = World::new();
    let (script, own) = (&w.sides[0], &w.sides[1]);
    // red's script, then blue's (which makes the pair, red's netns existing).
    let mut explained = vec![];
    for name in PAIR {
        let text = w.hs(script, &[name, "--explain"]);
        w.bash(name, &text);
        explained.push(text);
    }
    let from_script: Vec<_> = PAIR.iter().map(|n| w.state(script, n)).collect();
    w.down_script(script);

    for name in PAIR {
        w.hs(own, &[name]);
    }
    let from_host_setup: Vec<_> = PAIR.iter().map(|n| w.state(own, n)).collect();
    for name in PAIR {
        w.hs(own, &["down", name]);
    }

    for (i, name) in PAIR.iter().enumerate() {
        let (a, b) = (&from_script[i], &from_host_setup[i]);
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let mut differ = vec![];
        for k in keys {
            // init's argv: the script's init has fewer flags (the shell did the rest).
            if k == "cmdline" || k == "supervisor's cgroups" {
                continue;
            }
            if a.get(k) != b.get(k) {
                differ.push(format!("{k}:\n  script:     {:?}\n  host-setup: {:?}", a.get(k), b.get(k)));
            }
        }
        assert!(
            differ.is_empty(),
            "{name}: the explain script's container differs:\n{}\n--- the script:\n{}",
            differ.join("\n"),
            explained[i]
        );
        assert!(
            a.iter().any(|(k, v)| k.starts_with("link \"veth") && v.contains("\"veth\"")),
            "{name}: no veth: {a:?}"
        );
        assert_eq!(a["hostname"].trim(), name.to_uppercase());
        let sup = format!("/PARENT/{name}.supervisor");
        assert!(
            b["supervisor's cgroups"].contains(&sup) && !a["supervisor's cgroups"].contains(&sup),
            "{name}: {a:?} {b:?}"
        );
        assert!(a["mounts"].contains(" /proc/sys ro,"), "{name}: {}", a["mounts"]);
    }
}
