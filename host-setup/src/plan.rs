//! The bring-up as an ordered list of steps — the tutorial's sections in order:
//!
//! | step    | tutorial                         | module      |
//! |---------|----------------------------------|-------------|
//! | layers  | 1, 2: myroot and tools           | layers.rs   |
//! | dirs    | 4-1 5): /redfs/{container,work,merge} | state.rs |
//! | netns   | 3 1): ip netns add RED           | net/        |
//! | link    | 3 2)-3): veth pair, addresses, up | net/       |
//! | cgroups | 4-1 1)-2): mkdir + limits        | cgroup/     |
//! | launch  | 4-1 3) to 4-2 5): unshare, cgroup.procs, overlay, pivot_root, proc, hostname | launch.rs + init |
//!
//! Each step can run, describe itself as the tutorial's shell commands, and undo
//! what it made from the journal (state.rs). `down` and the recovery of an
//! interrupted `up` are the same thing: undo every journal record, newest first.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::cgroup::{self, Cgroups};
use crate::error::{Error, Result, SysContext};
use crate::launch::{self, InitArgs};
use crate::spec::{self, Layer, Spec};
use crate::state::{self, Journal, JournalWriter, Lock, Paths, Proc, Record, Resource, Role};
use crate::{fault, layers, net};

/// Where host-setup's own binaries are: `init` (and `escape_chroot`, which goes
/// into the myroot layer) live next to the host-setup executable.
#[derive(Debug, Clone)]
pub struct Bins {
    pub init: PathBuf,
    pub own_dir: PathBuf,
}

impl Bins {
    pub fn locate(init_override: Option<PathBuf>) -> Result<Bins> {
        let exe = std::env::current_exe().sys(|| "readlink /proc/self/exe".into())?;
        let own_dir = exe.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        let init = init_override.unwrap_or_else(|| own_dir.join("init"));
        Ok(Bins { init, own_dir })
    }
}

/// Foreground (`run`: host-setup waits, forwarding signals) or background (`up`:
/// a supervisor process stays behind as init's parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Background,
    Foreground,
}

/// Everything the steps share.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub paths: &'a Paths,
    pub cgroups: &'a Cgroups,
    pub cgroup_parent: &'a str,
    pub bins: &'a Bins,
    pub mode: Mode,
    /// Foreground with a terminal: the container's own terminal (tty.rs).
    pub console: Option<RawFd>,
    pub journal: JournalWriter,
    /// The lock on this container (released in the supervisor after fork).
    pub lock: &'a mut Lock,
    // What earlier steps produced:
    pub layer_dirs: Vec<PathBuf>,
    pub cgroup_dirs: Vec<PathBuf>,
    /// The container's init once launched (foreground: our child).
    pub init: Option<Proc>,
}

impl Ctx<'_> {
    fn record(&mut self, r: Record) -> Result<()> {
        self.journal.append(&r)
    }
}

pub trait Step {
    /// A short name for logs and `--explain`: "netns".
    fn name(&self) -> &'static str;
    /// The tutorial's shell commands that do what this step does.
    fn explain(&self, ctx: &Ctx) -> Vec<String>;
    /// Do it, journaling each thing before it is made.
    fn run(&self, ctx: &mut Ctx) -> Result<()>;
    /// Undo one journal record this step made. Absent things are fine.
    fn undo(&self, _r: &Resource, _t: &Teardown) -> Result<()> {
        Ok(())
    }
    /// Does this step own that record?
    fn owns(&self, _r: &Resource) -> bool {
        false
    }
}

pub fn steps() -> Vec<Box<dyn Step>> {
    vec![Box::new(Layers), Box::new(Dirs), Box::new(Netns), Box::new(Link), Box::new(Cgroup), Box::new(Launch)]
}

// --- the steps ------------------------------------------------------------------

struct Layers;

impl Layers {
    fn builder(ctx: &Ctx) -> layers::Builder {
        layers::Builder::new(ctx.paths.layers(), ctx.bins.own_dir.clone())
    }
}

