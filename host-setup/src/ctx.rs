//! What the steps of one bring-up share: the spec, where things live, this host's
//! cgroup layout, and what earlier actions produced (the layer and cgroup dirs the
//! launch step hands to init).

use std::path::{Path, PathBuf};

use crate::cgroup::Cgroups;
use crate::error::{Result, SysContext};
use crate::spec::Spec;
use crate::state::{JournalWriter, Lock, Paths, Proc};

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
    /// No supervisor and no wait (an OCI runtime's `create`): init is left to the
    /// caller, whose engine's shim is a subreaper and reaps it.
    Detached,
}

pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub paths: &'a Paths,
    pub cgroups: &'a Cgroups,
    pub cgroup_parent: &'a str,
    pub bins: &'a Bins,
    pub mode: Mode,
    /// Foreground: the container's own terminal (tty.rs) or the pipes we relay (relay.rs).
    pub console: Option<crate::relay::ChildStdio>,
    /// None for `--explain`, which changes nothing.
    pub journal: Option<JournalWriter>,
    /// The lock on this container (the supervisor lets go of it after fork).
    pub lock: Option<&'a mut Lock>,
    // What the actions so far produced:
    pub layer_dirs: Vec<PathBuf>,
    pub cgroup_dirs: Vec<PathBuf>,
    /// With --userns: the host ids of the container's ids.
    pub ids: Option<crate::userns::IdMap>,
    /// --systemd-cgroup: the unit the launch starts with init's pid.
    pub unit: Option<crate::systemd::Transient>,
    /// The container's init once launched (foreground: our child).
    pub init: Option<Proc>,
    /// The network joined and the address leased on it (the lease step's, or its
    /// prediction when nothing runs).
    pub lease: Option<(crate::network::Network, std::net::Ipv4Addr)>,
    /// For tests: who is up at the other end of the pair, with no link yet
    /// (instead of looking at the host).
    pub partner_override: Option<Option<Spec>>,
}
