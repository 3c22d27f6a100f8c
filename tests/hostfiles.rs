//! The host around the containers: host-setup's files are root's alone. An
//! unprivileged host user (uid 65534) can list, read or run nothing under the
//! state dir — not a journal, not a container's output, not a setuid-root binary
//! a `--no-userns` container leaves in its upper dir — and cannot reach a
//! container's root through /proc; an old, loose state dir is tightened by the
//! next `up`; and `down` removes a container's tree without following a symlink
//! swapped in while it works, every time.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{stdout, text, world_readable_copy, Lab, TempDir};

const NOBODY: u32 = 65534;

/// Statically linked: runs as any user from a path everyone can read.
const BUSYBOX: &str = "/bin/busybox";

/// `busybox ARGS` as uid/gid 65534 with no supplementary groups (std drops
/// them when root sets a uid): (success, stdout + stderr).
fn as_nobody(args: &[&str]) -> (bool, String) {
    let o = Command::new(BUSYBOX).args(args).uid(NOBODY).gid(NOBODY).output().expect("run busybox as nobody");
    (o.status.success(), text(&o))
}

/// Runs `path true` as uid 65534: Ok(success) if the exec happened, Err(error) if not.
fn exec_as_nobody(path: &Path) -> std::io::Result<bool> {
    // arg0 "busybox": the copies are busybox, which reads its applet from argv[0].
    Command::new(path).arg0("busybox").arg("true").uid(NOBODY).gid(NOBODY).status().map(|s| s.success())
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display())).mode() & 0o7777
}

fn denied(args: &[&str]) {
    let (ok, out) = as_nobody(args);
    assert!(!ok && out.contains("Permission denied"), "uid 65534 ran `{}`: {out}", args.join(" "));
}

/// What a container has on the host, for the probes.
struct Files {
    dir: PathBuf,
    journal: PathBuf,
    console: PathBuf,
    upper: PathBuf,
}

fn files(lab: &Lab, name: &str) -> Files {
    let c = lab.state_dir.join("containers");
    Files {
        dir: c.join(name),
        journal: c.join(format!("{name}.journal")),
        console: c.join(name).join("console.log"),
        upper: c.join(name).join("upper"),
    }
}

/// Every probe of an unprivileged host user against one container's files.
fn nobody_reaches_nothing(lab: &Lab, name: &str) {
    let f = files(lab, name);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for dir in [&lab.state_dir, &lab.state_dir.join("containers"), &lab.state_dir.join("layers"), &f.dir, &f.upper] {
        denied(&["ls", &s(dir)]);
    }
    for file in [&f.journal, &f.console, &f.upper.join("suid"), &f.upper.join("etc/passwd")] {
        denied(&["cat", &s(file)]);
    }
    let e = exec_as_nobody(&f.upper.join("suid")).expect_err("uid 65534 ran the container's setuid binary");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    // The mounted view of the container's root: only through /proc/PID/root.
    let root = format!("/proc/{}/root/", lab.init_pid(name));
    denied(&["ls", &root]);
}

#[test]
fn nothing_under_the_state_dir_is_another_host_users() {
    let lab = Lab::new();
    let (plain, mapped) = (lab.name("p"), lab.name("u"));
    let layer = TempDir::new("busybox-layer");
    fs::copy(BUSYBOX, layer.path("busybox")).unwrap();
    lab.ok(&["up", &plain, "--no-userns", "--layer", &layer.s("")]);
    lab.ok(&["up", &mapped, "--userns", "--layer", &layer.s("")]);
    for name in [&plain, &mapped] {
        // The container leaves a setuid copy of a shell in its root, and says
        // something on its console.
        let o = lab.exec(name, &["/busybox", "sh", "-c", "cp /busybox /suid && chmod 4755 /suid && ls -ln /suid"]);
        assert!(o.status.success() && stdout(&o).starts_with("-rwsr-xr-x"), "{}", text(&o));
    }
    let f = files(&lab, &plain);
    assert_eq!((fs::metadata(f.upper.join("suid")).unwrap().uid(), mode(&f.upper.join("suid"))), (0, 0o4755));

    // The modes, as state/perms.rs lays them out.
    let st = &lab.state_dir;
    assert_eq!(mode(st), 0o711, "the state dir");
    assert_eq!(mode(&st.join("containers")), 0o711);
    assert_eq!(mode(&st.join("layers")), 0o700);
    assert_eq!(mode(&f.dir), 0o700, "a container dir without a user namespace");
    let m = files(&lab, &mapped);
    assert_eq!(mode(&m.dir), 0o710, "with one: searched by its root's group");
    assert_ne!(fs::metadata(&m.dir).unwrap().gid(), 0, "the group is the container's root group");
    for file in [&f.journal, &f.console, &m.journal, &m.console, &st.join(format!("containers/{plain}.lock"))] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    for name in [&plain, &mapped] {
        nobody_reaches_nothing(&lab, name);
    }
    // The control: the same setuid binary, where anyone may reach it, is run.
    let reachable = world_readable_copy(&f.upper.join("suid"));
    let copy = reachable.path("suid");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    assert!(exec_as_nobody(&copy).expect("uid 65534 runs a reachable copy"), "busybox true");
    lab.ok(&["down", &plain, &mapped]);
}