impl Step for Layers {
    fn name(&self) -> &'static str {
        "layers"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        let b = Self::builder(ctx);
        let mut out = vec![];
        for l in &ctx.spec.layers {
            match l {
                Layer::Builtin(n) => match layers::builtin(n) {
                    Some(m) => {
                        out.extend(b.plan(&m).map(|p| p.shell()).unwrap_or_else(|e| vec![format!("# layer {n}: {e}")]))
                    }
                    None => out.push(format!("# unknown layer {n}")),
                },
                Layer::Dir(d) => out.push(format!("# layer {} is used as it is", d.display())),
            }
        }
        out
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        // Held from ensure() to prune(): a layer dir another host-setup has just
        // been given must be in its journal before anyone may prune it.
        let _lock = state::global_lock(ctx.paths)?;
        let b = Self::builder(ctx);
        let mut dirs = vec![];
        for l in &ctx.spec.layers {
            let dir = match l {
                Layer::Builtin(n) => {
                    let m = layers::builtin(n).ok_or_else(|| crate::failed!("no built-in layer named {n}"))?;
                    b.ensure(&m)?
                }
                Layer::Dir(d) => d.clone(),
            };
            ctx.record(Record::Layer(dir.clone()))?;
            dirs.push(dir);
        }
        // Old versions of the built-in layers go, unless a container still uses them.
        let mut keep = dirs.clone();
        for name in ctx.paths.container_names() {
            if let Ok(Some(j)) = Journal::read(ctx.paths, &name) {
                keep.extend(j.layer_dirs());
            }
        }
        if let Err(e) = b.prune(&keep) {
            log::warn!("pruning old layers: {e}");
        }
        ctx.layer_dirs = dirs;
        Ok(())
    }
}

/// The container's own directory: the overlay's upper (the tutorial's
/// /redfs/container), work and merge dirs.
struct Dirs;

impl Step for Dirs {
    fn name(&self) -> &'static str {
        "dirs"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        let (p, n) = (ctx.paths, &ctx.spec.name);
        vec![format!("mkdir -p {} {} {}", p.upper(n).display(), p.work(n).display(), p.merge(n).display())]
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let (p, n) = (ctx.paths, ctx.spec.name.clone());
        let dir = p.container(&n);
        ctx.record(Record::Made(Resource::Dir(dir.clone())))?;
        std::fs::create_dir(&dir).sys(|| format!("mkdir {}", dir.display()))?;
        for d in [p.upper(&n), p.work(&n), p.merge(&n)] {
            std::fs::create_dir(&d).sys(|| format!("mkdir {}", d.display()))?;
        }
        Ok(())
    }
    fn owns(&self, r: &Resource) -> bool {
        matches!(r, Resource::Dir(_))
    }
    fn undo(&self, r: &Resource, _t: &Teardown) -> Result<()> {
        let Resource::Dir(d) = r else { return Ok(()) };
        // The overlay was mounted only inside the container's mount namespace, which
        // died with its last process: what is left here are plain directories.
        if state::remove_tree(d)? {
            log::debug!("removed {}", d.display());
        }
        Ok(())
    }
}

struct Netns;

impl Step for Netns {
    fn name(&self) -> &'static str {
        "netns"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        let mut out = net::explain_create_netns(&ctx.spec.netns);
        out.extend(net::explain_loopback_up(&ctx.spec.netns));
        out
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        // Under the lock the link step takes: a peer coming up at the same time sees
        // this namespace either not at all or whole (the file, then the bind mount).
        let _lock = state::global_lock(ctx.paths)?;
        let ns = ctx.spec.netns.clone();
        ctx.record(Record::Made(Resource::Netns(ns.clone())))?;
        net::create_netns(&ns)?;
        net::set_loopback_up(&ns)
    }
    fn owns(&self, r: &Resource) -> bool {
        matches!(r, Resource::Netns(_))
    }
    fn undo(&self, r: &Resource, t: &Teardown) -> Result<()> {
        let Resource::Netns(ns) = r else { return Ok(()) };
        // Not while a peer is making a veth pair into this namespace.
        let _lock = state::global_lock(t.paths)?;
        // Delete our veth end first: its peer in the other container's namespace
        // goes with it now, not later when the kernel gets round to destroying
        // this namespace.
        if let Some(n) = t.spec.as_ref().and_then(|s| s.net.as_ref()) {
            if net::netns_exists(ns) {
                net::delete_link(ns, &n.iface)?;
            }
        }
        net::delete_netns(ns)?;
        Ok(())
    }
}

