//! cgroup v1's cpuset hierarchy. A new cpuset cgroup starts with empty
//! cpuset.cpus and cpuset.mems (unless its parent has cgroup.clone_children), and
//! the kernel lets no task join it until both are set (ENOSPC); a value must be a
//! subset of the parent's (EINVAL otherwise). So each directory made on the way
//! down gets its parent's values, then the container's leaf the config's.
//! (v2's cpuset needs none of this: an empty cpuset.cpus means the parent's.)

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};

pub const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    Ok(fs::read_to_string(&p).sys(|| format!("read {}", p.display()))?.trim().to_string())
}

/// The directories from just below `top` down to `dir`, top first.
fn path_down(top: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        dir.ancestors().take_while(|a| *a != top && a.starts_with(top)).map(Path::to_path_buf).collect();
    out.reverse();
    out
}

/// `mkdir -p dir` under the cpuset hierarchy `top`, filling each directory it
/// makes with its parent's cpuset.cpus and cpuset.mems.
pub fn mkdir(top: &Path, dir: &Path) -> Result<()> {
    for d in path_down(top, dir) {
        match fs::create_dir(&d) {
            Ok(()) => log::debug!("mkdir {}", d.display()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).sys(|| format!("mkdir {}", d.display())),
        }
        let parent = d.parent().expect("below the hierarchy's top");
        for file in FILES {
            let v = read(parent, file)?;
            if v.is_empty() {
                return Err(crate::failed!(
                    "cgroups: {}/{file} is empty, so {} cannot get cpus or mems: set it first (a cpuset cgroup not made by this runtime)",
                    parent.display(),
                    d.display()
                ));
            }
            super::write(&d.join(file), &v)?;
        }
    }
    Ok(())
}

/// The `--explain` lines of `mkdir`.
pub fn shell(top: &Path, dir: &Path) -> Vec<String> {
    let mut out = vec![format!("mkdir -p {}   # each dir it makes, from its parent:", dir.display())];
    for d in path_down(top, dir) {
        let p = d.parent().unwrap_or(top);
        for f in FILES {
            out.push(format!("cat {}/{f} > {}/{f}", p.display(), d.display()));
        }
    }
    out
}

/// A write into cpuset.cpus or cpuset.mems that the kernel refused with EINVAL or ERANGE:
/// say what the parent allows.
pub fn hint(e: Error, file: &Path, value: &str) -> Error {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // ERANGE: past the last CPU the kernel could ever have (nr_cpu_ids).
    if !matches!(e.errno(), Some(Errno::EINVAL | Errno::ERANGE)) || !FILES.contains(&name) {
        return e;
    }
    let Some(parent) = file.parent().and_then(Path::parent) else { return e };
    // v1 checks against the parent's cpuset.cpus; v2 against its effective set.
    let (v1, v2) = (name.replace("cpuset.", "cpuset.effective_"), format!("{name}.effective"));
    let allowed =
        [v2, v1, name.to_string()].iter().find_map(|f| fs::read_to_string(parent.join(f)).ok()).unwrap_or_default();
    e.hint(format!(
        "{value:?} is not within the parent's {} ({:?}) or not a valid list",
        parent.join(name).display(),
        allowed.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_made_on_the_way_down() {
        let top = Path::new("/sys/fs/cgroup/cpuset");
        let got = path_down(top, &top.join("testdir/cgrouptest/container"));
        assert_eq!(
            got,
            [top.join("testdir"), top.join("testdir/cgrouptest"), top.join("testdir/cgrouptest/container")]
        );
        let text = shell(top, &top.join("a/b")).join("\n");
        assert!(text.contains("cat /sys/fs/cgroup/cpuset/cpuset.cpus > /sys/fs/cgroup/cpuset/a/cpuset.cpus"), "{text}");
        assert!(
            text.contains("cat /sys/fs/cgroup/cpuset/a/cpuset.mems > /sys/fs/cgroup/cpuset/a/b/cpuset.mems"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_parent_is_named() {
        // (Filling needs the kernel's control files: tests/oci_cgroups.rs checks it.)
        let top = std::env::temp_dir().join(format!("cpuset-unit-{}", std::process::id()));
        fs::create_dir_all(top.join("empty")).unwrap();
        fs::write(top.join("empty/cpuset.cpus"), "\n").unwrap();
        let e = mkdir(&top, &top.join("empty/c")).unwrap_err().to_string();
        assert!(e.contains("empty/cpuset.cpus is empty"), "{e}");
        fs::remove_dir_all(&top).unwrap();
    }
}
