//! What a container is: its name and the names derived from it, its address and
//! peer, its limits, its layers and its command. `red` and `blue` carry the
//! tutorial's defaults; any other name works with explicit options. Everything a
//! user types is validated here, before anything on the host changes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::cgroup::Limits;
use crate::error::Result;
use crate::usage;

/// Names that are sub-commands and therefore cannot name a container.
pub const RESERVED: [&str; 8] = ["up", "run", "exec", "down", "status", "verify", "help", "version"];

/// The tutorial's limits: 40 % of one CPU, 200 MiB, no swap.
pub const DEFAULT_CPU_PERCENT: u64 = 40;
pub const DEFAULT_MEMORY: u64 = 200 << 20;
pub const CPU_PERIOD_US: u64 = 100_000;
/// Processes per container unless --pids says otherwise (none with --privileged).
pub const DEFAULT_PIDS: u64 = 512;
const MIN_MEMORY: u64 = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// devices, no device or pids limits (see README, "containment").
    pub privileged: bool,
}

/// What PID 1 does with the main process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

impl Pid1 {
    pub fn as_str(self) -> &'static str {
        match self {
            Pid1::Supervise => "supervise",
            Pid1::SuperviseGroup => "supervise-group",
            Pid1::Exec => "exec",
        }
    }
    pub fn parse(s: &str) -> Option<Pid1> {
        [Pid1::Supervise, Pid1::SuperviseGroup, Pid1::Exec].into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    /// This end of the veth pair, inside the container's netns: `veth0`.
    pub iface: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The container at the other end of the pair: `blue`.
    pub peer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
        let mut net = tutorial_defaults(name);
        if let Some(a) = &opts.address {
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
        if let Some(i) = &opts.iface {
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
        })
    }

    pub fn cpu_percent(&self) -> u64 {
        self.limits.cpu_quota_us * 100 / self.limits.cpu_period_us
    }
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

fn validate_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(usage!("invalid hostname {h:?}: use letters, digits and '-', at most 64 characters (e.g. RED)"))
    }
}

/// `11.11.11.2/24` -> (11.11.11.2, 24). A host address in a usable unicast subnet.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = |why: &str| usage!("invalid address {text:?}: {why} (e.g. 11.11.11.2/24)");
    let (a, p) = text.split_once('/').ok_or_else(|| bad("give it with a prefix length"))?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix_len: u8 = p.parse().map_err(|_| bad("the prefix length is a number from 1 to 30"))?;
    if !(1..=30).contains(&prefix_len) {
        return Err(bad("the prefix length is a number from 1 to 30"));
    }
    if addr.is_loopback()
        || addr.is_multicast()
        || addr.is_unspecified()
        || addr.is_broadcast()
        || addr.octets()[0] >= 240
    {
        return Err(bad("not a unicast host address"));
    }
    let host_mask = u32::MAX >> prefix_len;
    let host = u32::from(addr) & host_mask;
    if host == 0 || host == host_mask {
        return Err(bad(&format!("that is the network or broadcast address of its /{prefix_len}")));
    }
    Ok((addr, prefix_len))
}

/// Do two addresses share a subnet (the pair only talks on-link: no routes)?
pub fn same_subnet(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let mask = |p: u8| u32::MAX << (32 - p as u32);
    a.1 == b.1 && u32::from(a.0) & mask(a.1) == u32::from(b.0) & mask(b.1)
}

/// `40` or `40%` of one CPU; more than 100 uses several CPUs.
pub fn parse_cpu_percent(text: &str) -> Result<u64> {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let max = 100 * cpus;
    let n: u64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| usage!("invalid CPU share {text:?}: give a percentage of one CPU from 1 to {max} (e.g. 40)"))?;
    if n == 0 || n > max {
        return Err(usage!(
            "invalid CPU share {text:?}: give a percentage of one CPU from 1 to {max} (this host has {cpus} CPUs)"
        ));
    }
    Ok(n)
}

/// Memory sizes as users type them: `209715200`, `200M`, `200MiB`, `1G`, `512k`.
/// Suffixes are binary (K = 1024), as in the kernel's and docker's.
pub fn parse_memory(text: &str) -> Result<u64> {
    let bad = || usage!("invalid memory size {text:?}: give bytes or a number with K, M or G (e.g. 200M)");
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if bytes < MIN_MEMORY {
        return Err(usage!("memory size {text:?} is too small: a container needs at least 8M"));
    }
    Ok(bytes)
}

