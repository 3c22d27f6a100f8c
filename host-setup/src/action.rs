//! The actions a step takes, as data with this host's real values: make this dir,
//! write this value into that cgroup file, create this veth pair, start init with
//! these arguments. Each action is one value that is journalled (`record`, before
//! anything is made), executed (`run`), rendered as the tutorial's shell commands
//! (`shell`, for `--explain`), and whose journal record is undone (`undo`).
//!
//! Where an action's pieces live: this file dispatches all four, and holds them
//! for the plain actions (dirs, lease, ids, launch...). Two families keep theirs
//! apart, and a new variant of them is added there, not here:
//! - `net::Op`: `run` and `shell` in net/op.rs, calling the kernel work in net/
//!   (mod.rs: netns, veth; bridge.rs; nft/; sysctl.rs: one `Sysctl` value whose
//!   file and `sysctl -w` line are both derived from its key, in host-setup's own
//!   netns or a container's); `record` (the journal's `Resource`) and the undo of
//!   what lives in host-setup's own netns in made.rs; a netns and a veth are undone
//!   here.
//! - `cgroup::Op`: `run`, `shell` and the dir it makes in cgroup/op.rs; the
//!   record and the undo (rmdir, killing what is left) here.
//!
//! The journal's record types are in state/journal.rs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::contract::InitArgs;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::spec::Spec;
use crate::state::{self, Journal, Paths, Record, Resource};
use crate::{cgroup, layers, net, network, supervisor, userns};

pub enum Action {
    /// Tutorial 1, 2: an image layer, built (cp + ldd) unless a cached copy exists.
    Layer(LayerUse),
    /// Old versions of the built-in layers that no container uses any more go.
    PruneLayers,
    /// Not in the tutorial (--userns): the range of host ids the container's ids are.
    Ids(userns::IdMap, &'static str),
    /// Tutorial 4-1 5): the container's own directory, with the overlay's upper
    /// (the tutorial's /redfs/container), work and merge dirs in it; with
    /// --userns `owned` (upper and work) belong to the container's root.
    Dirs { root: PathBuf, subdirs: Vec<PathBuf>, owned: Vec<PathBuf>, owner: Option<userns::IdMap> },
    /// Not in the tutorial (--disk): the upper and work dirs on a tmpfs of their own.
    Disk(crate::disk::Tmpfs),
    /// Tutorial 3: a network namespace, its loopback, a veth pair.
    Net(net::Op),
    /// A bridge network's address for the container (the default network made first
    /// if it is not there yet).
    Lease(network::LeaseReq),
    /// Tutorial 4-1 1)-2): a cgroup directory or a limit.
    Cgroup(cgroup::Op),
    /// hsrun --systemd-cgroup: the container's cgroup is a systemd unit, started
    /// by the launch once init exists (systemd/transient.rs).
    Unit(crate::systemd::Transient),
    /// Tutorial 4-1 3) to 4-2 5): init in new namespaces does the rest from inside.
    Launch(InitArgs),
    /// --explain of the tutorial's pair only: the op, if that netns exists
    /// when the script runs (made by the peer's own explain script).
    IfNetns(String, net::Op),
    /// What another command will do, or why nothing is done: shown, not run.
    Note(String),
}

pub enum LayerUse {
    Build(layers::LayerPlan),
    /// A `--layer DIR`, used as it is.
    Dir(PathBuf),
}

impl Action {
    /// The journal record written before the action runs, if it makes something.
    pub fn record(&self) -> Option<Record> {
        match self {
            Action::Layer(l) => Some(Record::Layer { dir: layer_dir(l).to_path_buf() }),
            Action::Ids(ids, _) => Some(Record::Made(Resource::Ids(*ids))),
            Action::Dirs { root, .. } => Some(Record::Made(Resource::Dir(root.clone()))),
            Action::Disk(t) => Some(Record::Made(Resource::Mount(t.dir.clone()))),
            Action::Net(op) | Action::IfNetns(_, op) => crate::made::made_by(op).map(Record::Made),
            Action::Lease(r) => {
                Some(Record::Made(Resource::Lease { network: r.net.name.clone(), container: r.container.clone() }))
            }
            Action::Cgroup(cgroup::Op::Enable { dir, user, .. }) => {
                Some(Record::Made(Resource::SubtreeControl { dir: dir.clone(), user: user.clone() }))
            }
            Action::Cgroup(cgroup::Op::MkdirAncestor { dir, .. }) => {
                Some(Record::Made(Resource::CgroupAncestor(dir.clone())))
            }
            Action::Cgroup(op) => op.makes().map(|d| Record::Made(Resource::Cgroup(d.to_path_buf()))),
            Action::Unit(t) => Some(Record::Made(Resource::Unit { name: t.unit.name.clone(), dir: t.dir.clone() })),
            Action::PruneLayers | Action::Launch(_) | Action::Note(_) => None,
        }
    }

