//! `hsrun exec ID --process FILE` (a runtime-spec Process, as containerd's shim
//! passes it) or `hsrun exec [options] ID CMD [ARGS...]`: a new process in a
//! running container. The same machinery as `host-setup exec` (../exec.rs): from
//! the host, open the namespaces of the container's PID 1, its root and its
//! cgroups, fork, enter, and exec our init from a sealed memfd as
//! `init --restrict --exec [--seccomp-fd 5] --spec-fd 7 -- CMD`: init applies
//! the process's rlimits, user, capability sets, no_new_privs and cwd (the same
//! records as at `create`, contract_spec.rs), then the container's seccomp
//! filter, then execs CMD. The defaults are the saved config.json's process;
//! options override them, as runc's do.
//!
//! Without --detach, hsrun waits and exits with the process's status (signals
//! forwarded). With --detach it writes --pid-file and exits 0, leaving the
//! process to its caller (containerd's shim and conmon are subreapers: the
//! kernel reparents it to them, not to the container's PID 1, since hsrun
//! itself lives in the host's pid namespace). With a terminal, the pty master
//! goes to --console-socket (SCM_RIGHTS), or, without one and in the foreground,
//! hsrun relays it to its own terminal.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec as OciSpec};

use super::cli::{opt, parse, Global, Opt, Parsed};
use super::state::{State, Status};
use super::{config, exec_tty};
use crate::error::{Result, SysContext};
use crate::exec::{spawn, Entry, Launch, SPEC_FD};
use crate::relay::ChildStdio;
use crate::seccomp::Seccomp;
use crate::spec::Inside;

pub const OPTS: [Opt; 17] = [
    opt(&["process", "p"], true),
    opt(&["detach", "d"], false),
    opt(&["pid-file"], true),
    opt(&["tty", "t"], false),
    opt(&["console-socket"], true),
    opt(&["cwd"], true),
    opt(&["env", "e"], true),
    opt(&["user", "u"], true),
    opt(&["additional-gids", "g"], true),
    opt(&["cap", "c"], true),
    opt(&["no-new-privs"], false),
    opt(&["preserve-fds"], true),
    opt(&["apparmor"], true),
    opt(&["process-label"], true),
    opt(&["ignore-paused"], false),
    opt(&["cgroup"], true),
    opt(&["pidfd-socket"], true),
];

/// The process to run: `--process FILE` as it is, or the container's own process
/// with CMD and the options put over it (runc's getProcess).
pub fn process(p: &Parsed, cmd: &[String], config: &OciSpec) -> Result<Process> {
    if let Some(file) = p.value("process") {
        if !cmd.is_empty() {
            return Err(crate::usage!("exec: --process {file} describes the whole process: no CMD after the id"));
        }
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).sys(|| "exec: read the process from stdin".into())?;
            s
        } else {
            std::fs::read_to_string(file).sys(|| format!("exec: read --process {file}"))?
        };
        let de = &mut serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| crate::usage!("exec: --process {file}: {}: {}", e.path(), e.inner()));
    }
    if cmd.is_empty() {
        return Err(crate::usage!("exec: no command: hsrun exec [options] ID CMD [ARGS...], or --process FILE"));
    }
    let mut proc = config.process().clone().unwrap_or_default();
    proc.set_args(Some(cmd.to_vec()));
    let mut env = proc.env().clone().unwrap_or_default();
    for kv in p.values("env") {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.to_string());
    }
    proc.set_env(Some(env));
    if let Some(cwd) = p.value("cwd") {
        proc.set_cwd(PathBuf::from(cwd));
    }
    if let Some(u) = p.value("user") {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let num = |s: &str| s.parse::<u32>().map_err(|_| crate::usage!("exec: --user {u:?}: UID[:GID], numbers"));
        let user = proc.user_mut();
        user.set_uid(num(uid)?);
        user.set_gid(num(gid)?);
    }
    let gids = p.values("additional-gids");
    if !gids.is_empty() {
        let mut all = vec![];
        for g in gids.iter().flat_map(|g| g.split(',')) {
            all.push(g.parse::<u32>().map_err(|_| crate::usage!("exec: --additional-gids {g:?}: a number"))?);
        }
        proc.user_mut().set_additional_gids(Some(all));
    }
    let caps = p.values("cap");
    if !caps.is_empty() {
        let mut c = proc.capabilities().clone().unwrap_or_default();
        for name in caps {
            let full = if name.to_ascii_uppercase().starts_with("CAP_") {
                name.to_ascii_uppercase()
            } else {
                format!("CAP_{}", name.to_ascii_uppercase())
            };
            let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
                .map_err(|_| crate::usage!("exec: --cap {name:?}: not a capability"))?;
            add_cap(&mut c, cap);
        }
        proc.set_capabilities(Some(c));
    }
    if p.flag("no-new-privs") {
        proc.set_no_new_privileges(Some(true));
    }
    if p.flag("tty") {
        proc.set_terminal(Some(true));
    }
    Ok(proc)
}