/// The veth pair to the peer, made by whichever of the two comes up second.
struct Link;

/// The other end of our link: a container that is up, in this state dir.
struct Partner {
    spec: Spec,
}

impl Link {
    /// Who to link with: our peer if it is up, or an up container that names us
    /// as its peer. Errors if the peer is up but wants someone else.
    fn partner(ctx: &Ctx) -> Result<Option<Partner>> {
        let me = ctx.spec;
        let Some(my_net) = &me.net else { return Ok(None) };
        let up = |name: &str| -> Option<Spec> {
            let j = Journal::read(ctx.paths, name).ok()??;
            let s = j.spec()?;
            (j.has_netns() && net::netns_exists(&s.netns)).then_some(s)
        };
        let candidate = match &my_net.peer {
            Some(p) => up(p),
            None => ctx
                .paths
                .container_names()
                .iter()
                .filter(|n| **n != me.name)
                .filter_map(|n| up(n))
                .find(|s| s.net.as_ref().and_then(|n| n.peer.as_deref()) == Some(me.name.as_str())),
        };
        let Some(spec) = candidate else { return Ok(None) };
        let their = spec.net.as_ref().ok_or_else(|| {
            crate::precondition!("{} is up without an address, so it cannot be {}'s peer", spec.name, me.name)
        })?;
        if let Some(p) = &their.peer {
            if *p != me.name {
                return Err(crate::precondition!("{} is up with peer {p}, not {}", spec.name, me.name));
            }
        }
        if !spec::same_subnet((my_net.addr, my_net.prefix_len), (their.addr, their.prefix_len)) {
            return Err(crate::precondition!(
                "{} ({}/{}) and {} ({}/{}) are not in the same subnet; the pair has no router between them",
                me.name,
                my_net.addr,
                my_net.prefix_len,
                spec.name,
                their.addr,
                their.prefix_len
            ));
        }
        Ok(Some(Partner { spec }))
    }

    fn ends(me: &Spec, them: &Spec) -> Option<(net::VethEnd, net::VethEnd)> {
        let end = |s: &Spec| {
            let n = s.net.as_ref()?;
            Some(net::VethEnd {
                netns: s.netns.clone(),
                ifname: n.iface.clone(),
                addr: n.addr,
                prefix_len: n.prefix_len,
            })
        };
        Some((end(me)?, end(them)?))
    }
}

impl Step for Link {
    fn name(&self) -> &'static str {
        "link"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        let Some(n) = &ctx.spec.net else { return vec!["# no address: the namespace has only lo".into()] };
        let peer_name = n.peer.clone().unwrap_or_else(|| "<peer>".into());
        let peer = Spec::new(&peer_name, &spec::Options::default()).ok();
        match peer.as_ref().and_then(|p| Self::ends(ctx.spec, p)) {
            Some((a, b)) => {
                let mut out =
                    vec![format!("# made by whichever of {} and {} comes up second:", ctx.spec.name, peer_name)];
                out.extend(net::explain_veth_pair(&a, &b));
                out
            }
            None => vec![format!(
                "# the veth pair is made when {peer_name} comes up (it names {} as its peer)",
                ctx.spec.name
            )],
        }
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let Some(my_net) = ctx.spec.net.clone() else { return Ok(()) };
        // One link at a time in this state dir: red and blue may come up at once,
        // and only one of them may make the pair.
        let _net_lock = state::global_lock(ctx.paths)?;
        let Some(partner) = Self::partner(ctx)? else {
            log::info!(
                "{}: {} is not up yet; the link is made when it comes up",
                ctx.spec.name,
                my_net.peer.as_deref().unwrap_or("no peer")
            );
            return Ok(());
        };
        if net::link_status(&ctx.spec.netns, &my_net.iface)?.is_some() {
            log::debug!("{} already exists in {}", my_net.iface, ctx.spec.netns);
            return Ok(());
        }
        let (a, b) = Self::ends(ctx.spec, &partner.spec).expect("both have addresses");
        ctx.record(Record::Made(Resource::Link { netns: a.netns.clone(), iface: a.ifname.clone() }))?;
        net::create_veth_pair(&a, &b)
    }
    fn owns(&self, r: &Resource) -> bool {
        matches!(r, Resource::Link { .. })
    }
    fn undo(&self, r: &Resource, _t: &Teardown) -> Result<()> {
        let Resource::Link { netns, iface } = r else { return Ok(()) };
        // Deleting one end of a veth pair deletes both.
        if net::netns_exists(netns) {
            net::delete_link(netns, iface)?;
        }
        Ok(())
    }
}

