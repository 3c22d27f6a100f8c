//! `--explain` prints exactly what the executor does: for red and blue, on the v1
//! and the v2 layout, the engine walks the steps once printing (plan::Explain) and
//! once recording what it hands to the executor, in order; the two agree line for
//! line, and the lines are the tutorial's commands with this host's values.
//! No root needed: nothing runs.

use std::path::{Path, PathBuf};

use crate::action::Action;
use crate::cgroup::Cgroups;
use crate::ctx::{Bins, Ctx, Mode};
use crate::error::Result;
use crate::plan::{walk, Apply, Explain};
use crate::spec::{Layer, Options, Spec};
use crate::state::{Paths, Record};

/// Stands in for the executor: keeps what it would run and journal, in order.
#[derive(Default)]
struct Recorder {
    shell: Vec<String>,
    records: Vec<Record>,
    steps: Vec<&'static str>,
}

impl Apply for Recorder {
    fn begin(&mut self, step: &'static str) -> Result<()> {
        self.steps.push(step);
        Ok(())
    }
    fn action(&mut self, _step: &'static str, a: &Action, _ctx: &mut Ctx) -> Result<()> {
        self.records.extend(a.record());
        self.shell.extend(a.shell());
        Ok(())
    }
    fn changes_host(&self) -> bool {
        true
    }
}

const V1: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";

fn spec(name: &str, layer: &Path) -> Spec {
    let mut s = Spec::new(name, &Options::default()).unwrap();
    // A given layer dir, so that no host binary is looked at; the layers step's
    // own plan is tested in layers/.
    s.layers = vec![Layer::Dir(layer.to_path_buf())];
    s
}

/// (what --explain prints, what the executor is handed) for `name` on `cgroups`.
fn both(name: &str, partner: Option<Spec>, cgroups: &Cgroups, state: &Path) -> (Vec<String>, Recorder) {
    let (lines, rec) = walk_both(&spec(name, &state.join("layer")), partner, cgroups, state);
    assert_eq!(rec.steps, ["layers", "dirs", "netns", "link", "lease", "network", "cgroups", "launch"]);
    (lines, rec)
}

/// (what --explain prints, what the executor is handed) for `spec`.
fn walk_both(spec: &Spec, partner: Option<Spec>, cgroups: &Cgroups, state: &Path) -> (Vec<String>, Recorder) {
    let spec = spec.clone();
    let paths = Paths::new(state);
    let bins = Bins { init: "/usr/lib/host-setup/init".into(), own_dir: "/usr/lib/host-setup".into() };
    let ctx = || Ctx {
        spec: &spec,
        paths: &paths,
        cgroups,
        cgroup_parent: "host-setup",
        bins: &bins,
        mode: Mode::Background,
        console: None,
        journal: None,
        lock: None,
        layer_dirs: vec![],
        cgroup_dirs: vec![],
        ids: None,
        unit: None,
        init: None,
        partner_override: Some(partner.clone()),
        lease: None,
    };
    let mut explain = Explain::default();
    walk(&mut ctx(), &mut explain).unwrap();
    let mut rec = Recorder::default();
    walk(&mut ctx(), &mut rec).unwrap();
    let steps: Vec<&str> = explain.steps.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, rec.steps);
    (explain.steps.into_iter().flat_map(|(_, l)| l).collect(), rec)
}

fn has(lines: &[String], want: &str) {
    assert!(lines.iter().any(|l| l == want), "{want:?} not in:\n{}", lines.join("\n"));
}

/// A temporary state dir, removed even when the test fails.
struct TempState(PathBuf);

