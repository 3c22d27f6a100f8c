//! What the host must offer before `up` changes anything, each with one clear
//! message (exit 3): controllers, namespaces, overlayfs, the init binary, and no
//! name or address already in use by something host-setup did not make.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::cgroup::Cgroups;
use crate::ctx::Bins;
use crate::error::Result;
use crate::net;
use crate::spec::Spec;
use crate::state::{Journal, Paths};

pub fn check(spec: &Spec, paths: &Paths, cgroups: &Cgroups, cgroup_parent: &str, bins: &Bins) -> Result<()> {
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
    if !bins.init.is_file() {
        return Err(crate::precondition!(
            "init not found at {}: build it (cargo build --release) or give --init PATH",
            bins.init.display()
        ));
    }
    if net::netns_exists(&spec.netns) {
        return Err(crate::precondition!(
            "network namespace {} already exists and host-setup did not make it for {}: remove it (ip netns delete {}) or use another name",
            spec.netns,
            spec.name,
            spec.netns
        ));
    }
    for dir in cgroups.dirs(cgroup_parent, &spec.name) {
        if dir.exists() {
            return Err(crate::precondition!(
                "cgroup {} already exists and host-setup did not make it for {}: remove it (rmdir) or use another name",
                dir.display(),
                spec.name
            ));
        }
    }
    crate::disk::check(spec)?;
    let dir = paths.container(&spec.name);
    if dir.exists() {
        return Err(crate::precondition!(
            "{} already exists but {} has no journal: remove it or use another --state-dir",
            dir.display(),
            spec.name
        ));
    }
    if let Some(n) = &spec.net {
        if let Some((other, _)) = addresses_in_use(paths, &spec.name).into_iter().find(|(_, a)| *a == n.addr) {
            return Err(crate::precondition!("address {} is already used by container {other}", n.addr));
        }
    }
    Ok(())
}

/// Addresses of all containers in this state dir, except `except`.
fn addresses_in_use(paths: &Paths, except: &str) -> Vec<(String, Ipv4Addr)> {
    paths
        .container_names()
        .into_iter()
        .filter(|n| n != except)
        .filter_map(|n| {
            let spec = Journal::read(paths, &n).ok()??.spec()?;
            Some((n, spec.net?.addr))
        })
        .collect()
}
