//! The checks that look rather than load: namespaces, hostname, the kernel's
//! limits, ping, capabilities, the chroot escape.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nix::sched::CloneFlags;

use super::run::status_field;
use super::{Check, Runner, Target};
use crate::cgroup::live::Limit;
use crate::spec::{format_bytes, Pid1};
use crate::state::{Journal, Paths, Role};

/// The namespace inode of `pid` (or "self") for `kind`: /proc/PID/ns/KIND is a
/// magic link "kind:[inode]".
fn ns_inode(pid: &str, kind: &str) -> std::result::Result<u64, String> {
    let p = format!("/proc/{pid}/ns/{kind}");
    std::fs::metadata(&p).map(|m| m.ino()).map_err(|e| format!("stat {p}: {}", crate::error::io_text(&e)))
}

/// Each of init's namespaces differs from the host's (ours); the network one is
/// the named netns. A privileged container shares the host's cgroup namespace.
/// With --userns the user namespace too, and the kernel's uid and gid maps are
/// the journal's range.
pub fn namespaces(t: &Target) -> Check {
    let pid = t.init.pid.to_string();
    let mut differ = vec![];
    let mut wrong = vec![];
    let user = t.ids.map(|_| "user");
    for kind in ["mnt", "uts", "ipc", "pid", "net", "cgroup"].into_iter().chain(user) {
        let (theirs, ours) = match (ns_inode(&pid, kind), ns_inode("self", kind)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Check::fail("namespaces", e),
        };
        let shared_ok = kind == "cgroup" && t.spec.privileged;
        match (theirs != ours, shared_ok) {
            (true, _) => differ.push(kind),
            (false, true) => {}
            (false, false) => wrong.push(format!("{kind} is the host's ({theirs})")),
        }
    }
    let netns = crate::net::netns_path(&t.spec.netns);
    match (std::fs::metadata(&netns), ns_inode(&pid, "net")) {
        (Ok(m), Ok(ino)) if m.ino() == ino => {}
        (Ok(m), Ok(ino)) => wrong.push(format!("net is {ino}, not {} ({})", netns.display(), m.ino())),
        (Err(e), _) => wrong.push(format!("stat {}: {}", netns.display(), crate::error::io_text(&e))),
        (_, Err(e)) => wrong.push(e),
    }
    let mut shared = if t.spec.privileged { "; cgroup is the host's (privileged)" } else { "" }.to_string();
    if let Some(ids) = t.ids {
        match crate::userns::live_maps(t.init.pid) {
            Some((u, g)) if u == ids.uid_line() && g == ids.gid_line() => {
                shared = format!("{shared}; uid_map {u}, gid_map {g}")
            }
            Some((u, g)) => wrong.push(format!("uid_map {u}, gid_map {g} (journal: {})", ids.describe())),
            None => wrong.push(format!("/proc/{pid}/uid_map: unreadable")),
        }
    }
    if wrong.is_empty() {
        Check::pass(
            "namespaces",
            format!("{} differ from the host's, net is {}{shared}", differ.join(" "), netns.display()),
        )
    } else {
        Check::fail("namespaces", wrong.join("; "))
    }
}

/// The UTS name inside: a short-lived thread joins init's UTS namespace (a
/// per-thread attribute, so the rest of host-setup stays in the host's) and
/// calls uname.
pub fn hostname(t: &Target) -> Check {
    let path = format!("/proc/{}/ns/uts", t.init.pid);
    let name = std::thread::scope(|s| {
        s.spawn(|| -> std::result::Result<String, String> {
            let f = File::open(&path).map_err(|e| format!("open {path}: {}", crate::error::io_text(&e)))?;
            nix::sched::setns(&f, CloneFlags::CLONE_NEWUTS)
                .map_err(|e| format!("setns({path}): {e:?}: {}", crate::error::errno_text(e)))?;
            let u = nix::sys::utsname::uname().map_err(|e| format!("uname: {e:?}"))?;
            Ok(u.nodename().to_string_lossy().into_owned())
        })
        .join()
        .unwrap_or_else(|_| Err("the uname thread panicked".into()))
    });
    match name {
        Ok(n) => Check::by(
            "hostname",
            n == t.spec.hostname,
            format!("{n} (expected {}; the host's is {})", t.spec.hostname, host_name()),
        ),
        Err(e) => Check::fail("hostname", e),
    }
}