impl Drop for TempState {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn explain_is_exactly_what_runs_for_red_and_blue_on_v1_and_v2() {
    let tmp = TempState(std::env::temp_dir().join(format!("hs-explain-{}", std::process::id())));
    let state = tmp.0.clone();
    let s = |p: &str| state.join(p).display().to_string();
    let v1 = Cgroups::v1_from_mountinfo(V1).unwrap();
    let v2 = Cgroups::V2(PathBuf::from("/sys/fs/cgroup"));
    let red = spec("red", &state.join("layer"));
    for (cgroups, v) in [(&v1, 1), (&v2, 2)] {
        // red first: blue is not up, so red makes no link.
        let (lines, rec) = both("red", None, cgroups, &state);
        assert_eq!(lines, rec.shell, "v{v}: --explain and the executor differ");
        has(&lines, &format!("mkdir -m 700 {}", s("containers/red")));
        has(
            &lines,
            &format!(
                "mkdir -m 755 {} {} {} {}",
                s("containers/red/upper"),
                s("containers/red/work"),
                s("containers/red/merge"),
                s("containers/red/image")
            ),
        );
        has(&lines, "ip netns add RED");
        has(&lines, "ip netns exec RED ip link set lo up");
        has(&lines, "ip netns exec RED sysctl -w net.ipv4.ip_unprivileged_port_start=0");
        assert!(!lines.iter().any(|l| l.contains("ping_group_range")), "no user namespace: ping is root's");
        has(&lines, "# blue is not up yet: the veth pair is made when it comes up, by its host-setup");
        has(&lines, "  hostname RED");
        has(
            &lines,
            &format!(
                "  mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {}",
                s("layer"),
                s("containers/red/upper"),
                s("containers/red/work"),
                s("containers/red/merge")
            ),
        );
        let made: Vec<String> = rec.records.iter().map(Record::to_line).collect();
        assert_eq!(made[0], format!("{{\"layer\":{{\"dir\":\"{}\"}}}}", s("layer")));
        assert_eq!(made[1], format!("{{\"made\":{{\"dir\":\"{}\"}}}}", s("containers/red")));
        assert_eq!(made[2], "{\"made\":{\"netns\":\"RED\"}}");
        if v == 1 {
            for c in ["cpu", "cpuacct", "memory", "pids", "devices"] {
                has(&lines, &format!("mkdir -p /sys/fs/cgroup/{c}/host-setup/red"));
                has(&lines, &format!("  echo 0 > /sys/fs/cgroup/{c}/host-setup/red/tasks"));
            }
            has(&lines, "echo 100000 > /sys/fs/cgroup/cpu/host-setup/red/cpu.cfs_period_us");
            has(&lines, "echo 40000 > /sys/fs/cgroup/cpu/host-setup/red/cpu.cfs_quota_us");
            has(&lines, "echo 209715200 > /sys/fs/cgroup/memory/host-setup/red/memory.limit_in_bytes");
            has(&lines, "echo 0 > /sys/fs/cgroup/memory/host-setup/red/memory.swappiness");
            has(&lines, "echo 512 > /sys/fs/cgroup/pids/host-setup/red/pids.max");
            assert_eq!(made.len(), 3 + 5, "layer, dir, netns and five cgroups: {made:?}");
        } else {
            has(&lines, "echo '+cpu +memory +pids' > /sys/fs/cgroup/cgroup.subtree_control   # those not on yet; down of the last container turns them off");
            has(&lines, "mkdir -p /sys/fs/cgroup/host-setup; echo '+cpu +memory +pids' > /sys/fs/cgroup/host-setup/cgroup.subtree_control");
            has(&lines, "mkdir -p /sys/fs/cgroup/host-setup/red");
            has(&lines, "echo '40000 100000' > /sys/fs/cgroup/host-setup/red/cpu.max");
            has(&lines, "echo 209715200 > /sys/fs/cgroup/host-setup/red/memory.max");
            has(
                &lines,
                "  echo 0 > /sys/fs/cgroup/host-setup/red/cgroup.procs   # host-setup: clone3 CLONE_INTO_CGROUP",
            );
            assert_eq!(made.last().unwrap(), "{\"made\":{\"cgroup\":\"/sys/fs/cgroup/host-setup/red\"}}");
            assert_eq!(made.len(), 5, "layer, dir, netns, the root's controllers, the cgroup: {made:?}");
        }

        // blue second: red is up, so blue makes the pair, both ends in one request.
        let (lines, rec) = both("blue", Some(red.clone()), cgroups, &state);
        assert_eq!(lines, rec.shell, "v{v}: --explain and the executor differ");
        has(&lines, "ip link add veth1 netns BLUE type veth peer name veth0 netns RED");
        has(&lines, "ip netns exec BLUE ip addr add dev veth1 11.11.11.3/24 brd +");
        has(&lines, "ip netns exec RED ip addr add dev veth0 11.11.11.2/24 brd +");
        has(&lines, "ip netns exec RED ip link set veth0 up");
        has(&lines, "  hostname BLUE");
        let link = Record::Made(crate::state::Resource::Link { netns: "BLUE".into(), iface: "veth1".into() });
        assert!(rec.records.contains(&link), "the pair is journalled by the end blue made");
    }
}

#[test]
fn explain_is_exactly_what_runs_with_a_user_namespace() {
    let tmp = TempState(std::env::temp_dir().join(format!("hs-explain-userns-{}", std::process::id())));
    let state = tmp.0.clone();
    let s = |p: &str| state.join(p).display().to_string();
    let mut green = spec("green", &state.join("layer"));
    green.userns = true;
    // The range comes from this host's /etc/subuid (or the default pool): the same
    // allocation the step makes, with no other container up.
    let ids = crate::userns::allocate(&crate::userns::Pool::load().unwrap(), &[]).unwrap();
    let v1 = Cgroups::v1_from_mountinfo(V1).unwrap();
    let (lines, rec) = walk_both(&green, None, &v1, &state);
    assert_eq!(lines, rec.shell, "--explain and the executor differ");
    assert_eq!(rec.steps, ["layers", "userns", "dirs", "netns", "link", "lease", "network", "cgroups", "launch"]);
    assert!(rec.records.contains(&Record::Made(crate::state::Resource::Ids(ids))), "the range is journalled");
    has(
        &lines,
        &format!("chown -h {}:{} {} {}", ids.uid, ids.gid, s("containers/green/upper"), s("containers/green/work")),
    );
    has(&lines, &format!("mkdir -m 710 {}", s("containers/green")));
    has(&lines, &format!("chgrp {} {}", ids.gid, s("containers/green")));
    has(&lines, &format!("ip netns exec GREEN sysctl -w net.ipv4.ping_group_range='{} {}'", ids.gid, ids.gid + 65535));
    // Ports below 1024: root inside has no CAP_NET_BIND_SERVICE where the netns belongs.
    has(&lines, "ip netns exec GREEN sysctl -w net.ipv4.ip_unprivileged_port_start=0");
    has(
        &lines,
        &format!(
            "nsenter -t $! -m mount --bind -o ro,X-mount.idmap=/proc/$!/ns/user {} {}",
            s("layer"),
            s("containers/green/lower/0")
        ),
    );
    has(
        &lines,
        "# the child, before it becomes root inside: echo 0 > /sys/fs/cgroup/memory/host-setup/green/tasks (a file the host opened)",
    );
    assert!(!lines.iter().any(|l| l.starts_with("  echo 0 >")), "init joins no cgroup itself");
}

#[test]
fn explain_is_exactly_what_runs_for_a_container_on_a_bridge_network() {
    let tmp = TempState(std::env::temp_dir().join(format!("hs-explain-net-{}", std::process::id())));
    let state = tmp.0.clone();
    let net = crate::network::Network {
        name: "web".into(),
        bridge: "web".into(),
        subnet: "10.80.0.0".parse().unwrap(),
        prefix_len: 16,
        gateway: "10.80.0.1".parse().unwrap(),
        uplink: Some("eth9".into()),
        ns: 4026531840,
        auto: false,
    };
    let dir = state.join("networks/web");
    std::fs::create_dir_all(dir.join("leases")).unwrap();
    std::fs::write(dir.join("network.json"), serde_json::to_string(&net).unwrap()).unwrap();
    std::fs::write(dir.join("leases/10.80.0.2"), "other\n").unwrap();
    let opts =
        Options { net: Some("web".into()), publish: vec!["8080:80".into(), "53:53/udp".into()], ..Default::default() };
    let mut spec = Spec::new("green", &opts).unwrap();
    spec.layers = vec![Layer::Dir(state.join("layer"))];
    spec.userns = false; // its own test above
    let paths = Paths::new(&state);
    let cgroups = Cgroups::V2(PathBuf::from("/sys/fs/cgroup"));
    let (lines, rec) = walk_both(&spec, None, &cgroups, &state);
    assert_eq!(lines, rec.shell, "--explain and the executor differ");
    let host_end = super::network::host_end(&paths, "green");
    let lease = format!(
        "# lease 10.80.0.3 (the next free address): {}/networks/web/leases/10.80.0.3 made with O_EXCL, naming green",
        state.display()
    );
    has(&lines, &lease);
    has(&lines, &format!("ip link add {host_end} type veth peer name eth0 netns GREEN"));
    has(&lines, &format!("ip link set {host_end} master web up"));
    has(&lines, "ip netns exec GREEN ip addr add dev eth0 10.80.0.3/16 brd +");
    has(&lines, "ip netns exec GREEN ip route add default via 10.80.0.1");
    has(&lines, "ip netns exec GREEN sysctl -w net.ipv4.ip_unprivileged_port_start=0");
    has(&lines, &format!("nft 'add rule ip host-setup-{host_end} prerouting fib daddr type local tcp dport 8080 dnat to 10.80.0.3:80'"));
    has(
        &lines,
        &format!(
            "nft 'add rule ip host-setup-{host_end} output fib daddr type local udp dport 53 dnat to 10.80.0.3:53'"
        ),
    );
    use crate::state::Resource;
    let made: Vec<&Resource> =
        rec.records.iter().filter_map(|r| if let Record::Made(m) = r { Some(m) } else { None }).collect();
    let want = [
        Resource::Lease { network: "web".into(), container: "green".into() },
        Resource::HostLink { iface: host_end.clone(), ns: 4026531840 },
        Resource::NftTable { name: format!("host-setup-{host_end}"), ns: 4026531840 },
    ];
    for w in &want {
        assert!(made.contains(&w), "{w:?} not journalled: {made:?}");
    }
    assert!(!lines.iter().any(|l| l.contains("veth0")), "no pair on a network");
}