/// runc's --cap: into bounding, effective and permitted; into ambient only if
/// the process has an inheritable set (ambient needs inheritable bits).
fn add_cap(c: &mut LinuxCapabilities, cap: Capability) {
    let add = |s: &Option<std::collections::HashSet<Capability>>| {
        let mut s = s.clone().unwrap_or_default();
        s.insert(cap);
        Some(s)
    };
    let (b, e, p) = (add(c.bounding()), add(c.effective()), add(c.permitted()));
    c.set_bounding(b);
    c.set_effective(e);
    c.set_permitted(p);
    if c.inheritable().is_some() {
        let a = add(c.ambient());
        c.set_ambient(a);
    }
}

/// init's argv for the process (`ready`: with --ready-fd, for --detach).
pub fn init_argv(args: &[String], filtered: bool, ready: bool) -> Vec<String> {
    use init::flag;
    let mut a: Vec<String> = ["init", flag::RESTRICT, flag::EXEC].map(String::from).to_vec();
    if ready {
        a.extend([flag::READY_FD.to_string(), crate::contract::READY_FD.to_string()]);
    }
    if filtered {
        a.extend([flag::SECCOMP_FD.to_string(), crate::contract::SECCOMP_FD.to_string()]);
    }
    a.extend([flag::SPEC_FD.to_string(), SPEC_FD.to_string(), flag::END.to_string()]);
    a.extend(args.iter().cloned());
    a
}