fn host_name() -> String {
    nix::sys::utsname::uname().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default()
}

/// The limits as the kernel holds them, against the spec.
pub fn limits(t: &Target) -> Check {
    let k = t.dirs.limits();
    let l = &t.spec.limits;
    let mut bad = vec![];
    let mut shown = vec![];
    let mut cmp = |what: &str, got: Option<Limit>, want: Limit| {
        match got {
            Some(g) if g == want => {}
            Some(g) => bad.push(format!("{what} {g} (spec {want})")),
            None => bad.push(format!("{what} unreadable")),
        }
        shown.push(format!("{what} {}", got.map_or("?".to_string(), |g| g.to_string())));
    };
    let version = t.dirs.version;
    cmp("cpu quota", k.cpu_quota_us, Limit::Value(l.cpu_quota_us));
    cmp("period", k.cpu_period_us.map(Limit::Value), Limit::Value(l.cpu_period_us));
    // The kernel keeps whole pages.
    cmp("memory", k.memory_bytes, Limit::Value(l.memory_bytes / 4096 * 4096));
    cmp("pids", k.pids_max, l.pids_max.map_or(Limit::Max, Limit::Value));
    let files = if version == 1 {
        "cpu.cfs_quota_us, cpu.cfs_period_us, memory.limit_in_bytes, pids.max"
    } else {
        "cpu.max, memory.max, pids.max"
    };
    if bad.is_empty() {
        Check::pass("limits", format!("{} as the spec ({files})", shown.join(", ")))
    } else {
        Check::fail("limits", format!("{} ({files})", bad.join(", ")))
    }
}

/// How long a ping of 3 (about 1.5 s when healthy) may take, `exec` into the
/// container included, before it counts as failed: the v2 VM under TCG, with 16
/// containers coming up beside it (tests/network.rs), once took over 15 s.
const PING_DEADLINE: Duration = Duration::from_secs(45);

/// `ping -c 3` from this container to its peer and back, with the average RTT.
pub fn ping(runner: &Runner, paths: &Paths, t: &Target) -> Check {
    if let (None, Some(join)) = (&t.spec.net, &t.spec.join) {
        return ping_gateway(runner, paths, t, &join.network);
    }
    let Some(net) = &t.spec.net else { return Check::skip("ping", "no network (loopback only)") };
    let Some(peer) = &net.peer else { return Check::skip("ping", "no peer") };
    let peer_spec = Journal::read(paths, peer)
        .ok()
        .flatten()
        .filter(|j| j.proc(Role::Init).is_some_and(|p| p.alive()) && j.is_ready() && j.exited().is_none())
        .and_then(|j| j.spec());
    let Some(peer_addr) = peer_spec.as_ref().and_then(|s| s.net.as_ref()).map(|n| n.addr) else {
        return Check::skip("ping", format!("peer {peer} is not running"));
    };
    let mut parts = vec![];
    let mut ok = true;
    for (from, to, addr) in [(&t.name, peer, peer_addr), (peer, &t.name, net.addr)] {
        let a = addr.to_string();
        let ran = runner.run(from, &["ping", "-c", "3", "-i", "0.2", "-W", "1", &a], PING_DEADLINE);
        let got = ping_result(&ran.stdout);
        match got {
            Some((3, rtt)) => parts.push(format!("{from} -> {to} ({a}) 3/3, rtt {rtt} ms")),
            Some((n, _)) => {
                ok = false;
                parts.push(format!("{from} -> {to} ({a}) {n}/3 received"));
            }
            None => {
                ok = false;
                parts.push(format!("{from} -> {to} ({a}): {}", ran.said()));
            }
        }
    }
    if !ok {
        let link = match crate::net::link_status(&t.spec.netns, &net.iface) {
            Ok(Some(s)) if s.up && s.has_peer => format!("{} up", net.iface),
            Ok(Some(s)) => format!("{} up={} peer={}", net.iface, s.up, s.has_peer),
            Ok(None) => format!("{} absent in netns {}", net.iface, t.spec.netns),
            Err(e) => format!("{}: {e}", net.iface),
        };
        parts.push(format!("link: {link}"));
    }
    Check::by("ping", ok, parts.join(", "))
}