    /// What later steps learn from this action, whether it runs or is explained.
    pub fn produce(&self, ctx: &mut Ctx) {
        match self {
            Action::Layer(l) => ctx.layer_dirs.push(layer_dir(l).to_path_buf()),
            Action::Cgroup(op) => ctx.cgroup_dirs.extend(op.makes().map(Path::to_path_buf)),
            Action::Unit(t) => ctx.cgroup_dirs.push(t.dir.clone()),
            Action::Ids(ids, _) => ctx.ids = Some(*ids),
            Action::Lease(r) => {
                ctx.lease.get_or_insert((r.net.clone(), r.predicted));
            }
            _ => {}
        }
    }

    pub fn run(&self, ctx: &mut Ctx) -> Result<()> {
        match self {
            Action::Layer(LayerUse::Build(plan)) => builder(ctx).build(plan).map(drop),
            Action::Layer(LayerUse::Dir(_)) => Ok(()),
            Action::PruneLayers => {
                // Every container's journal says which layers it uses: reading them all
                // on each `up` made its cost grow with the number of containers (the
                // layers step took 4 ms with 40 up, 32 ms with 400, here). Most `up`s
                // find only their own layers in the cache: nothing to prune then.
                if !builder(ctx).holds_other_than(&ctx.layer_dirs) {
                    return Ok(());
                }
                let mut keep = ctx.layer_dirs.clone();
                for name in ctx.paths.container_names() {
                    if let Ok(Some(j)) = Journal::read(ctx.paths, &name) {
                        keep.extend(j.layer_dirs());
                    }
                }
                if let Err(e) = builder(ctx).prune(&keep) {
                    log::warn!("pruning old layers: {e}");
                }
                Ok(())
            }
            Action::Ids(ids, _) => {
                log::debug!("{}: {}", ctx.spec.name, ids.describe());
                crate::userns::claims::claim(ctx.paths, ids, &ctx.spec.name)
            }
            Action::Dirs { root, subdirs, owned, owner } => {
                state::perms::make_container_dir(root, subdirs, owned, owner.map(|ids| (ids.uid, ids.gid)))
            }
            Action::Disk(t) => t.make(),
            Action::Net(op) => op.run(),
            Action::IfNetns(netns, op) => match net::netns_exists(netns) {
                true => op.run(),
                false => Ok(()),
            },
            Action::Lease(r) => {
                ctx.lease = Some(network::take(ctx.paths, r)?);
                Ok(())
            }
            Action::Cgroup(op) => op.run(),
            // Nothing to make yet: the launch starts it with init's pid.
            Action::Unit(t) => {
                ctx.unit = Some(t.clone());
                Ok(())
            }
            Action::Launch(args) => {
                ctx.init = Some(supervisor::start(ctx, args)?);
                Ok(())
            }
            Action::Note(text) => {
                log::info!("{}: {text}", ctx.spec.name);
                Ok(())
            }
        }
    }