/// The container's seccomp filter (config.json's linux.seccomp), compiled on a memfd.
fn filter(config: &OciSpec, path: &Path) -> Result<Option<std::os::fd::OwnedFd>> {
    let Some(s) = config.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    let text = serde_json::to_string(s).map_err(|e| crate::failed!("exec: linux.seccomp: {e}"))?;
    Seccomp::File { path: path.to_path_buf(), text }.memfd()
}

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    let p = parse("exec", args, &OPTS, Some(1))?;
    let id = p.id("exec")?;
    let cmd = &p.args[1..];
    for (name, why) in [
        ("apparmor", "AppArmor is not supported (hsrun features: apparmor disabled)"),
        ("process-label", "SELinux is not supported (hsrun features: selinux disabled)"),
        ("cgroup", "the process goes into the container's own cgroups"),
        ("pidfd-socket", "not supported"),
    ] {
        if p.value(name).is_some_and(|v| !v.is_empty()) {
            return Err(crate::usage!("exec: --{name}: {why}"));
        }
    }
    if let Some(n) = p.value("preserve-fds").filter(|n| *n != "0") {
        return Err(crate::usage!(
            "exec: --preserve-fds {n}: passing extra fds is not supported (init closes every fd above 2 before the process)"
        ));
    }
    let paths = g.paths();
    let st = State::load(&paths, id)?;
    match st.status(&paths) {
        Status::Running | Status::Created => {}
        Status::Paused if p.flag("ignore-paused") => {}
        s => return Err(crate::failed!("exec {id}: the container is {}: cannot exec in it", s.word())),
    }
    let text = std::fs::read(&st.config).sys(|| format!("exec: read {}", st.config.display()))?;
    let config = config::parse(&text)?;
    let proc = process(&p, cmd, &config)?;
    let args = proc.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(crate::usage!("exec: the process has no args"));
    }
    let terminal = proc.terminal().unwrap_or(false);
    let detach = p.flag("detach");
    let socket = p.value("console-socket").map(PathBuf::from);
    match (terminal, &socket, detach) {
        (false, Some(_), _) => return Err(crate::usage!("exec: --console-socket goes with a terminal (--tty)")),
        (true, None, true) => {
            return Err(crate::usage!("exec: --tty with --detach needs --console-socket (where the pty master goes)"))
        }
        _ => {}
    }

    let mut inside = Inside::default();
    super::process::fill(&proc, &mut inside)?;
    let records = crate::memfd::sealed_memfd(c"hsrun-exec-spec", &crate::contract_spec::encode(&inside))?;
    let filter = filter(&config, &st.config)?;
    let init_bin = match crate::state::Journal::read(&paths, id)?.and_then(|j| j.init_bin()) {
        Some(b) => b,
        None => crate::ctx::Bins::locate(None)?.init,
    };
    let image = crate::init_image::init_image(&init_bin, &paths.image(id))?;
    let entry = Entry::open(id, st.init(), &st.cgroup_dirs)?;

    // The terminal: the master to the engine now (we keep the slave for the
    // child), or relayed to ours.
    let pty = if terminal { Some(exec_tty::open(st.pid)?) } else { None };
    let relay = match (&pty, &socket) {
        (Some(pty), Some(sock)) => {
            exec_tty::send(sock, pty)?;
            None
        }
        (Some(pty), None) => Some(pty.master.try_clone().sys(|| "dup the pty master".into())?),
        (None, _) => None,
    };
    let slave = pty.map(|p| p.slave);
    // --detach: hsrun exits 0 only once the command has been exec'd (init says
    // `ok` right before execve, an error if it fails), as runc does; the pid
    // file then names the command, not a process still on its way there.
    let ready = if detach {
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys(|| "pipe2 for init's ready report".into())?)
    } else {
        None
    };
    let launch = Launch {
        argv: crate::sys::cstrings(&init_argv(&args, filter.is_some(), detach))?,
        env: crate::sys::cstrings(&proc.env().clone().unwrap_or_default())?,
        image: Some(&image),
        filter: filter.as_ref(),
        spec: Some(&records),
        ready: ready.as_ref().map(|(_, w)| w),
        // Without a terminal the process gets our fds 0-2: the engine's pipes.
        stdio: slave.as_ref().map(|s| ChildStdio::Tty(s.as_raw_fd())),
        cwd: None,
    };
    let child = spawn(&entry, &launch, "hsrun")?;
    drop(slave);
    if let Some((r, w)) = ready {
        drop(w);
        if let Err(e) = crate::spawn::wait_ready(std::fs::File::from(r), std::time::Duration::from_secs(60)) {
            // init exits after its report: reap it (it is our child).
            let _ = crate::sys::wait_exit(child);
            return Err(e);
        }
    }
    if let Some(f) = p.value("pid-file") {
        let path = std::env::current_dir().sys(|| "getcwd".into())?.join(f);
        super::state::write_atomic(&path, child.as_raw().to_string().as_bytes())?;
    }
    if detach {
        return Ok(0);
    }
    match relay {
        Some(master) => {
            if let Some(ws) = crate::sys::window_size(0) {
                crate::sys::set_window_size(master.as_raw_fd(), &ws);
            }
            crate::tty::relay(&master, child)
        }
        None => crate::forward::wait(child),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn config() -> OciSpec {
        serde_json::from_str(
            r#"{"ociVersion":"1.1.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/",
               "user":{"uid":0,"gid":0},"env":["PATH=/bin","A=1"],
               "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn options_over_the_containers_process() {
        let p = parse(
            "exec",
            &v(&[
                "-e",
                "A=2",
                "--env",
                "B=3",
                "--cwd",
                "/tmp",
                "-u",
                "1000:100",
                "--cap",
                "NET_RAW",
                "--no-new-privs",
                "x",
                "id",
                "-u",
            ]),
            &OPTS,
            Some(1),
        )
        .unwrap();
        let proc = process(&p, &p.args[1..], &config()).unwrap();
        assert_eq!(proc.args().as_deref(), Some(&v(&["id", "-u"])[..]));
        assert_eq!(proc.env().as_deref(), Some(&v(&["PATH=/bin", "A=2", "B=3"])[..]));
        assert_eq!(proc.cwd(), Path::new("/tmp"));
        assert_eq!((proc.user().uid(), proc.user().gid()), (1000, 100));
        let caps = proc.capabilities().as_ref().unwrap();
        assert!(caps.bounding().as_ref().unwrap().contains(&Capability::NetRaw));
        assert!(caps.ambient().is_none(), "no inheritable set: no ambient");
        assert_eq!(proc.no_new_privileges(), Some(true));
        let argv = init_argv(&v(&["id"]), true, false);
        assert_eq!(argv, v(&["init", "--restrict", "--exec", "--seccomp-fd", "5", "--spec-fd", "7", "--", "id"]));
        assert_eq!(init_argv(&v(&["id"]), false, true)[3..5], v(&["--ready-fd", "3"]));
        let bad = parse("exec", &v(&["-u", "bob", "x", "id"]), &OPTS, Some(1)).unwrap();
        assert!(process(&bad, &bad.args[1..], &config()).is_err());
        let none = parse("exec", &v(&["x"]), &OPTS, Some(1)).unwrap();
        assert!(process(&none, &none.args[1..], &config()).unwrap_err().to_string().contains("no command"));
    }
}