/// On a bridge network: `ping -c 3` from the container to its network's gateway.
fn ping_gateway(runner: &Runner, paths: &Paths, t: &Target, network: &str) -> Check {
    let gw = match crate::network::load(paths, network) {
        Ok(Some(n)) => n.gateway,
        Ok(None) => return Check::fail("ping", format!("network {network} is gone")),
        Err(e) => return Check::fail("ping", format!("network {network}: {e}")),
    };
    let a = gw.to_string();
    let ran = runner.run(&t.name, &["ping", "-c", "3", "-i", "0.2", "-W", "1", &a], PING_DEADLINE);
    match ping_result(&ran.stdout) {
        Some((3, rtt)) => Check::pass("ping", format!("{} -> gateway of {network} ({a}) 3/3, rtt {rtt} ms", t.name)),
        Some((n, _)) => Check::fail("ping", format!("{} -> gateway of {network} ({a}) {n}/3 received", t.name)),
        None => Check::fail("ping", format!("{} -> gateway of {network} ({a}): {}", t.name, ran.said())),
    }
}

/// (received, average rtt) from ping's summary lines.
fn ping_result(out: &str) -> Option<(u32, String)> {
    let received = out.lines().find_map(|l| {
        let (_, rest) = l.split_once(" transmitted, ")?;
        rest.split_whitespace().next()?.parse().ok()
    })?;
    let rtt = out
        .lines()
        .find_map(|l| l.split_once(" = ").filter(|(k, _)| k.starts_with("rtt") || k.starts_with("round-trip")))
        .and_then(|(_, v)| v.split('/').nth(1).map(str::to_string))
        .unwrap_or_else(|| "?".into());
    Some((received, rtt))
}

/// Docker's default capabilities (moby oci/caps/defaults.go), what init's
/// `--restrict` keeps: chown dac_override fowner fsetid kill setgid setuid setpcap
/// net_bind_service net_raw sys_chroot mknod audit_write setfcap.
pub const DOCKER_CAPS: u64 = 0xa804_25fb;

/// CapBnd, CapEff and NoNewPrivs of the main process (init's child, or init
/// itself with --exec-as-pid1); with init alone (--pause), of a process entered
/// by `exec`, which gets the same restrictions. The bounding set is the
/// container's limit (nothing inside can raise it); the effective set may be
/// smaller, as programs drop what they do not need (ping keeps none).
pub fn capabilities(runner: &Runner, t: &Target) -> Check {
    let main =
        if t.spec.pid1 == Pid1::Exec { Some(t.init.pid) } else { super::run::descendants(t.init.pid).first().copied() };
    let (status, whose) = match main {
        Some(pid) => match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(s) => (s, format!("main process (pid {pid})")),
            Err(e) => return Check::fail("caps", format!("read /proc/{pid}/status: {}", crate::error::io_text(&e))),
        },
        None => {
            let script = "while read -r l; do echo \"$l\"; done </proc/self/status";
            let ran = runner.run(&t.name, &["/bin/sh", "-c", script], Duration::from_secs(10));
            (ran.stdout, "a process entered by exec (init runs alone)".to_string())
        }
    };
    let hex = |k: &str| status_field(&status, k).and_then(|v| u64::from_str_radix(&v, 16).ok());
    let (Some(eff), Some(bnd), Some(nnp)) = (hex("CapEff"), hex("CapBnd"), status_field(&status, "NoNewPrivs")) else {
        return Check::fail("caps", format!("no CapEff/CapBnd/NoNewPrivs in the status of {whose}"));
    };
    let figure = format!("{whose}: CapBnd {bnd:016x}, CapEff {eff:016x}, NoNewPrivs {nnp}");
    if t.spec.privileged {
        let host = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| status_field(&s, "CapBnd"));
        let host = host.and_then(|h| u64::from_str_radix(&h, 16).ok()).unwrap_or(0);
        return Check::by("caps", bnd == host, format!("{figure} (privileged: all of root's, {host:016x})"));
    }
    let ok = bnd == DOCKER_CAPS && eff & !DOCKER_CAPS == 0 && nnp == "1";
    Check::by("caps", ok, format!("{figure} (expected Docker's 14, {DOCKER_CAPS:016x}, and no_new_privs 1)"))
}

