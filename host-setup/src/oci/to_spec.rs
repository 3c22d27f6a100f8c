//! config.json -> host-setup's Spec: the same steps as `host-setup up` then run
//! it (spec/explicit.rs says how each step reads the explicit part). Everything
//! the runtime spec asks for lands somewhere; what cannot is refused here.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec as OciSpec};

use super::{config, mounts, names, process, resources, userns};
use crate::cgroup::Limits;
use crate::error::Result;
use crate::seccomp::Seccomp;
use crate::spec::{Device, Explicit, Hook, Hooks, Inside, Namespaces, Ns, Pid1, Spec};
use crate::state::Paths;

/// What `create` adds to the bundle.
pub struct Create<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub paths: &'a Paths,
    /// `--no-pivot`: MS_MOVE and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Where containers without a cgroupsPath go.
    pub cgroup_parent: &'a str,
    /// `--preserve-fds N`: hsrun's fds 3..3+N become the process's.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`, the cgroup a systemd unit.
    pub systemd: bool,
}

/// Where the container's new network namespace is bound (so an engine's CNI can
/// enter it by path as well as by /proc/PID/ns/net).
pub fn netns_file(paths: &Paths, id: &str) -> PathBuf {
    paths.container(id).join("netns")
}

/// The exec fifo: init waits opening it for writing until `start` opens it for reading.
pub fn exec_fifo(paths: &Paths, id: &str) -> PathBuf {
    paths.container(id).join("exec.fifo")
}

fn bad(what: &str, why: impl std::fmt::Display) -> crate::error::Error {
    crate::failed!("config.json: {what}: {why}")
}

