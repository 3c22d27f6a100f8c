//! Real engines drive our OCI runtime: containerd 1.6 (`ctr run --runc-binary`,
//! through containerd-shim-runc-v2), Podman (`--runtime`, through conmon) and
//! Docker (daemon.json `runtimes`, through containerd's shim), each started by
//! the test with a world of its own under a temporary directory, no mocks.
//!
//! The runtime under test is target/.../release/hsrun, or the binary named by
//! `OCI_ENGINES_RUNTIME` (e.g. `/usr/sbin/runc`: the same checks pass with runc,
//! which is how they were written and how a failure is told apart from a test
//! bug):
//!
//!     OCI_ENGINES_RUNTIME=/usr/sbin/runc tests/run --test oci_engines
//!
//! What each engine leaves on the host (the parent cgroups `ociengines-*` of
//! containerd's namespace, `libpod_parent`, `docker`; /run/containerd/s) is
//! removed by name afterwards (engine_host.rs); what the container itself had
//! (its cgroups, mounts, runtime state) must be gone after delete, checked.
#[path = "oci_engines/containerd.rs"]
mod containerd;
#[path = "oci_engines/docker.rs"]
mod docker;
mod docker_host;
mod dropin;
mod engine_host;
#[path = "oci_engines/image.rs"]
mod image;
#[path = "oci_engines/podman.rs"]
mod podman;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use lab_tests::mounts_under;

/// containerd-shim-runc-v2 puts its socket in /run/containerd/s whatever the
/// config says, and each test removes that directory if it made it: the tests
/// that run a containerd (ctr's and dockerd's) take turns.
pub fn containerd_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The OCI runtime the engines are pointed at.
pub fn runtime() -> PathBuf {
    lab_tests::require_root();
    match std::env::var_os("OCI_ENGINES_RUNTIME") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_absolute() && p.exists(), "OCI_ENGINES_RUNTIME={}: no such binary", p.display());
            p
        }
        None => lab_tests::bin("hsrun"),
    }
}

/// A name unique to this test: `ociengines-PID-N-tag`.
pub fn unique(tag: &str) -> String {
    format!("ociengines-{}-{}-{tag}", std::process::id(), lab_tests::seq())
}

/// Runs `cmd` (stdin /dev/null) and returns its stdout; panics with all of its
/// output if it fails.
pub fn ok(cmd: &mut Command, what: &str) -> String {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(o.status.success(), "{what}: {}", lab_tests::text(&o));
    lab_tests::stdout(&o)
}

/// Directories named `rel` (e.g. `ns/id`) that exist in any cgroup hierarchy.
pub fn cgroups_named(rel: &str) -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter(|l| l.split_once(" - ").is_some_and(|(_, r)| r.starts_with("cgroup ") || r.starts_with("cgroup2 ")))
        .map(|l| PathBuf::from(l.split(' ').nth(4).unwrap()).join(rel))
        .filter(|d| d.exists())
        .collect()
}

/// Whether the process `pid` runs the project's init: the same file (device and
/// inode; /proc/PID/exe's link text is the path inside the container).
pub fn is_our_init(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(lab_tests::bin("init")).unwrap();
    std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| (m.dev(), m.ino()) == (ours.dev(), ours.ino()))
}

/// What the runtime itself says of the container: `RUNTIME --root ROOT state ID`
/// (the OCI interface; runc keeps ROOT/ID, hsrun ROOT/containers/ID), its JSON if
/// it knows the container.
pub fn runtime_state(root: &Path, id: &str) -> Option<String> {
    let o = Command::new(runtime()).arg("--root").arg(root).args(["state", id]).stdin(Stdio::null()).output().unwrap();
    o.status.success().then(|| lab_tests::stdout(&o))
}

/// Nothing of the container is left in the runtime's root: `state` does not know
/// it and no path under ROOT names it.
pub fn assert_runtime_forgot(root: &Path, id: &str) {
    assert_eq!(runtime_state(root, id), None, "the runtime still knows {id} after delete (--root {})", root.display());
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            assert!(e.file_name().to_str() != Some(id), "the runtime's state {} is left", e.path().display());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
}
