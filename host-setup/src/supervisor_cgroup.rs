//! The supervisor's own cgroup: `up` forks the supervisor (supervisor.rs), which
//! would otherwise stay in the caller's cgroup. When the caller is a systemd unit
//! (`systemd-run host-setup up ...`, a service's ExecStart), systemd kills
//! everything in the unit's cgroup once the unit ends — the supervisor with it, and
//! from then on the container's exit status and OOM kills go unrecorded. So the
//! supervisor moves, before it starts init, into `<parent>/NAME.supervisor`, a
//! cgroup of ours beside the containers' (never their parent: on v2 a cgroup with
//! processes may not enable controllers for children), in every hierarchy:
//!
//! - v2: the unified tree, the only one systemd tracks units in;
//! - v1: each controller hierarchy the containers use, and the ones systemd tracks
//!   units in: `name=systemd` (/sys/fs/cgroup/systemd) and, on a hybrid host, the
//!   cgroup2 tree beside them (/sys/fs/cgroup/unified). init then inherits these
//!   two (it joins only the controller hierarchies), so the container is out of the
//!   unit as well.
//!
//! Each dir is journalled (`Resource::SupervisorCgroup`) before it is made, and
//! removed on `down` like the container's own (action::undo). Names cannot clash
//! with a container's: container names have no '.'.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::cgroup::{self, Cgroups};
use crate::ctx::Ctx;
use crate::error::{Result, SysContext};
use crate::state::{Record, Resource};

/// The leaf's name under the project's cgroup parent.
pub fn leaf(name: &str) -> String {
    format!("{name}.supervisor")
}

/// The supervisor's cgroup dirs on this host: those of the containers' hierarchies,
/// and on v1 those of the hierarchies systemd tracks processes in (from
/// /proc/self/mountinfo's text `mountinfo`).
pub fn dirs(cgroups: &Cgroups, mountinfo: &str, parent: &str, name: &str) -> Vec<PathBuf> {
    let mut out = cgroups.dirs(parent, &leaf(name));
    if let Cgroups::V1(_) = cgroups {
        for line in mountinfo.lines() {
            // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>"
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("");
            let super_opts = r.nth(1).unwrap_or("");
            let fields: Vec<&str> = left.split_whitespace().collect();
            let (Some(&"/"), Some(mount_point)) = (fields.get(3), fields.get(4)) else { continue };
            let tracks =
                fstype == "cgroup2" || fstype == "cgroup" && super_opts.split(',').any(|o| o == "name=systemd");
            let dir = Path::new(&crate::mountinfo::unescape(mount_point)).join(parent).join(leaf(name));
            if tracks && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// In the supervisor, before it starts init: make its cgroups (journalled first)
/// and move itself into each ("0": the writer; it is single-threaded here).
pub fn enter(ctx: &mut Ctx) -> Result<()> {
    let info = crate::mountinfo::read()?;
    for dir in dirs(ctx.cgroups, &info, ctx.cgroup_parent, &ctx.spec.name) {
        if let Some(j) = ctx.journal.as_mut() {
            j.append(&Record::Made(Resource::SupervisorCgroup(dir.clone())))?;
        }
        make(&dir)?;
        let (mut f, path) = cgroup::join_file(&dir)?;
        f.write_all(b"0")
            .sys(|| format!("move the supervisor into {}: write 0 to {}", dir.display(), path.display()))?;
        log::debug!("supervisor {} in {}", std::process::id(), dir.display());
    }
    Ok(())
}

/// mkdir the parent (in systemd's hierarchies nothing of ours may be there yet)
/// and the leaf. A concurrent `down` of the parent's last container may remove the
/// parent between the two: then make it again.
fn make(dir: &Path) -> Result<()> {
    let parent = dir.parent().expect("a cgroup dir has a parent");
    let mut tries = 0;
    loop {
        cgroup::mkdir(parent)?;
        match cgroup::mkdir(dir) {
            Err(e) if e.errno() == Some(Errno::ENOENT) && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/devices rw,nosuid - cgroup cgroup rw,devices
90 80 0:30 /docker/abc /mnt/bind rw - cgroup cgroup rw,name=systemd
";

    #[test]
    fn v1_adds_the_hierarchies_systemd_tracks_units_in() {
        let cg = Cgroups::v1_from_mountinfo(HYBRID).unwrap();
        let dirs: Vec<String> = dirs(&cg, HYBRID, "hs", "red").iter().map(|d| d.display().to_string()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu,cpuacct/hs/red.supervisor",
                "/sys/fs/cgroup/memory/hs/red.supervisor",
                "/sys/fs/cgroup/pids/hs/red.supervisor",
                "/sys/fs/cgroup/devices/hs/red.supervisor",
                "/sys/fs/cgroup/unified/hs/red.supervisor",
                "/sys/fs/cgroup/systemd/hs/red.supervisor",
            ]
        );
    }

    #[test]
    fn v2_is_one_leaf_beside_the_containers() {
        let cg = Cgroups::V2("/sys/fs/cgroup".into());
        let info = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(dirs(&cg, info, "host-setup", "red"), [PathBuf::from("/sys/fs/cgroup/host-setup/red.supervisor")]);
    }
}
