//! What of a lab is on the host, as a set of lines to compare before and after
//! (tests/robust.rs, tests/faults.rs).

use std::collections::BTreeSet;
use std::path::Path;

use crate::Lab;

/// What of `lab` is on the host: netns, cgroup dirs of its parent, files in its
/// state dir outside the layer cache, mounts and processes mentioning it.
pub fn footprint(lab: &Lab) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&format!("T{}", lab.tag())) {
            out.insert(format!("netns {n}"));
        }
    }
    for parent in host_setup::cgroup::parents(&lab.cgroup_dirs("x")) {
        out.insert(format!("cgroup parent {}: {}", parent.display(), parent.exists()));
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                out.insert(format!("cgroup {}", e.path().display()));
            }
        }
    }
    let state = lab.state_dir.to_string_lossy().into_owned();
    for l in std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        if l.contains(&state) {
            out.insert(format!("mount {l}"));
        }
    }
    let containers = lab.state_dir.join("containers");
    for e in walk(&containers) {
        out.insert(format!("file {e}"));
    }
    // Processes: host-setup ones (supervisors) carry the lab's state dir in their
    // environment; containers' ones sit in the lab's cgroups.
    let env_mark = format!("HOST_SETUP_STATE_DIR={state}");
    let cg_mark = format!("/{}/", lab.cgroup_parent);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let environ =
            String::from_utf8_lossy(&std::fs::read(e.path().join("environ")).unwrap_or_default()).into_owned();
        let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        // A zombie holds nothing but its pid: an ended supervisor, reparented to this
        // machine's PID 1 (which reaps lazily), still names its removed cgroup
        // (`0::/<parent>/NAME.supervisor (deleted)`) until it is reaped.
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat.rfind(')').is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if !zombie && (environ.split('\0').any(|v| v == env_mark) || cgroup.contains(&cg_mark)) {
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default())
                .replace('\0', " ");
            out.insert(format!("process {} {}", e.file_name().to_string_lossy(), cmdline.trim()));
        }
    }
    out
}

pub fn walk(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
    }
    out
}
