//! hsrun under a shared "/" (every systemd host; the v2 VM), made here without
//! touching the host: each run is in a mount namespace of its own (`unshare -m`,
//! private from the host) whose "/" is then made rshared. A bundle's
//! rootfsPropagation "private" or "slave" (not recursive) once left the rootfs's
//! parent mount shared, and pivot_root said EINVAL (issue 22, found in the VM).
//! Each run also checks that the detach of the old root unmounted nothing of the
//! runtime's namespace (a tmpfs on a shared tmpfs there stays), and what "/" is
//! inside (the spec's propagation, as runc).
use std::path::PathBuf;
use std::process::Command;

use lab_tests::hsrun_world::World;
use lab_tests::{bin, text};
use serde_json::json;

/// What the container says: that it ran, and the optional fields of its "/" in
/// mountinfo without their numbers ("shared", "master" or nothing: private).
const INSIDE: &str = r#"echo ran; awk '$5 == "/" { o = ""; for (i = 7; $i != "-"; i++) { t = $i; sub(/:[0-9]+$/, "", t); o = o " " t }; print "root:" o }' /proc/self/mountinfo"#;

/// In the test's namespace: the bundles' dir (TOP) a mount of its own (as the VM's
/// /tmp: here /tmp is on "/", whose non-recursive "private" hid the bug), "/"
/// rshared, a tmpfs with a tmpfs in it (LEAF), then
/// hsrun run; after it, LEAF's mount count and any mount left under the state
/// root or the bundle (grep and sed, not awk: the VM has those).
const OUTSIDE: &str = r#"
mount --bind "$TOP" "$TOP" || exit 89
mount --make-rshared / || exit 90
mount -t tmpfs hsprop "$HOLD" && mkdir "$HOLD/leaf" && mount -t tmpfs hsprop "$HOLD/leaf" || exit 91
"$HSRUN" --root "$ROOT" run --bundle "$BUNDLE" "$ID"
echo "hsrun-exit=$?"
echo "leaf-mounts=$(grep -c -F " $HOLD/leaf " /proc/self/mountinfo)"
grep -F -e " $ROOT/" -e " $ROOT " -e " $BUNDLE/" -e " $BUNDLE " /proc/self/mountinfo | sed 's/^/left: /'
true
"#;

fn bundle(w: &World, id: &str, propagation: &str) -> PathBuf {
    let b = w.dir.path(id);
    let bin_dir = b.join("rootfs/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(b.join("rootfs/proc")).unwrap();
    std::fs::copy("/bin/busybox", bin_dir.join("busybox")).expect("busybox-static is missing");
    for a in ["sh", "awk", "echo"] {
        std::os::unix::fs::symlink("busybox", bin_dir.join(a)).unwrap();
    }
    let c = json!({
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", INSIDE], "cwd": "/", "env": ["PATH=/bin"]},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "cgroupsPath": format!("/{}/{id}", w.parent),
            "namespaces": [{"type": "pid"}, {"type": "mount"}],
            "rootfsPropagation": propagation
        }
    });
    std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    b
}

/// Runs a bundle with `propagation` under a shared "/"; returns the container's
/// and the script's output lines, and all its output for a failure's message.
fn run_under_shared_root(propagation: &str) -> (World, String, Vec<String>, String) {
    let w = World::new("hsrun-prop");
    let id = w.id(&format!("prop-{propagation}"));
    let b = bundle(&w, &id, propagation);
    let hold = w.dir.path(&format!("{id}-hold"));
    std::fs::create_dir_all(&hold).unwrap();
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", OUTSIDE])
        .env("HSRUN", bin("hsrun"))
        .env("ROOT", &w.root)
        .env("BUNDLE", &b)
        .env("ID", &id)
        .env("HOLD", &hold)
        .env("TOP", &w.dir.0)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
    (w, id, lines, text(&o))
}

fn check(propagation: &str, root: &str) {
    let (w, id, lines, all) = run_under_shared_root(propagation);
    let want = ["ran".to_string(), format!("root:{root}"), "hsrun-exit=0".into(), "leaf-mounts=1".into()];
    assert_eq!(lines, want, "rootfsPropagation {propagation:?} under a shared \"/\": {all}");
    assert_eq!(w.leftovers(&id), Vec::<String>::new());
}

#[test]
fn private_runs_under_a_shared_root() {
    check("private", "");
}

#[test]
fn slave_runs_under_a_shared_root_and_its_root_is_a_slave() {
    check("slave", " master");
}

#[test]
fn shared_runs_under_a_shared_root_in_a_peer_group_of_its_own() {
    check("shared", " shared");
}
