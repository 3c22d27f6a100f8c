//! What a container is: its name and the names derived from it, its address and
//! peer, its limits, its layers and its command. `red` and `blue` carry the
//! tutorial's defaults; any other name works with explicit options. Everything a
//! user types is validated here, before anything on the host changes.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroup::Limits;
use crate::error::Result;
use crate::seccomp::Seccomp;
use crate::usage;

mod explicit;
mod join;
pub mod runopts;
pub mod runopts_show;
mod values;

pub use explicit::*;
pub use join::*;
pub use values::*;

/// Names that are sub-commands and therefore cannot name a container.
pub const RESERVED: [&str; 12] =
    ["up", "run", "exec", "down", "status", "logs", "verify", "network", "export", "image", "help", "version"];

/// The tutorial's limits: 40 % of one CPU, 200 MiB, no swap.
pub const DEFAULT_CPU_PERCENT: u64 = 40;
pub const DEFAULT_MEMORY: u64 = 200 << 20;
pub const CPU_PERIOD_US: u64 = 100_000;
/// Processes per container unless --pids says otherwise (none with --privileged).
pub const DEFAULT_PIDS: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Lower-case container name: `red`.
    pub name: String,
    /// Named network namespace (`ip netns exec RED ...` works): the name in upper case.
    pub netns: String,
    /// Hostname inside (the tutorial's `hostname RED`).
    pub hostname: String,
    /// The veth end and address; None: a namespace with only loopback.
    pub net: Option<Net>,
    pub limits: Limits,
    /// Image layers, topmost first: `--layer` dirs, then the built-in `tools`, `myroot`.
    pub layers: Vec<Layer>,
    /// The main process; empty: init alone keeps the container up (`--pause`).
    pub command: Vec<String>,
    /// How init runs the main process.
    pub pid1: Pid1,
    /// The tutorial's full root: no capability drop, no masked /proc, the host's
    /// devices, no device or pids limits (see docs/containment.md).
    pub privileged: bool,
    /// The seccomp filter (unconfined with --privileged). Absent in journals
    /// written before it existed: those containers ran unfiltered.
    #[serde(default = "unconfined")]
    pub seccomp: Seccomp,
    /// A user namespace: root inside is a range of host ids (src/userns/).
    /// Absent in journals written before it existed.
    #[serde(default)]
    pub userns: bool,
    /// On a bridge network (`--net NETWORK`) instead of the pair; `net` is then None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinSpec>,
    /// `--disk`: the most the container may write, in bytes (its upper dir is a
    /// filesystem of that size, disk.rs); None: no limit of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// The main process's log: size limit and rotation (logs.rs).
    #[serde(default)]
    pub log: crate::logs::Limits,
    /// Described in full by the caller (an OCI bundle, explicit.rs) instead of
    /// the defaults above; the steps read it where it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit: Option<Box<Explicit>>,
    /// `--image`, -e, -w, -u, -v, --tmpfs, --read-only (runopts.rs): the image
    /// used, the environment, and what init does inside (records on --spec-fd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Box<runopts::RunSpec>>,
}

fn unconfined() -> Seccomp {
    Seccomp::Unconfined
}

/// What PID 1 does with the main process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pid1 {
    /// init stays PID 1: forwards signals to the main process, reaps, passes on its status.
    #[default]
    Supervise,
    /// The same, but signals go to the main process's whole process group (`init -g`).
    SuperviseGroup,
    /// The tutorial's way: the main process is exec'd as PID 1 (`init --exec`). It
    /// then ignores SIGTERM from the host, leaves zombies, and `sh -i` without a
    /// terminal dies when an orphan exits.
    Exec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Net {
    /// This end of the veth pair, inside the container's netns: `veth0`.
    pub iface: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The container at the other end of the pair: `blue`.
    pub peer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// Built by host-setup from a manifest in layers/ (`myroot`, `tools`).
    Builtin(String),
    /// A directory the user gave with `--layer`.
    Dir(PathBuf),
}