pub fn to_spec(oci: &OciSpec, c: &Create) -> Result<Spec> {
    let root = config::root_dir(oci, c.bundle)?;
    let linux = oci.linux().clone().unwrap_or_default();
    let process = oci.process().as_ref().ok_or_else(|| bad("process", "missing: create needs a process to run"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.first().map_or(true, |a| a.is_empty()) {
        return Err(bad("process.args", "empty: give the program to run"));
    }
    let namespaces = namespaces(oci)?;
    let id_map = userns::id_maps(oci, &namespaces)?;
    // As runc: a joined uts namespace gets the hostname too; the host's never.
    if oci.hostname().is_some() && namespaces.uts == Ns::Host {
        return Err(bad("hostname", "setting it needs a uts namespace (new or joined)"));
    }
    let netns = match &namespaces.net {
        Ns::New => netns_file(c.paths, c.id).display().to_string(),
        Ns::Join(p) => p.display().to_string(),
        Ns::Host => String::new(),
    };
    let mut inside = Inside {
        root_readonly: oci.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        no_pivot: c.no_pivot,
        masked: linux.masked_paths().clone().unwrap_or_default(),
        readonly: linux.readonly_paths().clone().unwrap_or_default(),
        sysctl: linux.sysctl().clone().unwrap_or_default().into_iter().collect(),
        domainname: oci.domainname().clone(),
        start_fifo: Some(exec_fifo(c.paths, c.id)),
        ..Default::default()
    };
    if let Some(p) = linux.rootfs_propagation() {
        let flags = mounts::propagation(p)
            .ok_or_else(|| bad("linux.rootfsPropagation", format!("{p:?} is not a propagation")))?;
        inside.root_propagation = Some(flags);
    }
    for m in oci.mounts().clone().unwrap_or_default() {
        let dest = m.destination().display().to_string();
        let src = m.source().as_ref().map(|s| s.display().to_string());
        inside.mounts.push(mounts::mount(
            &dest,
            m.typ().as_deref(),
            src.as_deref(),
            &m.options().clone().unwrap_or_default(),
        )?);
    }
    inside.devices = devices(&linux)?;
    inside.symlinks = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ]
    .map(|(t, l)| (t.to_string(), l.to_string()))
    .to_vec();
    process::fill(process, &mut inside)?;
    let hooks = oci.hooks().clone().unwrap_or_default();
    let conv = |v: &Option<Vec<oci_spec::runtime::Hook>>| -> Vec<Hook> { v.iter().flatten().map(hook).collect() };
    inside.hooks = conv(hooks.start_container());
    inside.create_hooks = conv(hooks.create_container());
    let (prestart, create_runtime) = (conv(hooks.prestart()), conv(hooks.create_runtime()));
    // The host runs these while init waits before its pivot (PIVOT_SYNC).
    inside.pivot_sync = !prestart.is_empty() || !create_runtime.is_empty();
    if !inside.hooks.is_empty() || !inside.create_hooks.is_empty() || inside.pivot_sync {
        inside.hook_state = Some(hook_state(oci, c));
    }
    let seccomp = match linux.seccomp() {
        None => Seccomp::Unconfined,
        Some(s) => {
            let text = serde_json::to_string(s).map_err(|e| bad("linux.seccomp", e))?;
            let s = Seccomp::File { path: c.bundle.join("config.json"), text };
            s.profile().map_err(|e| bad("linux.seccomp", e))?;
            s
        }
    };
    let cgroups_path = linux.cgroups_path().as_deref().map(|p| p.display().to_string());
    let systemd = match c.systemd {
        true => Some(crate::systemd::unit_path::parse(cgroups_path.as_deref(), c.id)?),
        false => None,
    };
    let explicit = Explicit {
        root,
        id_map,
        cgroup_path: match &systemd {
            Some(u) => u.cgroup.clone(),
            None => cgroup_path(linux.cgroups_path().as_deref(), c)?,
        },
        systemd,
        resources: resources::from_oci(linux.resources().as_ref())?,
        hostname: oci.hostname().clone(),
        env: process.env().clone().unwrap_or_default(),
        terminal: process.terminal().unwrap_or(false),
        inside,
        hooks: Hooks { prestart, create_runtime, poststart: conv(hooks.poststart()), poststop: conv(hooks.poststop()) },
        namespaces,
        preserve_fds: c.preserve_fds,
    };
    Ok(Spec {
        name: c.id.to_string(),
        netns,
        hostname: oci.hostname().clone().unwrap_or_default(),
        net: None,
        limits: Limits { pids_max: None, restrict_devices: false, ..Limits::TUTORIAL },
        layers: vec![],
        command: args,
        pid1: Pid1::Exec,
        privileged: false,
        seccomp,
        userns: false,
        join: None,
        disk: None,
        log: Default::default(),
        explicit: Some(Box::new(explicit)),
        run: None,
    })
}

/// The runtime-spec state for init's hooks, cut where init puts the status
/// and its pid: `{"ociVersion":..,"id":..,"status":"` STATUS `","pid":` PID
/// `,"bundle":..,"annotations":{..}}` (state.rs `spec_state`'s fields).
fn hook_state(oci: &OciSpec, c: &Create) -> [String; 3] {
    let j = |v: serde_json::Value| v.to_string();
    let annotations = oci.annotations().clone().unwrap_or_default();
    [
        format!("{{\"ociVersion\":{},\"id\":{},\"status\":\"", j(oci.version().clone().into()), j(c.id.into())),
        "\",\"pid\":".to_string(),
        format!(
            ",\"bundle\":{},\"annotations\":{}}}",
            j(c.bundle.display().to_string().into()),
            j(serde_json::json!(annotations))
        ),
    ]
}

fn hook(h: &oci_spec::runtime::Hook) -> Hook {
    let path = h.path().display().to_string();
    Hook {
        args: h.args().clone().unwrap_or_else(|| vec![path.clone()]),
        path,
        env: h.env().clone().unwrap_or_default(),
        timeout: h.timeout().filter(|t| *t > 0).map(|t| t as u64),
    }
}

fn namespaces(oci: &OciSpec) -> Result<Namespaces> {
    // Absent: the host's. Each type at most once.
    let mut n = Namespaces {
        net: Ns::Host,
        pid: Ns::Host,
        ipc: Ns::Host,
        uts: Ns::Host,
        mount: Ns::Host,
        cgroup: Ns::Host,
        user: Ns::Host,
    };
    let list = oci.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    let mut seen = vec![];
    for ns in &list {
        let t = ns.typ();
        if seen.contains(&t) {
            return Err(bad("linux.namespaces", format!("{t:?} is given twice")));
        }
        seen.push(t);
        let v = match ns.path() {
            Some(p) => Ns::Join(p.clone()),
            None => Ns::New,
        };
        let slot = match t {
            LinuxNamespaceType::Network => &mut n.net,
            LinuxNamespaceType::Pid => &mut n.pid,
            LinuxNamespaceType::Ipc => &mut n.ipc,
            LinuxNamespaceType::Uts => &mut n.uts,
            LinuxNamespaceType::Mount => &mut n.mount,
            LinuxNamespaceType::Cgroup => &mut n.cgroup,
            LinuxNamespaceType::User => &mut n.user,
            other => return Err(bad("linux.namespaces", format!("{other:?}: not supported by this runtime"))),
        };
        *slot = v;
    }
    // runc accepts a container without a mount namespace and then mounts its /proc,
    // /dev and /sys and pivots in the host's own mount namespace; init would pivot
    // the host's root: refused (a new or a joined one).
    if n.mount == Ns::Host {
        return Err(bad(
            "linux.namespaces",
            "a container needs a mount namespace (type \"mount\"), new or joined by path",
        ));
    }
    Ok(n)
}

/// `/default/ID` -> `default/ID`; none: PARENT/ID.
fn cgroup_path(p: Option<&Path>, c: &Create) -> Result<String> {
    let Some(p) = p else { return Ok(format!("{}/{}", c.cgroup_parent, c.id)) };
    let s = p.display().to_string();
    if s.contains(':') && !s.starts_with('/') {
        return Err(bad(
            "linux.cgroupsPath",
            format!("{s:?} is a systemd slice:prefix:name path: pass --systemd-cgroup (runc's rule), or give a cgroupfs path"),
        ));
    }
    let parts: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|x| *x == "." || *x == "..") {
        return Err(bad("linux.cgroupsPath", format!("{s:?} is not a cgroup path")));
    }
    Ok(parts.join("/"))
}