/// The classic chroot escape, run inside: it must stay in the container.
pub fn escape(runner: &Runner, t: &Target) -> Check {
    let ran = runner.run(&t.name, &["/escape_chroot"], Duration::from_secs(20));
    let verdict = ran.stdout.lines().find(|l| l.contains("CONTAINED") || l.contains("ESCAPED"));
    match (ran.code, verdict) {
        (Some(1), Some(v)) if v.contains("CONTAINED") => {
            Check::pass("escape", "escape_chroot: CONTAINED, \"/\" did not change")
        }
        (_, Some(v)) if v.contains("ESCAPED") => {
            Check::fail("escape", format!("escape_chroot reached the host's root: {}", v.trim()))
        }
        (code, _) => Check::fail("escape", format!("escape_chroot exited {code:?}: {}", ran.said())),
    }
}

/// --disk: the container's root is an overlay whose upper dir is on the
/// container's own tmpfs (init's mountinfo), and the kernel's size of that tmpfs
/// is the spec's (run only for a container with --disk).
pub fn disk(paths: &Paths, t: &Target) -> Check {
    let Some(want) = t.spec.disk else {
        return Check::fail("disk", "no --disk: nothing to check");
    };
    let dir = crate::disk::dir(paths, &t.name);
    let Some(u) = crate::disk::usage(&dir) else {
        return Check::fail("disk", format!("no tmpfs mounted at {}", dir.display()));
    };
    let upper = crate::disk::upper(paths, &t.spec);
    let info = format!("/proc/{}/mountinfo", t.init.pid);
    let root_upper = match std::fs::read_to_string(&info) {
        Ok(text) => root_overlay_upper(&text),
        Err(e) => return Check::fail("disk", format!("read {info}: {}", crate::error::io_text(&e))),
    };
    let (size, used) = (format_bytes(u.limit_bytes), format_bytes(u.used_bytes));
    match root_upper {
        Some(r) if r == upper && u.limit_bytes == crate::disk::rounded(want) => Check::pass(
            "disk",
            format!("upperdir {} on a tmpfs of {size} (spec {}), {used} used", r.display(), format_bytes(want)),
        ),
        Some(r) if r == upper => Check::fail("disk", format!("tmpfs of {size}, spec {}", format_bytes(want))),
        Some(r) => Check::fail("disk", format!("the root's upperdir is {}, not {}", r.display(), upper.display())),
        None => Check::fail("disk", format!("no overlay mounted on / in {info}")),
    }
}

/// The upperdir of the overlay mounted on "/" in a mountinfo (the last one).
fn root_overlay_upper(mountinfo: &str) -> Option<std::path::PathBuf> {
    let line = mountinfo.lines().rev().find(|l| {
        let mut halves = l.splitn(2, " - ");
        let left = halves.next().unwrap_or_default();
        let right = halves.next().unwrap_or_default();
        left.split(' ').nth(4) == Some("/") && right.starts_with("overlay ")
    })?;
    let opts = line.rsplit(' ').next()?;
    let up = opts.split(',').find_map(|o| o.strip_prefix("upperdir="))?;
    Some(crate::mountinfo::unescape(up).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary_is_parsed() {
        let out = "PING 11.11.11.3 (11.11.11.3) 56(84) bytes of data.\n\
                   --- 11.11.11.3 ping statistics ---\n\
                   3 packets transmitted, 3 received, 0% packet loss, time 404ms\n\
                   rtt min/avg/max/mdev = 0.031/0.045/0.060/0.012 ms\n";
        assert_eq!(ping_result(out), Some((3, "0.045".into())));
        let lost = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 410ms\n";
        assert_eq!(ping_result(lost), Some((0, "?".into())));
        assert_eq!(ping_result("ping: connect: Network is unreachable\n"), None);
    }

    #[test]
    fn docker_caps_are_the_fourteen() {
        assert_eq!(DOCKER_CAPS.count_ones(), 14);
        for cap in [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31] {
            assert!(DOCKER_CAPS & (1 << cap) != 0, "cap {cap}");
        }
    }

    #[test]
    fn the_roots_upper_dir_from_mountinfo() {
        let info = "\
300 299 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/s/layers/a:/s/layers/b,upperdir=/s/containers/g\\040h/disk/upper,workdir=/s/containers/g/disk/work,userxattr
301 300 0:51 / /proc rw - proc proc rw
302 300 0:52 / /tmp rw - overlay overlay rw,lowerdir=/x,upperdir=/other,workdir=/w
";
        assert_eq!(root_overlay_upper(info), Some("/s/containers/g h/disk/upper".into()));
        assert_eq!(root_overlay_upper("1 0 0:5 / / rw - ext4 /dev/vda rw\n"), None);
    }
}
