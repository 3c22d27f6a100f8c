//! The supervisor of a background container lives in a cgroup of its own,
//! `<parent>/NAME.supervisor`, not in the caller's (a systemd unit that ran `up`
//! kills what is left in its cgroup when it ends; tests/vm/systemd shows that on a
//! systemd host). Here, on whatever layout this host has: on v1 in each controller
//! hierarchy the containers use and in systemd's name=systemd and unified trees;
//! gone after `down`.

use std::path::PathBuf;

use lab_tests::{wait_for, Lab};

/// /proc/PID/cgroup: one `ID:CONTROLLERS:PATH` line per hierarchy.
fn cgroup_lines(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap().lines().map(str::to_string).collect()
}

fn expected_dirs(lab: &Lab, name: &str) -> Vec<PathBuf> {
    let cg = host_setup::cgroup::Cgroups::detect().unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    host_setup::supervisor_cgroup::dirs(&cg, &info, &lab.cgroup_parent, name)
}

#[test]
fn the_supervisor_leaves_the_callers_cgroup_for_its_own_and_down_removes_it() {
    let lab = Lab::new();
    let n = lab.name("s");
    lab.ok(&["up", "--net", "none", &n]);
    let sup = lab.journal_pid(&n, "supervisor").expect("the journal names the supervisor");
    let dirs = expected_dirs(&lab, &n);
    let leaf = format!("/{}/{n}.supervisor", lab.cgroup_parent);
    if !matches!(host_setup::cgroup::Cgroups::detect().unwrap(), host_setup::cgroup::Cgroups::V2(_)) {
        // v1: also the trees systemd tracks units in, where this host has them.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for l in info.lines().filter(|l| l.contains(" - cgroup2 ") || l.ends_with(",name=systemd")) {
            let mount = l.split(' ').nth(4).unwrap();
            assert!(dirs.iter().any(|d| d.starts_with(mount)), "no supervisor dir under {mount}: {dirs:?}");
        }
    }
    for d in &dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert!(procs.lines().any(|p| p == sup.to_string()), "supervisor {sup} is not in {}: {procs:?}", d.display());
    }
    // One line per hierarchy in /proc/PID/cgroup: its own leaf in as many as it has dirs.
    let lines = cgroup_lines(sup);
    let own = lines.iter().filter(|l| l.ends_with(&leaf)).count();
    assert_eq!(own, dirs.len(), "supervisor {sup} is in its leaf in {own} hierarchies of {}: {lines:?}", dirs.len());
    let mine = cgroup_lines(std::process::id() as i32);
    assert!(lines.iter().all(|l| l.ends_with(&leaf) || mine.contains(l)), "{lines:?}");

    lab.ok(&["down", &n]);
    wait_for("the supervisor's dirs to go", || dirs.iter().all(|d| !d.exists()).then_some(()));
    for d in &dirs {
        let parent = d.parent().unwrap();
        assert!(!parent.exists(), "{} is left after down", parent.display());
    }
}