/// What the user may set on the command line (all optional).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub address: Option<String>,
    pub peer: Option<String>,
    pub iface: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pids: Option<String>,
    pub hostname: Option<String>,
    pub layers: Vec<String>,
    pub command: Vec<String>,
    pub pid1: Pid1,
    pub privileged: bool,
    /// `--seccomp default|unconfined|FILE`; None: default (unconfined with --privileged).
    pub seccomp: Option<String>,
    /// `--userns` (Some(true)) or `--no-userns`; None: the default (userns_default).
    pub userns: Option<bool>,
    /// `--net pair|none|NETWORK`; None: pair (red, blue, `--address`) or only loopback.
    pub net: Option<String>,
    /// `-p HOSTPORT:PORT[/PROTO]` (with `--net NETWORK`).
    pub publish: Vec<String>,
    /// `--disk SIZE`: the most the container may write.
    pub disk: Option<String>,
    /// `--log-max-size SIZE`, `--log-max-files N` (logs.rs).
    pub log_max_size: Option<String>,
    pub log_max_files: Option<String>,
}

/// Whether a container gets a user namespace when neither --userns nor
/// --no-userns is given: every container but the tutorial's red and blue (whose
/// root is the host's root, as in the tutorial) and --privileged ones. It proved
/// itself: the whole test suite passes with it (docs/containment.md, "User namespaces").
pub fn userns_default(name: &str, privileged: bool) -> bool {
    !privileged && name != "red" && name != "blue"
}

/// The tutorial's two containers.
fn tutorial_defaults(name: &str) -> Option<Net> {
    let (iface, last, peer) = match name {
        "red" => ("veth0", 2, "blue"),
        "blue" => ("veth1", 3, "red"),
        _ => return None,
    };
    Some(Net { iface: iface.into(), addr: Ipv4Addr::new(11, 11, 11, last), prefix_len: 24, peer: Some(peer.into()) })
}