    pub fn shell(&self) -> Vec<String> {
        match self {
            Action::Layer(LayerUse::Build(plan)) => plan.shell(),
            Action::Layer(LayerUse::Dir(d)) => vec![format!("# layer {} is used as it is", d.display())],
            Action::PruneLayers => {
                vec!["# old versions of the built-in layers that no container uses are removed".into()]
            }
            Action::Ids(ids, source) => vec![format!("# {} ({source})", ids.describe())],
            Action::Dirs { root, subdirs, owned, owner } => {
                let list = |v: &[PathBuf]| v.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" ");
                let gid = owner.map_or(0, |ids| ids.gid);
                // The state dir's containers/ (host-setup makes it at start: the script on a clean host).
                let parent = root.parent().unwrap_or(Path::new("/"));
                let mut lines = vec![
                    format!("mkdir -p -m {:o} {}", state::perms::SHARED_DIR, parent.display()),
                    format!("mkdir -m {:o} {}", state::perms::container_dir_mode(gid), root.display()),
                ];
                if gid != 0 {
                    lines.push(format!("chgrp {gid} {}", root.display()));
                }
                lines.push(format!("mkdir -m 755 {}", list(subdirs)));
                if let Some(ids) = owner {
                    lines.push(format!("chown -h {}:{} {}", ids.uid, ids.gid, list(owned)));
                }
                lines
            }
            Action::Disk(t) => t.shell(),
            Action::Net(op) => op.shell(),
            Action::IfNetns(netns, op) => {
                let mut lines = vec![format!("if [ -e {} ]; then", net::netns_path(netns).display())];
                lines.extend(op.shell().into_iter().map(|l| format!("  {l}")));
                lines.push("fi".into());
                lines
            }
            Action::Lease(r) => r.shell(),
            Action::Cgroup(op) => op.shell(),
            Action::Unit(t) => t.shell(),
            Action::Launch(args) => args.shell(),
            Action::Note(text) => vec![format!("# {text}")],
        }
    }
}

fn layer_dir(l: &LayerUse) -> &Path {
    match l {
        LayerUse::Build(plan) => plan.dir(),
        LayerUse::Dir(d) => d,
    }
}

fn builder(ctx: &Ctx) -> layers::Builder {
    layers::Builder::new(ctx.paths.layers(), ctx.bins.own_dir.clone())
}

/// What undoing needs besides the records: the spec (for the veth name) and the
/// state dir (for the lock the link step takes).
pub struct Teardown<'a> {
    pub spec: Option<Spec>,
    pub paths: &'a Paths,
}

/// Undo what one journal record says was made. Absent things are fine.
pub fn undo(r: &Resource, t: &Teardown) -> Result<()> {
    match r {
        Resource::Dir(d) => {
            // The overlay was mounted only inside the container's mount namespace,
            // which died with its last process: what is left are plain directories.
            if state::remove_tree(d)? {
                log::debug!("removed {}", d.display());
            }
        }
        Resource::Netns(ns) => {
            // Not while a peer is making a veth pair into this namespace.
            let _lock = state::global_lock(t.paths)?;
            // Our veth end first: its peer in the other container's namespace goes
            // with it now, not later when the kernel gets round to this namespace.
            if let Some(n) = t.spec.as_ref().and_then(|s| s.net.as_ref()) {
                if net::netns_exists(ns) {
                    net::delete_link(ns, &n.iface)?;
                }
            }
            net::delete_netns(ns)?;
        }
        Resource::Link { netns, iface } => {
            // Deleting one end of a veth pair deletes both.
            if net::netns_exists(netns) {
                net::delete_link(netns, iface)?;
            }
        }
        // Before the directory it is in (teardown undoes both on one thread).
        Resource::Mount(d) => crate::disk::unmount(d)?,
        Resource::Ids(ids) => {
            let owner = t.spec.as_ref().map(|s| s.name.as_str());
            crate::userns::claims::release(t.paths, ids, owner)?
        }
        Resource::HostLink { .. } | Resource::Sysctl { .. } | Resource::NftTable { .. } => {
            crate::made::undo_host(r)?;
        }
        Resource::Lease { network, container } => network::release(t.paths, network, container)?,
        Resource::SubtreeControl { dir, user } => cgroup::subtree::disable(dir, user)?,
        Resource::Unit { name, dir } => crate::systemd::transient::undo(name, dir)?,
        Resource::Cgroup(dir) | Resource::SupervisorCgroup(dir) => {
            // init and everything in its pid namespace are gone by now (stopped
            // first). Anything still in the cgroup is ours — it could only get
            // there through host-setup exec — and is killed.
            for pid in cgroup::procs(dir) {
                log::debug!("kill -KILL {pid} (left in {})", dir.display());
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            cgroup::remove(dir, Duration::from_secs(5))?;
            // host-setup's own parent cgroup (shared by its containers) goes with
            // the last of them. An OCI container's parent is the engine's unless
            // the journal says this container made it (CgroupAncestor).
            let explicit = t.spec.as_ref().is_some_and(|s| s.explicit.is_some());
            if let Some(parent) = dir.parent().filter(|_| !explicit) {
                cgroup::remove_parent_if_empty(parent);
            }
        }
        Resource::CgroupAncestor(dir) => cgroup::remove_parent_if_empty(dir),
    }
    Ok(())
}