struct Cgroup;

impl Step for Cgroup {
    fn name(&self) -> &'static str {
        "cgroups"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        ctx.cgroups.explain(ctx.cgroup_parent, &ctx.spec.name, &ctx.spec.limits)
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let journal = &mut ctx.journal;
        ctx.cgroup_dirs = ctx.cgroups.create(ctx.cgroup_parent, &ctx.spec.name, &ctx.spec.limits, &mut |dir| {
            journal.append(&Record::Made(Resource::Cgroup(dir.to_path_buf())))
        })?;
        Ok(())
    }
    fn owns(&self, r: &Resource) -> bool {
        matches!(r, Resource::Cgroup(_))
    }
    fn undo(&self, r: &Resource, _t: &Teardown) -> Result<()> {
        let Resource::Cgroup(dir) = r else { return Ok(()) };
        // init and everything in its pid namespace are gone by now (the launch
        // step is undone first). Anything still in the cgroup is ours — it could
        // only get there through host-setup exec — and is killed.
        for pid in cgroup::procs(dir) {
            log::debug!("kill -KILL {pid} (left in {})", dir.display());
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        cgroup::remove(dir, Duration::from_secs(5))?;
        if let Some(parent) = dir.parent() {
            cgroup::remove_parent_if_empty(parent);
        }
        Ok(())
    }
}

struct Launch;

impl Launch {
    fn init_args(ctx: &Ctx) -> InitArgs {
        let (p, n) = (ctx.paths, &ctx.spec.name);
        InitArgs {
            init_bin: ctx.bins.init.clone(),
            cgroup_dirs: if ctx.cgroup_dirs.is_empty() {
                ctx.cgroups.dirs(ctx.cgroup_parent, n)
            } else {
                ctx.cgroup_dirs.clone()
            },
            netns: net::netns_path(&ctx.spec.netns),
            rootfs: p.merge(n),
            lower: ctx.layer_dirs.clone(),
            upper: p.upper(n),
            work: p.work(n),
            hostname: ctx.spec.hostname.clone(),
            command: ctx.spec.command.clone(),
            pid1: ctx.spec.pid1,
            contain: !ctx.spec.privileged,
        }
    }
}

impl Step for Launch {
    fn name(&self) -> &'static str {
        "launch"
    }
    fn explain(&self, ctx: &Ctx) -> Vec<String> {
        Self::init_args(ctx).explain()
    }
    fn run(&self, ctx: &mut Ctx) -> Result<()> {
        let args = Self::init_args(ctx);
        ctx.record(Record::Spec("init".into(), args.init_bin.display().to_string()))?;
        match ctx.mode {
            Mode::Foreground => {
                // Block the signals we forward before the child exists, so none is lost.
                launch::block_forwarded_signals()?;
                let (pid, ready) = launch::spawn(&args, ctx.console)?;
                let init = Proc::of(pid.as_raw())?;
                ctx.record(Record::Started(Role::Init, init))?;
                ctx.init = Some(init);
                if let Err(e) = launch::wait_ready(ready, launch::READY_TIMEOUT) {
                    // init wrote the reason on our terminal too.
                    let code = launch::wait_child(pid).unwrap_or(-1);
                    ctx.record(Record::Exited { code, oom_kills: oom_kills(ctx) })?;
                    return Err(launch::not_ready(e, code, true));
                }
                ctx.record(Record::Ready)
            }
            Mode::Background => {
                let init = start_supervised(ctx, &args)?;
                ctx.init = Some(init);
                Ok(())
            }
        }
    }
}