impl Spec {
    /// Build and validate the spec of container `name` from the user's options.
    pub fn new(name: &str, opts: &Options) -> Result<Spec> {
        validate_name(name)?;
        let mode = opts.net.as_deref().map(parse_net).transpose()?.unwrap_or(NetMode::Pair);
        if mode != NetMode::Pair && opts.peer.is_some() {
            return Err(usage!("--peer is for --net pair (the tutorial's veth pair), not --net {}", net_word(opts)));
        }
        if !matches!(mode, NetMode::Network(_)) && !opts.publish.is_empty() {
            return Err(usage!("-p needs a network to publish from: add --net {DEFAULT_NETWORK} (or another network)"));
        }
        if mode == NetMode::None && (opts.address.is_some() || opts.iface.is_some()) {
            return Err(usage!("--net none has only loopback: drop --address and --iface"));
        }
        let mut net = if mode == NetMode::Pair { tutorial_defaults(name) } else { None };
        let join = match &mode {
            NetMode::Network(n) => {
                if let Some(i) = &opts.iface {
                    validate_iface(i)?;
                }
                Some(join(n.clone(), opts.iface.as_deref(), opts.address.as_deref(), &opts.publish)?)
            }
            _ => None,
        };
        if let Some(a) = opts.address.as_ref().filter(|_| mode == NetMode::Pair) {
            let (addr, prefix_len) = parse_cidr(a)?;
            let n = net.get_or_insert_with(|| Net { iface: "eth0".into(), addr, prefix_len, peer: None });
            n.addr = addr;
            n.prefix_len = prefix_len;
        }
        if let Some(p) = &opts.peer {
            let n = net.as_mut().ok_or_else(|| {
                usage!("--peer {p} needs an address for {name}: add --address, e.g. --address 11.11.12.2/24")
            })?;
            if p == name {
                return Err(usage!("--peer {p}: a container cannot be its own peer"));
            }
            validate_name(p).map_err(|e| usage!("--peer: {e}"))?;
            n.peer = Some(p.clone());
        }
        if let Some(i) = opts.iface.as_ref().filter(|_| mode == NetMode::Pair) {
            validate_iface(i)?;
            net.as_mut().ok_or_else(|| usage!("--iface {i} needs an address for {name}: add --address"))?.iface =
                i.clone();
        }
        let hostname = match &opts.hostname {
            Some(h) => {
                validate_hostname(h)?;
                h.clone()
            }
            None => name.to_uppercase(),
        };
        let cpu_percent = match &opts.cpu {
            Some(c) => parse_cpu_percent(c)?,
            None => DEFAULT_CPU_PERCENT,
        };
        let memory_bytes = match &opts.memory {
            Some(m) => parse_memory(m)?,
            None => DEFAULT_MEMORY,
        };
        let disk = opts.disk.as_deref().map(parse_disk).transpose()?;
        if let Some(d) = disk.filter(|d| *d >= memory_bytes) {
            // The upper dir is a tmpfs (disk.rs): its pages count against the memory limit.
            return Err(usage!(
                "--disk {} is not below --memory {}: what the container writes is kept in memory (a tmpfs) and counts against its memory limit; raise --memory or lower --disk",
                format_bytes(d),
                format_bytes(memory_bytes)
            ));
        }
        let pids_max = match &opts.pids {
            Some(p) => Some(parse_pids(p)?),
            None if opts.privileged => None,
            None => Some(DEFAULT_PIDS),
        };
        if let Some(first) = opts.command.first() {
            if first.is_empty() {
                return Err(usage!("the command after -- is empty: give a program, e.g. -- /bin/sh -c 'echo hi'"));
            }
        }
        if opts.pid1 == Pid1::Exec && opts.command.is_empty() {
            return Err(usage!("--exec-as-pid1 needs a command after -- (it replaces init as PID 1)"));
        }
        let seccomp = match (&opts.seccomp, opts.privileged) {
            (None, false) => Seccomp::Default,
            (None, true) => Seccomp::Unconfined,
            (Some(v), true) if v != "unconfined" => {
                return Err(usage!("--seccomp {v} with --privileged: a privileged container runs unconfined"))
            }
            (Some(v), _) => Seccomp::from_arg(v)?,
        };
        let userns = match (opts.userns, opts.privileged) {
            (Some(true), true) => {
                return Err(usage!("--userns with --privileged: a privileged container's root is the host's root"))
            }
            (Some(u), _) => u,
            (None, p) => userns_default(name, p),
        };
        let mut layers = Vec::new();
        for l in &opts.layers {
            layers.push(Layer::Dir(validate_layer_dir(l)?));
        }
        layers.push(Layer::Builtin("tools".into()));
        layers.push(Layer::Builtin("myroot".into()));
        Ok(Spec {
            name: name.to_string(),
            netns: name.to_uppercase(),
            hostname,
            net,
            limits: Limits {
                cpu_quota_us: cpu_percent * CPU_PERIOD_US / 100,
                cpu_period_us: CPU_PERIOD_US,
                memory_bytes,
                pids_max,
                restrict_devices: !opts.privileged,
            },
            layers,
            command: opts.command.clone(),
            pid1: opts.pid1,
            privileged: opts.privileged,
            seccomp,
            userns,
            join,
            disk,
            log: crate::logs::Limits::parse(opts.log_max_size.as_deref(), opts.log_max_files.as_deref())?,
            explicit: None,
            run: None,
        })
    }

    pub fn cpu_percent(&self) -> u64 {
        self.limits.cpu_quota_us * 100 / self.limits.cpu_period_us
    }
}

fn net_word(opts: &Options) -> &str {
    opts.net.as_deref().unwrap_or("pair")
}

/// Container names: 1–15 of [a-z0-9_-], starting with a letter or digit. They
/// become a directory name, a cgroup name and (in upper case) a netns name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(usage!(
            "invalid container name {name:?}: use 1 to 15 lower-case letters, digits, '-' or '_', starting with a letter or digit (e.g. red)"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(usage!("invalid container name {name:?}: it is a host-setup command; pick another name"));
    }
    Ok(())
}

