//! What the host must offer before `up` changes anything, each with one clear
//! message (exit 3): controllers, namespaces, overlayfs, the init binary, and no
//! name or address already in use by something host-setup did not make.
//!
//! A kernel feature is asked of the kernel the way the steps will use it, never
//! looked up in a list of what is loaded now: overlay, veth, bridge and nf_tables
//! are modules on Debian and Ubuntu, which the kernel loads itself on first use
//! (get_fs_type -> request_module("fs-overlay"); RTNL "rtnl-link-veth"; NFNL
//! "nfnetlink-subsys-10"). Only the filesystem is asked here (fsopen, which
//! mounts nothing); links and nf_tables are asked by the step that makes them,
//! whose error says what is missing once the kernel could not load it.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::cgroup::Cgroups;
use crate::ctx::Bins;
use crate::error::Result;
use crate::net;
use crate::spec::Spec;
use crate::state::{Journal, Paths};
use crate::sys;

pub fn check(spec: &Spec, paths: &Paths, cgroups: &Cgroups, cgroup_parent: &str, bins: &Bins) -> Result<()> {
    cgroups.check()?;
    for ns in ["mnt", "uts", "ipc", "pid", "net"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(crate::precondition!(
                "this kernel has no {ns} namespaces (/proc/self/ns/{ns} is missing); it was built without them"
            ));
        }
    }
    filesystem("overlay", sys::fsopen_probe("overlay"))?;
    if spec.userns {
        idmapped_mounts(
            &spec.name,
            crate::spec::userns_default(&spec.name, spec.privileged),
            sys::mount_setattr_probe(),
        )?;
    }
    if !bins.init.is_file() {
        return Err(crate::precondition!(
            "init not found at {}: build it (cargo build --release) or give --init PATH",
            bins.init.display()
        ));
    }
    // A namespace joined by path exists, of course.
    let joins = spec.explicit.as_ref().is_some_and(|e| e.namespaces.net != crate::spec::Ns::New);
    if !joins && net::netns_exists(&spec.netns) {
        return Err(crate::precondition!(
            "network namespace {} already exists and host-setup did not make it for {}: remove it (ip netns delete {}) or use another name",
            spec.netns,
            spec.name,
            spec.netns
        ));
    }
    let dirs = match &spec.explicit {
        Some(e) => {
            let (parent, name) = e.cgroup_path.rsplit_once('/').unwrap_or(("", &e.cgroup_path));
            cgroups.dirs(parent, name)
        }
        None => cgroups.dirs(cgroup_parent, &spec.name),
    };
    for dir in dirs {
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

/// Whether the kernel has filesystem `fstype`, from what fsopen(fstype) answered
/// (`probe`); fsopen loads the module if needed. Refused only for ENODEV: the
/// kernel has no such type and could not load one. Any other answer (ENOSYS before
/// Linux 5.2, EPERM under a restricting seccomp filter) says nothing about the type:
/// the mount itself asks again and loads it the same way.
fn filesystem(fstype: &str, probe: std::result::Result<(), nix::errno::Errno>) -> Result<()> {
    match probe {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENODEV) => Err(crate::precondition!(
            "{fstype} is not available in this kernel: fsopen(\"{fstype}\"): ENODEV: {}; the kernel has no {fstype} \
             filesystem and could not load its module (built without it, or no {fstype}.ko for kernel {}: \
             modprobe {fstype} says why)",
            crate::error::errno_text(nix::errno::Errno::ENODEV),
            kernel_release()
        )),
        Err(e) => {
            log::debug!("fsopen(\"{fstype}\"): {e:?}: the mount will ask the kernel itself");
            Ok(())
        }
    }
}

/// Whether a user namespace can have its layers, from what mount_setattr answered
/// (`probe`): they are idmapped mounts (MOUNT_ATTR_IDMAP, Linux 5.12; overlayfs
/// inside a user namespace came in 5.11). Refused only for ENOSYS, a kernel older
/// than 5.12; anything else (EPERM under a restricting seccomp filter) says nothing
/// about the kernel: the userns step asks again and names its own error.
fn idmapped_mounts(name: &str, by_default: bool, probe: std::result::Result<(), nix::errno::Errno>) -> Result<()> {
    match probe {
        Err(nix::errno::Errno::ENOSYS) => Err(crate::precondition!(
            "kernel {} has no idmapped mounts (mount_setattr: ENOSYS: {}; Linux 5.12+): {name}'s user namespace{} \
             needs them for its layers; run with --no-userns or on a newer kernel",
            kernel_release(),
            crate::error::errno_text(nix::errno::Errno::ENOSYS),
            if by_default { " (the default)" } else { " (--userns)" }
        )),
        Ok(()) | Err(_) => Ok(()),
    }
}

/// uname's release: "5.10.0-32-cloud-amd64".
fn kernel_release() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn only_enodev_refuses_a_filesystem() {
        filesystem("overlay", Ok(())).unwrap();
        // No fsopen (Linux < 5.2) or not allowed to ask: the mount asks itself.
        filesystem("overlay", Err(Errno::ENOSYS)).unwrap();
        filesystem("overlay", Err(Errno::EPERM)).unwrap();
        let e = filesystem("overlay", Err(Errno::ENODEV)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = e.to_string();
        assert!(
            e.starts_with("overlay is not available in this kernel: fsopen(\"overlay\"): ENODEV: no such device;"),
            "{e}"
        );
        assert!(e.contains("modprobe overlay says why"), "{e}");
    }

    #[test]
    fn only_enosys_refuses_a_user_namespace() {
        idmapped_mounts("green", true, Ok(())).unwrap();
        // Not allowed to ask (a seccomp filter): the userns step asks itself.
        idmapped_mounts("green", true, Err(Errno::EPERM)).unwrap();
        let e = idmapped_mounts("green", true, Err(Errno::ENOSYS)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = e.to_string();
        let release = kernel_release();
        assert!(!release.is_empty());
        assert!(
            e.starts_with(&format!(
                "kernel {release} has no idmapped mounts (mount_setattr: ENOSYS: function not implemented; Linux 5.12+): \
                 green's user namespace (the default) needs them for its layers; run with --no-userns or on a newer kernel"
            )),
            "{e}"
        );
        let e = idmapped_mounts("red", false, Err(Errno::ENOSYS)).unwrap_err().to_string();
        assert!(e.contains("red's user namespace (--userns) needs them"), "{e}");
    }

    #[test]
    fn mount_setattr_asks_the_kernel() {
        // Every kernel the tests run on has idmapped mounts (5.12+); the VM with
        // bullseye's 5.10 sees ENOSYS (tests/vm/oldkernel.sh).
        assert_eq!(sys::mount_setattr_probe(), Ok(()));
    }

    #[test]
    fn fsopen_asks_the_kernel() {
        // Built in or loadable on every kernel this runs on; a type no kernel has is ENODEV.
        assert_eq!(sys::fsopen_probe("overlay"), Ok(()));
        assert_eq!(sys::fsopen_probe("no-such-fs-hs"), Err(Errno::ENODEV));
    }
}
