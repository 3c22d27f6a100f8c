//! `--userns`: the container's root is an unprivileged uid on the host.
//!
//! The container gets a user namespace of its own whose ids 0..65535 are a range
//! of host ids no one else uses (`unshare --user --map-users=0:HOST:65536`).
//! Ranges come from the lines for the user `host-setup` in /etc/subuid and
//! /etc/subgid (the files newuidmap and Podman read), cut into slots of 65536;
//! without such lines from DEFAULT_POOL. Each container takes the lowest slot no
//! other container of this state dir holds (its journal records it, and a file
//! under ids/ claims it: claims.rs; under the state dir's lock), so two containers
//! never share ids.
//!
//! What the kernel then needs from the host (spawn.rs does it, init the rest):
//! the maps written by the parent (a privileged writer may map any range), the
//! layers as idmapped mounts (root's files on disk show as the namespace's root;
//! src/sys/userns.rs), the network namespace joined before the user namespace
//! exists (it stays the host's: the container's root gets no CAP_NET_RAW in it, so
//! `ping` uses ICMP datagram sockets, allowed for the container's gids by the
//! netns's net.ipv4.ping_group_range), and on cgroup v1 the host moving init into
//! its cgroups (the cgroup files are the host root's).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};
use crate::sys;

pub mod claims;
mod join;
mod maps;
mod pool;

pub use self::maps::{check as check_ranges, host_id};
pub use join::{joined_root, JoinUser};
pub use maps::{IdMaps, IdRange};
pub use pool::{allocate, Pool};

/// The user whose /etc/subuid and /etc/subgid lines give the ranges.
pub const SUBID_USER: &str = "host-setup";
/// Ids per container: 0..65535 inside, as Docker's userns-remap and Podman map.
pub const IDS: u32 = 65536;
/// Without /etc/subuid lines for SUBID_USER: 1000 slots from 1,000,000,000 —
/// far above the ranges useradd hands out (100000 + 65536 per user) and below
/// 2^31 (some tools read uids as signed 32-bit numbers).
pub const DEFAULT_POOL: (u32, u32) = (1_000_000_000, 1000 * IDS);

/// Container ids 0..count are host uids uid.. and gids gid..
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdMap {
    /// The line for /proc/PID/uid_map: "0 HOST COUNT".
    pub fn uid_line(&self) -> String {
        format!("0 {} {}", self.uid, self.count)
    }
    pub fn gid_line(&self) -> String {
        format!("0 {} {}", self.gid, self.count)
    }
    /// "0-65535 -> uids 1000000000-1000065535, gids ..."
    pub fn describe(&self) -> String {
        let last = |first: u32| first as u64 + self.count as u64 - 1;
        format!(
            "container ids 0-{} are host uids {}-{} and gids {}-{}",
            self.count - 1,
            self.uid,
            last(self.uid),
            self.gid,
            last(self.gid)
        )
    }
}

/// The kernel's uid and gid maps of `pid` ("0 1000000000 65536"; several lines
/// joined by ", "), for status. None if it is gone.
pub fn live_maps(pid: i32) -> Option<(String, String)> {
    let read = |f: &str| -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{f}")).ok()?;
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        Some(lines.join(", "))
    };
    Some((read("uid_map")?, read("gid_map")?))
}

/// Write `ids` as the uid and gid maps of `pid`'s user namespace, each whole in
/// one write (the kernel takes a map once, all its lines in one write(2)). A
/// privileged writer (CAP_SETUID/CAP_SETGID over the parent namespace, as
/// host-setup is) may map any host ids and need not write "deny" to setgroups
/// first, so root inside can still setgroups(2); an unprivileged one must.
pub fn write_maps(pid: i32, ids: &IdMaps) -> Result<()> {
    for (file, ranges) in [("uid_map", &ids.uids), ("gid_map", &ids.gids)] {
        let path = format!("/proc/{pid}/{file}");
        let text = maps::map_text(ranges);
        std::fs::write(&path, &text).sys(|| format!("write \"{}\" to {path}", text.trim_end().replace('\n', ", ")))?;
    }
    Ok(())
}