/// A pids limit: how many processes and threads the container may have at once.
pub fn parse_pids(text: &str) -> Result<u64> {
    match text.parse::<u64>() {
        Ok(n) if (8..=4_194_304).contains(&n) => Ok(n),
        _ => Err(usage!("invalid pids limit {text:?}: give a number of processes from 8 to 4194304 (e.g. 512)")),
    }
}

/// `200M` style, for messages and `status`.
pub fn format_bytes(b: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if b >= 1 << shift && b % (1 << shift) == 0 {
            return format!("{}{unit}", b >> shift);
        }
    }
    if b >= 1 << 20 {
        return format!("{:.1}M", b as f64 / (1u64 << 20) as f64);
    }
    format!("{b}")
}

/// A `--layer DIR`: an existing directory, absolute once resolved, and free of the
/// characters overlayfs uses to separate its options (`:` and `,`).
pub fn validate_layer_dir(dir: &str) -> Result<PathBuf> {
    let p = Path::new(dir);
    let abs = p.canonicalize().map_err(|e| usage!("--layer {dir}: {}", crate::error::io_text(&e)))?;
    if !abs.is_dir() {
        return Err(usage!("--layer {dir}: not a directory"));
    }
    let s = abs.to_string_lossy();
    if s.contains([':', ',', '\\']) || s.chars().any(char::is_whitespace) {
        return Err(usage!(
            "--layer {dir}: overlayfs cannot take a path with ':', ',', '\\' or white space; move or link it"
        ));
    }
    Ok(abs)
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
        let cases: [Case; 9] = [
            ("Red", |_| {}, "invalid container name \"Red\""),
            ("a-very-long-container-name", |_| {}, "1 to 15"),
            ("../x", |_| {}, "invalid container name"),
            ("status", |_| {}, "it is a host-setup command"),
            ("x", |o| o.peer = Some("y".into()), "needs an address"),
            ("red", |o| o.peer = Some("red".into()), "its own peer"),
            ("red", |o| o.address = Some("11.11.11.0/24".into()), "network or broadcast"),
            ("red", |o| o.cpu = Some("0".into()), "invalid CPU share"),
            ("red", |o| o.memory = Some("1M".into()), "too small"),
        ];
        for (name, f, want) in cases {
            let e = spec(name, f).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
            assert!(e.to_string().contains(want), "{name}: {e} (wanted {want:?})");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_cidr("11.11.11.2/24").unwrap(), (Ipv4Addr::new(11, 11, 11, 2), 24));
        for bad in
            ["11.11.11.2", "11.11.11.2/33", "11.11.11.2/0", "127.0.0.2/8", "224.0.0.1/24", "x/24", "11.11.11.255/24"]
        {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        let a = parse_cidr("11.11.11.2/24").unwrap();
        assert!(same_subnet(a, parse_cidr("11.11.11.3/24").unwrap()));
        assert!(!same_subnet(a, parse_cidr("11.11.12.3/24").unwrap()));
        assert!(!same_subnet(a, parse_cidr("11.11.11.3/25").unwrap()));
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("209715200").unwrap(), 209715200);
        assert_eq!(parse_memory("200M").unwrap(), 209715200);
        assert_eq!(parse_memory("200MiB").unwrap(), 209715200);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("16384k").unwrap(), 16 << 20);
        for bad in ["", "M", "200X", "-5M", "99999999999999G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(209715200), "200M");
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(1_500_000), "1.4M");
    }

    #[test]
    fn iface_and_hostname() {
        assert!(validate_iface("veth0").is_ok());
        for bad in ["", "lo", "a/b", "with space", "sixteen-chars-xx"] {
            assert!(validate_iface(bad).is_err(), "{bad:?}");
        }
        assert!(validate_hostname("RED").is_ok());
        assert!(validate_hostname("-x").is_err());
    }

    #[test]
    fn layer_dirs_must_exist() {
        let e = validate_layer_dir("/nonexistent/layer").unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
        assert_eq!(validate_layer_dir("/").unwrap(), PathBuf::from("/"));
    }
}