/// Network interface names: what the kernel takes (net::check_ifname), and not
/// `lo`, which every namespace has already.
pub fn validate_iface(iface: &str) -> Result<()> {
    crate::net::check_ifname(iface).map_err(|e| usage!("{e} (e.g. veth0)"))?;
    if iface == "lo" {
        return Err(usage!("invalid interface name \"lo\": every namespace has it already; pick another (e.g. veth0)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, f: impl FnOnce(&mut Options)) -> Result<Spec> {
        let mut o = Options::default();
        f(&mut o);
        Spec::new(name, &o)
    }

    #[test]
    fn red_and_blue_are_the_tutorial() {
        let red = spec("red", |_| {}).unwrap();
        assert_eq!(red.netns, "RED");
        assert_eq!(red.hostname, "RED");
        let net = red.net.unwrap();
        assert_eq!((net.iface.as_str(), net.addr, net.prefix_len), ("veth0", Ipv4Addr::new(11, 11, 11, 2), 24));
        assert_eq!(net.peer.as_deref(), Some("blue"));
        assert_eq!(
            red.limits,
            Limits { pids_max: Some(DEFAULT_PIDS), restrict_devices: true, ..Limits::TUTORIAL },
            "the tutorial's limits, contained"
        );
        let free = spec("red", |o| o.privileged = true).unwrap();
        assert_eq!(free.limits, Limits::TUTORIAL, "--privileged: only the tutorial's limits");
        assert_eq!(red.layers, vec![Layer::Builtin("tools".into()), Layer::Builtin("myroot".into())]);
        let blue = spec("blue", |_| {}).unwrap().net.unwrap();
        assert_eq!((blue.iface.as_str(), blue.addr), ("veth1", Ipv4Addr::new(11, 11, 11, 3)));
        assert_eq!(blue.peer.as_deref(), Some("red"));
    }

    #[test]
    fn a_user_namespace_by_default_except_for_the_tutorial_and_privileged() {
        assert!(spec("green", |_| {}).unwrap().userns);
        assert!(!spec("red", |_| {}).unwrap().userns);
        assert!(!spec("blue", |_| {}).unwrap().userns);
        assert!(spec("red", |o| o.userns = Some(true)).unwrap().userns);
        assert!(!spec("green", |o| o.userns = Some(false)).unwrap().userns);
        assert!(!spec("green", |o| o.privileged = true).unwrap().userns);
        let e = spec("green", |o| (o.privileged, o.userns) = (true, Some(true))).unwrap_err();
        assert!(e.to_string().contains("--userns with --privileged"), "{e}");
    }

    #[test]
    fn other_names_take_options() {
        let g = spec("green", |o| {
            o.address = Some("10.9.0.5/16".into());
            o.peer = Some("yellow".into());
            o.cpu = Some("25%".into());
            o.memory = Some("1G".into());
        })
        .unwrap();
        assert_eq!(g.netns, "GREEN");
        let n = g.net.unwrap();
        assert_eq!((n.iface.as_str(), n.addr, n.prefix_len), ("eth0", Ipv4Addr::new(10, 9, 0, 5), 16));
        assert_eq!(g.limits.cpu_quota_us, 25000);
        assert_eq!(g.limits.memory_bytes, 1 << 30);
        assert!(spec("solo", |_| {}).unwrap().net.is_none());
    }

    #[test]
    fn bad_input_is_a_usage_error_that_says_what_is_right() {
        type Case = (&'static str, fn(&mut Options), &'static str);
        let cases: [Case; 11] = [
            ("Red", |_| {}, "invalid container name \"Red\""),
            ("a-very-long-container-name", |_| {}, "1 to 15"),
            ("../x", |_| {}, "invalid container name"),
            ("status", |_| {}, "it is a host-setup command"),
            ("x", |o| o.peer = Some("y".into()), "needs an address"),
            ("red", |o| o.peer = Some("red".into()), "its own peer"),
            ("red", |o| o.address = Some("11.11.11.0/24".into()), "network or broadcast"),
            ("red", |o| o.cpu = Some("0".into()), "invalid CPU share"),
            ("red", |o| o.memory = Some("1M".into()), "too small"),
            ("red", |o| o.disk = Some("200M".into()), "--disk 200M is not below --memory 200M"),
            ("red", |o| o.disk = Some("20Q".into()), "invalid disk size"),
        ];
        for (name, f, want) in cases {
            let e = spec(name, f).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
            assert!(e.to_string().contains(want), "{name}: {e} (wanted {want:?})");
        }
    }
}
