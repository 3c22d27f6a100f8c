//! `create ID --bundle DIR`: config.json -> Spec -> the same steps as `up`,
//! without a supervisor (Mode::Detached): init is left to the caller, waiting on
//! the exec fifo before the process runs (the host ran prestart and createRuntime
//! hooks while init waited before its pivot, then init its createContainer
//! hooks). Then the state and `--pid-file`. Any failure undoes everything (the
//! journal, as for `up`). `run` is create + start (+ wait and delete).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::{opt, parse, Global, Opt};
use super::state::{self, State};
use super::{config, console, to_spec};
use crate::ctx::{Bins, Mode};
use crate::error::{Result, SysContext};
use crate::plan::{self, Up};
use crate::relay::ChildStdio;
use crate::state::{Journal, Lock};

pub const OPTS: [Opt; 7] = [
    opt(&["bundle", "b"], true),
    opt(&["pid-file"], true),
    opt(&["console-socket"], true),
    opt(&["no-pivot"], false),
    opt(&["no-new-keyring"], false),
    opt(&["preserve-fds"], true),
    opt(&["detach", "d"], false),
];

pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    /// --preserve-fds N: fds 3..3+N of hsrun reach the process as they are.
    pub preserve_fds: u32,
}

fn opts(p: &super::cli::Parsed) -> Result<CreateOpts> {
    let preserve_fds = match p.value("preserve-fds") {
        None => 0,
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 4096)
            .ok_or_else(|| crate::usage!("--preserve-fds {n}: not a number of fds"))?,
    };
    let cwd = std::env::current_dir().sys(|| "getcwd".into())?;
    Ok(CreateOpts {
        bundle: cwd.join(p.value("bundle").unwrap_or(".")),
        pid_file: p.value("pid-file").map(|f| cwd.join(f)),
        console_socket: p.value("console-socket").map(|f| cwd.join(f)),
        no_pivot: p.flag("no-pivot"),
        preserve_fds,
    })
}

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("create", args, &OPTS[..6], None)?;
    create(g, p.id("create")?, &opts(&p)?)?;
    Ok(0)
}

/// `run`: create and start; without --detach, wait for the process, delete the
/// container and exit with its status.
pub fn run_main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("run", args, &OPTS, None)?;
    let id = p.id("run")?;
    let o = opts(&p)?;
    if !p.flag("detach") {
        // Before init exists, so no signal meant for it is lost.
        crate::forward::block()?;
    }
    let st = create(g, id, &o)?;
    if let Err(e) = super::start::start(g, id) {
        let _ = super::delete::delete(g, id, true);
        return Err(e);
    }
    if p.flag("detach") {
        return Ok(0);
    }
    // init is our child: wait for it, passing on the signals we get.
    let code = crate::forward::wait(nix::unistd::Pid::from_raw(st.pid));
    super::delete::delete(g, id, true)?;
    code
}

fn lock(g: &Global, id: &str) -> Result<Lock> {
    Lock::acquire(&g.paths(), id, || eprintln!("hsrun: waiting for another hsrun working on {id}"))
}

pub fn create(g: &Global, id: &str, o: &CreateOpts) -> Result<State> {
    config::check_id(id)?;
    let paths = g.paths();
    std::fs::create_dir_all(paths.containers()).sys(|| format!("mkdir -p {}", paths.containers().display()))?;
    let oci = config::load(&o.bundle)?;
    let c = to_spec::Create {
        id,
        bundle: &o.bundle,
        paths: &paths,
        no_pivot: o.no_pivot,
        preserve_fds: o.preserve_fds,
        cgroup_parent: super::CGROUP_PARENT,
        systemd: g.systemd_cgroup,
    };
    let spec = to_spec::to_spec(&oci, &c)?;
    let bins = Bins::locate(None)?;
    let e = spec.explicit.as_deref().expect("to_spec fills it");
    let console = match (e.terminal, &o.console_socket) {
        (true, Some(s)) => Some(console::connect(s)?),
        (true, None) => return Err(crate::usage!("process.terminal is true: --console-socket is needed")),
        (false, _) => None,
    };
    // With a terminal, init replaces fds 0-2 with the pty it makes (CONSOLE).
    let stdio = match &console {
        Some(c) => ChildStdio::Console { fds: [0, 1, 2], sock: c.as_raw_fd() },
        None => ChildStdio::Fds([0, 1, 2]),
    };
    let mut lock = lock(g, id)?;
    // Checked under the lock: two creates of one id, one wins.
    if state::exists(&paths, id) {
        lock.finish();
        return Err(crate::failed!("container {id} already exists"));
    }
    let u = Up {
        spec: &spec,
        paths: &paths,
        cgroup_parent: super::CGROUP_PARENT,
        bins: &bins,
        mode: Mode::Detached,
        console: Some(stdio),
    };
    let res = plan::up(&u, &mut lock).and_then(|init| finish(&paths, id, &o.bundle, &oci, init, o));
    drop(console);
    if res.is_err() {
        let j = Journal::read(&paths, id).ok().flatten().unwrap_or_default();
        if let Err(e2) = plan::teardown(&paths, id, &j, Duration::from_secs(0)) {
            log::error!("undoing the failed create of {id}: {e2}");
        }
    }
    lock.finish();
    res
}

fn finish(
    paths: &crate::state::Paths,
    id: &str,
    bundle: &Path,
    oci: &oci_spec::runtime::Spec,
    init: crate::state::Proc,
    o: &CreateOpts,
) -> Result<State> {
    let dir = paths.container(id);
    let config = dir.join("config.json");
    std::fs::copy(bundle.join("config.json"), &config).sys(|| format!("copy config.json to {}", config.display()))?;
    let j = Journal::read(paths, id)?.unwrap_or_default();
    let st = State {
        oci_version: oci.version().clone(),
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        pid: init.pid,
        pid_start: init.start,
        created: super::log::now(),
        annotations: oci.annotations().clone().unwrap_or_default().into_iter().collect(),
        cgroup_dirs: j.cgroup_dirs(),
        config,
    };
    st.save(paths)?;
    // The prestart and createRuntime hooks ran already, while init waited
    // before its createContainer hooks and its pivot (hooks::at_pivot).
    if let Some(f) = &o.pid_file {
        // runc's: the pid, no newline, written whole (a temporary file renamed).
        state::write_atomic(f, init.pid.to_string().as_bytes())?;
    }
    Ok(st)
}
