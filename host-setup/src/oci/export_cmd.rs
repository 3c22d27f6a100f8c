//! `host-setup export NAME DIR [-- CMD...]`: the journal's Spec and layers -> an
//! OCI bundle in DIR (export.rs writes config.json, export_rootfs.rs the rootfs).
//! DIR must not exist or be empty; on any failure what was written is removed.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::export::{self, Extra};
use super::export_rootfs::{self, Counts, Layer};
use crate::error::{Result, SysContext};
use crate::state::{Journal, Paths, Role};
use oci_spec::runtime::PosixRlimitType;

/// The bundle dir's mode: others may traverse it, which a user-namespaced
/// container's root (an unprivileged host uid) needs to reach rootfs.
pub const BUNDLE_DIR_MODE: u32 = 0o711;

/// Writes the bundle of container `name` into `dir`; returns a one-line summary.
pub fn export(paths: &Paths, name: &str, dir: &Path, command: &[String]) -> Result<String> {
    let journal = Journal::read(paths, name)?.ok_or_else(|| {
        crate::precondition!(
            "export: no container {name} in {} (host-setup status lists them)",
            paths.containers().display()
        )
    })?;
    let spec = journal.spec().ok_or_else(|| {
        crate::precondition!(
            "export: {name}'s journal has no spec (its setup was interrupted): run host-setup down {name}"
        )
    })?;
    let made_dir = prepare(dir)?;
    let result = write(paths, &spec, &journal, dir, command);
    if result.is_err() {
        // Ours only: the bundle's two entries, and DIR if this call made it.
        let _ = fs::remove_file(dir.join("config.json"));
        let _ = fs::remove_dir_all(export::rootfs_dir(dir));
        if made_dir {
            let _ = fs::remove_dir(dir);
        }
    }
    let c = result?;
    Ok(format!(
        "exported {name} to {}: config.json and rootfs ({} entries, {} hard links, {} deleted by the container)",
        dir.display(),
        c.entries,
        c.links,
        c.hidden
    ))
}

/// DIR: made (true), or taken if it is an empty directory (false); anything else
/// is refused before anything is written.
fn prepare(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(crate::precondition!(
                    "export: {} exists and is not empty: give a new or empty directory",
                    dir.display()
                ));
            }
            Ok(false)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir(dir).sys(|| format!("export: mkdir {}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(BUNDLE_DIR_MODE))
                .sys(|| format!("export: chmod {}", dir.display()))?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            Err(crate::precondition!("export: {} exists and is not a directory", dir.display()))
        }
        Err(e) => Err(e).sys(|| format!("export: open {}", dir.display())),
    }
}

fn write(paths: &Paths, spec: &crate::spec::Spec, journal: &Journal, dir: &Path, command: &[String]) -> Result<Counts> {
    let ids = journal.ids().filter(|_| spec.userns);
    let mut layers = vec![Layer { dir: crate::disk::upper(paths, spec), shift: None }];
    layers.extend(journal.layer_dirs().into_iter().map(|d: PathBuf| Layer { dir: d, shift: ids }));
    let rootfs = export::rootfs_dir(dir);
    fs::create_dir(&rootfs).sys(|| format!("export: mkdir {}", rootfs.display()))?;
    let counts = export_rootfs::flatten(&layers, &rootfs)?;
    let v1 = crate::cgroup::Cgroups::detect().map(|c| c.version() == 1).unwrap_or(false);
    // A running container's own limits; else those it would inherit now.
    let live = journal
        .proc(Role::Init)
        .filter(|p| p.alive())
        .and_then(|p| fs::read_to_string(format!("/proc/{}/limits", p.pid)).ok());
    let rlimits = live.map(|t| rlimits_of(&t)).filter(|r| r.len() == 16).unwrap_or_else(export::own_rlimits);
    let extra = Extra { ids, command: command.to_vec(), v1, rlimits };
    let config = export::config(spec, &extra, Path::new("rootfs"))?;
    let path = dir.join("config.json");
    fs::write(&path, export::to_json(&config)?).sys(|| format!("export: write {}", path.display()))?;
    Ok(counts)
}

/// /proc/PID/limits: one line per RLIMIT_* in the kernel's order (0 = CPU ..
/// 15 = RTTIME), after a header; soft and hard in the columns after the name,
/// which is padded to 26 characters; "unlimited" is RLIM_INFINITY.
pub fn rlimits_of(text: &str) -> Vec<(PosixRlimitType, u64, u64)> {
    let types = export::own_rlimit_types();
    let value = |v: &str| if v == "unlimited" { Some(u64::MAX) } else { v.parse().ok() };
    text.lines()
        .skip(1)
        .zip(types)
        .filter_map(|(l, t)| {
            let mut cols = l.get(26..)?.split_whitespace();
            Some((t, value(cols.next()?)?, value(cols.next()?)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_limits_parse_in_the_kernels_order() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        0                    unlimited            bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96367                96367                processes \n\
Max open files            1024                 20000                files     \n";
        let r = rlimits_of(text);
        assert_eq!(r.len(), 8);
        assert_eq!(r[3], (PosixRlimitType::RlimitStack, 8 << 20, u64::MAX));
        assert_eq!(r[7], (PosixRlimitType::RlimitNofile, 1024, 20000));
        let own = rlimits_of(&fs::read_to_string("/proc/self/limits").unwrap());
        assert_eq!(own, export::own_rlimits(), "what getrlimit says, in the same order");
    }
}