/// Fork the supervisor: it detaches (new session, stdio to console.log), starts
/// init, reports init's readiness back to us through a pipe, and then stays as
/// init's parent until it exits, to journal its exit status.
fn start_supervised(ctx: &mut Ctx, args: &InitArgs) -> Result<Proc> {
    use std::io::{Read, Write};
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe".into())?;
    let console = ctx.paths.console(&ctx.spec.name);
    match unsafe { nix::unistd::fork() }.sys(|| "fork the supervisor".into())? {
        nix::unistd::ForkResult::Child => {
            drop(report_r);
            // A daemon now: none of the parent's held signals, no fault points.
            launch::reset_signals_in_child();
            std::env::remove_var("HOST_SETUP_FAULT");
            // The supervisor must not hold the container's lock for its whole life.
            ctx.lock.release_in_child();
            let mut report = std::fs::File::from(report_w);
            let result = (|| -> Result<Proc> {
                nix::unistd::setsid().sys(|| "setsid".into())?;
                launch::redirect_stdio(&console)?;
                // Keep only the journal and the report pipe of whatever we inherited.
                launch::close_fds_except(&[ctx.journal.raw_fd(), std::os::fd::AsRawFd::as_raw_fd(&report)]);
                ctx.record(Record::Started(Role::Supervisor, Proc::of(std::process::id() as i32)?))?;
                let (pid, ready) = launch::spawn(args, None)?;
                let init = Proc::of(pid.as_raw())?;
                ctx.record(Record::Started(Role::Init, init))?;
                if let Err(e) = launch::wait_ready(ready, launch::READY_TIMEOUT) {
                    let code = launch::wait_child(pid).unwrap_or(-1);
                    ctx.record(Record::Exited { code, oom_kills: oom_kills(ctx) })?;
                    return Err(launch::not_ready(e, code, false));
                }
                ctx.record(Record::Ready)?;
                Ok(init)
            })();
            let code = match result {
                Ok(init) => {
                    let _ = writeln!(report, "ok {}", init.pid);
                    drop(report);
                    let code = launch::wait_child(nix::unistd::Pid::from_raw(init.pid)).unwrap_or(-1);
                    log::info!("{}: init exited with {code}", ctx.spec.name);
                    let _ = ctx.record(Record::Exited { code, oom_kills: oom_kills(ctx) });
                    0
                }
                Err(e) => {
                    let _ = writeln!(report, "code {}", e.exit_code());
                    let _ = writeln!(report, "error: {e}");
                    1
                }
            };
            std::process::exit(code);
        }
        nix::unistd::ForkResult::Parent { .. } => {
            drop(report_w);
            let mut text = String::new();
            let _ = std::fs::File::from(report_r).read_to_string(&mut text);
            if let Some(err) = text.lines().find_map(|l| l.strip_prefix("error: ")) {
                let code = text.lines().find_map(|l| l.strip_prefix("code ")?.parse().ok()).unwrap_or(1);
                return Err(launch::not_ready(Error::Failed(err.to_string()), code, false));
            }
            let pid: i32 = text.lines().find_map(|l| l.strip_prefix("ok ")?.trim().parse().ok()).ok_or_else(|| {
                crate::failed!("the supervisor died before init was ready; see {}", console.display())
            })?;
            // Re-read the journal for the start time the supervisor recorded.
            let j = Journal::read(ctx.paths, &ctx.spec.name)?.unwrap_or_default();
            Ok(j.proc(Role::Init).filter(|p| p.pid == pid).unwrap_or(Proc { pid, start: 0 }))
        }
    }
}

fn oom_kills(ctx: &Ctx) -> u64 {
    ctx.cgroups.usage(&ctx.cgroup_dirs).oom_kills
}

// --- up and down ----------------------------------------------------------------

/// Options for bringing a container up.
pub struct Up<'a> {
    pub spec: &'a Spec,
    pub paths: &'a Paths,
    pub cgroup_parent: &'a str,
    pub bins: &'a Bins,
    pub mode: Mode,
    /// Foreground only: the slave of the container's own terminal.
    pub console: Option<RawFd>,
}

/// What `up` leaves running.
pub struct Running {
    pub init: Proc,
}