/// runc's default devices, then the config's (a config entry replaces a default of the same path).
fn devices(linux: &oci_spec::runtime::Linux) -> Result<Vec<Device>> {
    let dev =
        |path: &str, minor, major| Device { path: path.into(), kind: b'c', major, minor, mode: 0o666, uid: 0, gid: 0 };
    let mut out = vec![
        dev("/dev/null", 3, 1),
        dev("/dev/zero", 5, 1),
        dev("/dev/full", 7, 1),
        dev("/dev/random", 8, 1),
        dev("/dev/urandom", 9, 1),
        dev("/dev/tty", 0, 5),
    ];
    for d in linux.devices().clone().unwrap_or_default() {
        let path = d.path().display().to_string();
        if !path.starts_with("/dev/") {
            return Err(bad("linux.devices", format!("{path}: a device must be under /dev")));
        }
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => b'c',
            T::B => b'b',
            T::P => b'p',
            T::A => return Err(bad("linux.devices", format!("{path}: type \"a\" is not a device"))),
        };
        out.retain(|x| x.path != path);
        out.push(Device {
            path,
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// For process.rs: an rlimit's or capability's name as the kernel's number.
pub(super) fn number(kind: &str, name: &str) -> Result<u32> {
    let n = match kind {
        "capability" => names::cap(name).filter(|n| *n <= names::last_cap()),
        _ => names::rlimit(name),
    };
    n.ok_or_else(|| bad("process", format!("{kind} {name}: not known to this kernel")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_state_is_the_runtime_spec_state_once_init_fills_it_in() {
        let oci: OciSpec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "annotations": {"a\"b": "c\nd"}
        }))
        .unwrap();
        let paths = Paths::new(Path::new("/run/x"));
        let c = Create {
            id: "c\"1",
            bundle: Path::new("/b/\"q"),
            paths: &paths,
            no_pivot: false,
            preserve_fds: 0,
            cgroup_parent: "p",
            systemd: false,
        };
        let [head, middle, tail] = hook_state(&oci, &c);
        let v: serde_json::Value = serde_json::from_str(&format!("{head}created{middle}1234{tail}")).unwrap();
        let want = serde_json::json!({
            "ociVersion": "1.0.2", "id": "c\"1", "status": "created", "pid": 1234,
            "bundle": "/b/\"q", "annotations": {"a\"b": "c\nd"}
        });
        assert_eq!(v, want);
    }
}