#[test]
fn a_loose_state_dir_is_tightened_by_the_next_up() {
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    lab.ok(&["up", &a, "--no-userns"]);
    let f = files(&lab, &a);
    // As an older host-setup (or a hand) left it: listable and readable by all.
    let st = &lab.state_dir;
    for (p, m) in [
        (st.clone(), 0o755),
        (st.join("containers"), 0o755),
        (st.join("layers"), 0o755),
        (f.dir.clone(), 0o755),
        (f.journal.clone(), 0o644),
        (f.console.clone(), 0o644),
    ] {
        fs::set_permissions(&p, fs::Permissions::from_mode(m)).unwrap();
    }
    let journal = f.journal.to_str().unwrap();
    let (ok, out) = as_nobody(&["cat", journal]);
    assert!(ok && out.contains("\"spec\""), "the control: a loose journal is read by uid 65534: {out}");

    lab.ok(&["up", &b, "--no-userns"]);
    assert_eq!([mode(st), mode(&st.join("containers")), mode(&st.join("layers"))], [0o711, 0o711, 0o700]);
    assert_eq!([mode(&f.dir), mode(&f.journal), mode(&f.console)], [0o700, 0o600, 0o600]);
    nobody_reaches_nothing(&lab, &a);
    assert_eq!(mode(&f.upper), 0o755, "the container's \"/\" keeps its mode: its dir guards it");
    lab.ok(&["down", &a, &b]);
}

/// `dirs` dirs of `files` files each under `top`, named d0.. and f0..
fn fill(top: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = top.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..files {
            fs::File::create(dir.join(format!("f{i}"))).unwrap();
        }
    }
}

#[test]
fn down_never_follows_a_directory_swapped_for_a_symlink() {
    const TRIES: usize = 20;
    const DIRS: usize = 4;
    const FILES: usize = 500;
    let lab = Lab::new();
    // A root-owned host directory with the same names as the container's dirs
    // hold: a remover that followed the symlink would delete them.
    let host = TempDir::new("host-files");
    fill(&host.0, 1, FILES);
    let host_dir = host.path("d0");
    for t in 1..=TRIES {
        let start = std::time::Instant::now();
        let name = lab.name(&format!("s{t}"));
        lab.ok(&["up", &name, "--no-userns"]);
        let tree = files(&lab, &name).upper.join("tree");
        fill(&tree, DIRS, FILES);
        // The racer: at the first unlink in any of the dirs, moves that dir away
        // (still in the container's tree) and puts a symlink to the host's dir in its place.
        let racer = swap_on_first_delete(&tree, DIRS, &host_dir);
        let o = lab.run(&["down", &name]);
        let swapped = racer.join().unwrap();
        let left = fs::read_dir(&host_dir).unwrap().count();
        assert_eq!(left, FILES, "try {t}: down deleted {} host files through {swapped}", FILES - left);
        assert!(o.status.success(), "try {t}: {}", text(&o));
        assert!(!files(&lab, &name).dir.exists(), "try {t}: the container's tree is gone");
        assert!(swapped.starts_with("swapped"), "try {t}: the racer never swapped: {swapped}");
        eprintln!("try {t}: {swapped}, {:?}", start.elapsed());
    }
}

/// Watches the `dirs` dirs of `tree` with inotify (IN_DELETE); on the first
/// delete, swaps that dir for a symlink to `target`. Returns what it did.
fn swap_on_first_delete(tree: &Path, dirs: usize, target: &Path) -> std::thread::JoinHandle<String> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).unwrap();
    let mut watched = vec![];
    for d in 0..dirs {
        let dir = tree.join(format!("d{d}"));
        watched.push((ino.add_watch(&dir, AddWatchFlags::IN_DELETE).unwrap(), dir));
    }
    let (tree, target) = (tree.to_path_buf(), target.to_path_buf());
    std::thread::spawn(move || {
        // Blocks until down starts removing (or the tree is gone: IN_IGNORED).
        let events = ino.read_events().unwrap();
        let Some((_, dir)) = events.iter().find_map(|e| watched.iter().find(|(w, _)| *w == e.wd)) else {
            return format!("no delete event: {events:?}");
        };
        let away = tree.join("moved-away");
        if let Err(e) = fs::rename(dir, &away) {
            return format!("too late: rename {}: {e}", dir.display());
        }
        match std::os::unix::fs::symlink(&target, dir) {
            Ok(()) => format!("swapped {} for a symlink to {}", dir.display(), target.display()),
            Err(e) => format!("too late: symlink {}: {e}", dir.display()),
        }
    })
}