/// Preconditions, each with one clear message, checked before anything changes.
fn check_preconditions(u: &Up, cgroups: &Cgroups) -> Result<()> {
    cgroups.check()?;
    for ns in ["mnt", "uts", "ipc", "pid", "net"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(crate::precondition!(
                "this kernel has no {ns} namespaces (/proc/self/ns/{ns} is missing); it was built without them"
            ));
        }
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.split_whitespace().any(|f| f == "overlay") {
        return Err(crate::precondition!("overlayfs is not available in this kernel: load it (modprobe overlay)"));
    }
    if !u.bins.init.is_file() {
        return Err(crate::precondition!(
            "init not found at {}: build it (cargo build --release) or give --init PATH",
            u.bins.init.display()
        ));
    }
    let spec = u.spec;
    if net::netns_exists(&spec.netns) {
        return Err(crate::precondition!(
            "network namespace {} already exists and host-setup did not make it for {}: remove it (ip netns delete {}) or use another name",
            spec.netns,
            spec.name,
            spec.netns
        ));
    }
    for dir in cgroups.dirs(u.cgroup_parent, &spec.name) {
        if dir.exists() {
            return Err(crate::precondition!(
                "cgroup {} already exists and host-setup did not make it for {}: remove it (rmdir) or use another name",
                dir.display(),
                spec.name
            ));
        }
    }
    let dir = u.paths.container(&spec.name);
    if dir.exists() {
        return Err(crate::precondition!(
            "{} already exists but {} has no journal: remove it or use another --state-dir",
            dir.display(),
            spec.name
        ));
    }
    if let Some(n) = &spec.net {
        if let Some((other, _)) = state::addresses_in_use(u.paths, &spec.name).into_iter().find(|(_, a)| *a == n.addr) {
            return Err(crate::precondition!("address {} is already used by container {other}", n.addr));
        }
    }
    Ok(())
}

/// Bring a container up. The caller holds its lock. If a step fails, everything
/// made so far is undone before the error is returned.
pub fn up(u: &Up, lock: &mut Lock) -> Result<Running> {
    // Ctrl-C, SIGTERM or SIGHUP now: finish the step under way, then undo them all.
    fault::hold_interrupts()?;
    let cgroups = Cgroups::detect()?;
    if let Some(j) = Journal::read(u.paths, &u.spec.name)? {
        if j.proc(Role::Init).is_some_and(|p| p.alive()) {
            return Err(crate::precondition!(
                "{} is already up (init pid {}); use host-setup exec {} or host-setup down {}",
                u.spec.name,
                j.proc(Role::Init).map(|p| p.pid).unwrap_or(0),
                u.spec.name,
                u.spec.name
            ));
        }
        // An earlier attempt was interrupted, or the container has ended: clean up first.
        log::info!("{}: removing what an earlier run left behind", u.spec.name);
        teardown(u.paths, &u.spec.name, &j, Duration::from_secs(0))?;
    }
    check_preconditions(u, &cgroups)?;

    let mut journal = JournalWriter::open(u.paths, &u.spec.name)?;
    for r in state::spec_records(u.spec) {
        journal.append(&r)?;
    }
    let mut ctx = Ctx {
        spec: u.spec,
        paths: u.paths,
        cgroups: &cgroups,
        cgroup_parent: u.cgroup_parent,
        bins: u.bins,
        mode: u.mode,
        console: u.console,
        journal,
        lock,
        layer_dirs: vec![],
        cgroup_dirs: vec![],
        init: None,
    };
    for step in steps() {
        let t0 = Instant::now();
        let res = fault::enter_step(step.name())
            .and_then(|()| step.run(&mut ctx))
            .and_then(|()| fault::leave_step())
            .and_then(|()| match fault::take_interrupt() {
                Some(sig) => Err(Error::Interrupted(sig)),
                None => Ok(()),
            });
        log::debug!("step {}: {:.1} ms", step.name(), t0.elapsed().as_secs_f64() * 1000.0);
        if let Err(e) = res {
            log::debug!("step {} failed: {e}; undoing", step.name());
            let j = Journal::read(u.paths, &u.spec.name)?.unwrap_or_default();
            if let Err(e2) = teardown(u.paths, &u.spec.name, &j, Duration::from_secs(0)) {
                log::error!("undoing the failed setup of {}: {e2}", u.spec.name);
            }
            return Err(e);
        }
    }
    Ok(Running { init: ctx.init.expect("launch sets init") })
}