/// Each layer dir as a detached, read-only mount idmapped through `pid`'s user
/// namespace, in order: init attaches them as its overlay's lower dirs.
pub fn idmapped_layers(pid: i32, layers: &[PathBuf]) -> Result<Vec<OwnedFd>> {
    let ns = format!("/proc/{pid}/ns/user");
    let userns: OwnedFd = File::open(&ns).sys(|| format!("open {ns}"))?.into();
    if layers.len() > sys::MAX_FDS {
        return Err(crate::usage!("--userns: at most {} layers", sys::MAX_FDS));
    }
    layers.iter().map(|dir| idmapped(dir, &userns)).collect()
}

/// Each volume (`-v`) as a detached mount idmapped through `pid`'s user
/// namespace: a file of host uid N shows inside as N, and what the container's
/// uid N writes is host uid N's on disk.
pub fn idmapped_volumes(pid: i32, volumes: &[(PathBuf, bool)]) -> Result<Vec<OwnedFd>> {
    let ns = format!("/proc/{pid}/ns/user");
    let userns: OwnedFd = File::open(&ns).sys(|| format!("open {ns}"))?.into();
    let mut out = vec![];
    for (dir, ro) in volumes {
        let d = dir.display();
        let mnt = sys::open_tree_clone(dir).sys(|| format!("-v {d}: open_tree({d}, OPEN_TREE_CLONE)"))?;
        // EINVAL: the filesystem lacks FS_ALLOW_IDMAP (tmpfs before Linux 6.3,
        // ramfs, proc, most network filesystems), or the mount is itself idmapped.
        sys::idmap(&mnt, &userns, *ro).map_err(|e| {
            let err = Error::sys(format!("-v {d}: mount_setattr({d}, MOUNT_ATTR_IDMAP)"), e);
            match e {
                nix::errno::Errno::EINVAL => err.hint(
                    "its filesystem cannot be idmapped, so its files could not keep their host owners: use a \
                     directory on ext4, xfs, btrfs (tmpfs from Linux 6.3), or give --no-userns",
                ),
                _ => err,
            }
        })?;
        out.push(mnt);
    }
    Ok(out)
}

fn idmapped(dir: &Path, userns: &OwnedFd) -> Result<OwnedFd> {
    let d = dir.display();
    let mnt = sys::open_tree_clone(dir).sys(|| format!("open_tree({d}, OPEN_TREE_CLONE)"))?;
    sys::idmap_read_only(&mnt, userns).map_err(|e| {
        let err = Error::sys(format!("mount_setattr({d}, MOUNT_ATTR_IDMAP, userns fd {})", userns.as_raw_fd()), e);
        match e {
            nix::errno::Errno::EINVAL => err.hint(
                "the layer's filesystem cannot be idmapped (Linux 5.12+; ext4, xfs, btrfs, tmpfs 6.3+): put the \
                 state dir (and --layer dirs) on one that can, or give --no-userns",
            ),
            _ => err,
        }
    })?;
    Ok(mnt)
}

/// This thread in the network namespace bound at a path, until dropped.
pub struct InNetns {
    back: File,
}

impl InNetns {
    pub fn enter(netns: &Path) -> Result<InNetns> {
        let own = "/proc/thread-self/ns/net";
        let back = File::open(own).sys(|| format!("open {own}"))?;
        let ns = File::open(netns).sys(|| format!("open {}", netns.display()))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .sys(|| format!("setns({}, CLONE_NEWNET)", netns.display()))?;
        Ok(InNetns { back })
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.back, nix::sched::CloneFlags::CLONE_NEWNET) {
            log::error!("setns back into host-setup's own network namespace: {e}");
        }
    }
}