/// `--explain`: the plan as the tutorial's shell commands; nothing is changed.
pub fn explain(u: &Up, lock: &mut Lock) -> Result<Vec<(String, Vec<String>)>> {
    let cgroups = Cgroups::detect()?;
    let ctx = Ctx {
        spec: u.spec,
        paths: u.paths,
        cgroups: &cgroups,
        cgroup_parent: u.cgroup_parent,
        bins: u.bins,
        mode: u.mode,
        console: u.console,
        journal: JournalWriter::discard()?,
        lock,
        layer_dirs: u
            .spec
            .layers
            .iter()
            .map(|l| match l {
                Layer::Builtin(n) => layers::builtin(n)
                    .and_then(|m| layers::Builder::new(u.paths.layers(), u.bins.own_dir.clone()).plan(&m).ok())
                    .map(|p| p.dir().to_path_buf())
                    .unwrap_or_else(|| u.paths.layers().join(n)),
                Layer::Dir(d) => d.clone(),
            })
            .collect(),
        cgroup_dirs: vec![],
        init: None,
    };
    Ok(steps().iter().map(|s| (s.name().to_string(), s.explain(&ctx))).collect())
}

/// What `teardown` needs besides the records: the spec (for the veth name) and
/// the state dir (for the lock the link step takes).
pub struct Teardown<'a> {
    pub spec: Option<Spec>,
    pub paths: &'a Paths,
}

/// Stop the container's processes and undo every journal record, newest first.
/// Then delete the journal — unless something could not be undone: then the
/// journal keeps exactly those records, for the next `down` to retry.
pub fn teardown(paths: &Paths, name: &str, j: &Journal, grace: Duration) -> Result<()> {
    let mut errors: Vec<Error> = vec![];
    if let Some(init) = j.proc(Role::Init) {
        if let Err(e) = stop(init, grace) {
            errors.push(e);
        }
    }
    if let Some(sup) = j.proc(Role::Supervisor) {
        // It journals init's exit status and ends right after init.
        if !wait_gone(sup, Duration::from_secs(5)) {
            let _ = sup.signal(Signal::SIGKILL);
            wait_gone(sup, Duration::from_secs(2));
        }
    }
    let t = Teardown { spec: j.spec(), paths };
    let steps = steps();
    let mut left: Vec<Record> = vec![];
    for r in j.made().rev() {
        let Some(step) = steps.iter().find(|s| s.owns(r)) else { continue };
        log::debug!("undo {}: {}", step.name(), Record::Made(r.clone()).to_line());
        if let Err(e) = step.undo(r, &t) {
            errors.push(e);
            left.push(Record::Made(r.clone()));
        }
    }
    if errors.is_empty() {
        let path = paths.journal(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).sys(|| format!("rm {}", path.display())),
        }
        return Ok(());
    }
    // Keep the spec and what is left, oldest first.
    let mut keep: Vec<Record> = j.records.iter().filter(|r| matches!(r, Record::Spec(..))).cloned().collect();
    left.reverse();
    keep.extend(left);
    let text: String = keep.iter().map(|r| r.to_line() + "\n").collect();
    let path = paths.journal(name);
    std::fs::write(&path, text).sys(|| format!("write {}", path.display()))?;
    let first = errors.remove(0);
    Err(if errors.is_empty() { first } else { crate::failed!("{first} (and {} more; run down again)", errors.len()) })
}

/// SIGTERM to init (which passes it on to the main process), then SIGKILL after
/// `grace`. When a pid namespace's init dies, the kernel kills the rest of it.
pub fn stop(init: Proc, grace: Duration) -> Result<()> {
    if !init.alive() {
        return Ok(());
    }
    if !grace.is_zero() {
        log::debug!("kill -TERM {}", init.pid);
        init.signal(Signal::SIGTERM)?;
        if wait_gone(init, grace) {
            return Ok(());
        }
        log::info!("init {} did not end within {} s of SIGTERM: SIGKILL", init.pid, grace.as_secs());
    }
    init.signal(Signal::SIGKILL)?;
    if wait_gone(init, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(crate::failed!("init {} is still there 5 s after SIGKILL", init.pid))
    }
}

/// Wait until the process has ended (a zombie counts as ended).
fn wait_gone(p: Proc, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !p.alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
