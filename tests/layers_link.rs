//! The layer cache without copying what is already on disk: a layer's files are
//! hard links to the host's files where the state dir is on the same mount (and
//! a link gives what a copy would), copies on another filesystem. As root; every
//! test works in its own dirs, removed even on failure; mounts happen only inside
//! `unshare -m` (they die with it). Writes go only to files the test made.
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host_setup::layers::{self, Builder, Manifest, Placement};
use lab_tests::{stdout, text, Lab, TempDir};

fn own_bin_dir() -> PathBuf {
    lab_tests::bin("escape_chroot").parent().unwrap().to_path_buf()
}

fn sh(script: &str) -> Output {
    let out = Command::new("sh").arg("-c").arg(script).output().expect("run sh");
    eprintln!("$ {script}\n{}", text(&out));
    out
}

/// (st_dev, st_ino) of a path, following symlinks (the host's `/bin/ls` is a
/// symlink on a merged-/usr host).
fn id(p: &Path) -> (u64, u64) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.dev(), m.ino())
}

/// What a host file is, except its ctime and link count (a link changes those);
/// its bytes as a hash (a failed assertion prints this).
fn unchanged_part(p: &Path) -> (u64, u64, u32, u32, u32, u64, i64, i64, u64) {
    let m = fs::metadata(p).unwrap();
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&fs::read(p).unwrap(), &mut h);
    let bytes = std::hash::Hasher::finish(&h);
    (m.dev(), m.ino(), m.mode(), m.uid(), m.gid(), m.size(), m.mtime(), m.mtime_nsec(), bytes)
}

/// The mount id of `p`'s mount (/proc/self/fdinfo's mnt_id of an fd on it).
fn mnt_id(p: &Path) -> u64 {
    let f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", std::os::fd::AsRawFd::as_raw_fd(&f))).unwrap();
    let id = info.lines().find_map(|l| l.strip_prefix("mnt_id:")).unwrap_or_else(|| panic!("no mnt_id: {info}"));
    id.trim().parse().unwrap()
}

/// The filesystem type of `p`'s mount (mountinfo's field after " - ").
fn fs_type(p: &Path) -> String {
    let id = mnt_id(p).to_string();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo.lines().find(|l| l.split(' ').next() == Some(&id)).expect("the mount in mountinfo");
    line.split_once(" - ").and_then(|(_, r)| r.split(' ').next()).unwrap_or("").to_string()
}

/// A fresh dir on the mount of the host's /usr/bin/ls (where a layer links): in
/// /tmp where /tmp is that mount, as on the project's machine; else at the root of
/// /usr's mount (the v2 VM: /usr on its root tmpfs, /tmp a bind of an ext4).
/// Removed on drop like any TempDir.
fn dir_on_usrs_mount(tag: &str) -> TempDir {
    let usr = mnt_id(Path::new("/usr/bin/ls"));
    if mnt_id(Path::new("/tmp")) == usr {
        return TempDir::new(tag);
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f[0].parse::<u64>().ok() == Some(usr) && f[3] == "/")
        .map(|f| PathBuf::from(f[4]))
        .unwrap_or_else(|| panic!("no mount {usr} with root / in {mountinfo}"));
    let dir = root.join(format!("lab-test-{}-{}-{tag}", std::process::id(), lab_tests::seq()));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let dir = TempDir(dir);
    assert_eq!(mnt_id(&dir.0), usr, "{} on /usr's mount", dir.0.display());
    dir
}

/// `--no-userns` where the kernel cannot idmap tmpfs (before Linux 6.3: host-setup
/// refuses a layer there, exit 1), as on the v2 VM's 6.1 with /usr on its root
/// tmpfs; nothing where it can (the host's 6.18): there the test runs with the
/// default user namespace, the idmapped layers.
fn tmpfs_userns_args() -> &'static [&'static str] {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (6, 3) {
        &["--no-userns"]
    } else {
        &[]
    }
}

/// A one-binary layer made from a test-owned copy of /bin/true in `t/src`
/// (same filesystem as the layers dir), so the test may change its source.
fn own_layer(t: &TempDir) -> (Builder, Manifest, PathBuf) {
    let src = t.path("src");
    fs::create_dir(&src).unwrap();
    let bin = src.join("mytrue");
    fs::copy("/bin/true", &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let mut b = Builder::new(t.path("layers"), own_bin_dir());
    b.search_path = vec![src];
    (b, layers::parse("mine", "/bin/mytrue  mytrue  coreutils\n").unwrap(), bin)
}

#[test]
fn on_the_same_filesystem_layer_files_are_the_hosts_inodes() {
    lab_tests::require_root();
    let t = dir_on_usrs_mount("link");
    let b = Builder::new(t.path("layers"), own_bin_dir());
    let m = layers::builtin("myroot").unwrap();
    let plan = b.plan(&m).unwrap();
    let placed: Vec<(PathBuf, PathBuf, Placement)> =
        plan.placed().map(|(f, d, h)| (f.to_path_buf(), d.to_path_buf(), h)).collect();
    let hosts: Vec<_> = placed.iter().map(|(f, ..)| unchanged_part(f)).collect();
    let dir = b.build(&plan).unwrap();
    let how = |dest: &str| placed.iter().find(|(_, d, _)| d == Path::new(dest)).map(|p| p.2);
    assert_eq!(how("/bin/ls"), Some(Placement::Link));
    assert_eq!(how("/lib/x86_64-linux-gnu/libc.so.6"), Some(Placement::Link));
    // mount is setuid on the host: a link would keep the bit a copy drops.
    assert_eq!(how("/bin/mount"), Some(Placement::Reflink));
    for ((found, dest, how), before) in placed.iter().zip(&hosts) {
        let in_layer = dir.join(dest.strip_prefix("/").unwrap());
        let (host_id, layer_id) = (id(found), id(&in_layer));
        match how {
            Placement::Link => assert_eq!(layer_id, host_id, "{}: the host's inode", dest.display()),
            _ => assert_ne!(layer_id, host_id, "{}: a copy", dest.display()),
        }
        // Building touched nothing the fingerprint or a container reads.
        assert_eq!(&unchanged_part(found), before, "{}", found.display());
    }
    let mount = fs::metadata(dir.join("bin/mount")).unwrap();
    assert_eq!(mount.mode() & 0o7777, fs::metadata("/usr/bin/mount").unwrap().mode() & 0o777);
    // Linking changed the host files' ctime and link count, not the fingerprint.
    let again = b.plan(&m).unwrap();
    assert!(again.cached() && again.dir() == dir, "{} cached", again.dir().display());
    // --explain says what was done, file by file.
    let text = again.shell().join("\n");
    let l = dir.display();
    assert!(text.contains(&format!("\n  ln -L /usr/bin/ls {l}/bin/ls\n")), "{text}");
    assert!(text.contains(&format!("\n  cp -L --reflink=auto /usr/bin/mount {l}/bin/mount\n")), "{text}");
    // ...and, run by hand, it makes the same links.
    let by_hand = t.path("by-hand");
    assert!(sh(&format!("set -e\n{}", text.replace(&l.to_string(), &by_hand.display().to_string()))).status.success());
    assert_eq!(id(&by_hand.join("bin/ls")), id(Path::new("/usr/bin/ls")));
}

#[test]
fn on_another_filesystem_layer_files_are_copies_and_the_container_runs() {
    let lab = Lab::new();
    let t = TempDir::new("tmpfs");
    let name = lab.name("c");
    let state = t.path("state");
    fs::create_dir(&state).unwrap();
    // A tmpfs as the state dir, in a mount namespace of its own (gone with it):
    // explain, a container that runs ls, then the layer's inodes against the host's.
    let script = format!(
        "set -e\nmount -t tmpfs tmpfs {s}\n\
         {hs} {name} --explain > {t}/explain\n\
         {hs} run {name} {no_userns} -- /bin/ls /bin > {t}/ls\n\
         stat -Lc '%d %i' /usr/bin/ls {s}/layers/myroot-*/bin/ls > {t}/ids\n\
         stat -fc %T {s}/layers/myroot-*/bin/ls >> {t}/ids",
        s = state.display(),
        t = t.0.display(),
        hs = lab_tests::bin("host-setup").display(),
        no_userns = tmpfs_userns_args().join(" ")
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("HOST_SETUP_STATE_DIR", &state)
        .env("HOST_SETUP_CGROUP_PARENT", &lab.cgroup_parent)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let explain = fs::read_to_string(t.path("explain")).unwrap();
    assert!(explain.contains("cp -L /usr/bin/ls "), "{explain}");
    assert!(!explain.contains("ln -L") && !explain.contains("--reflink"), "{explain}");
    let ls = fs::read_to_string(t.path("ls")).unwrap();
    assert!(ls.lines().any(|l| l == "ls") && ls.lines().any(|l| l == "mount"), "{ls}");
    let ids = fs::read_to_string(t.path("ids")).unwrap();
    let lines: Vec<&str> = ids.lines().collect();
    assert_eq!(lines.len(), 3, "{ids}");
    assert_ne!(lines[0].split(' ').next(), lines[1].split(' ').next(), "another st_dev: {ids}");
    assert_eq!(lines[2], "tmpfs");
    assert!(fs::read_dir(&state).unwrap().next().is_none(), "the tmpfs is gone with its namespace");
}

#[test]
fn the_pair_runs_on_linked_layers() {
    // The state dir on /usr's mount (made first: removed after the lab's drop).
    let on_usr = dir_on_usrs_mount("pair");
    let mut lab = Lab::new();
    lab.state_dir = on_usr.path("state");
    // lab.pair() as it is, with --no-userns where /usr's tmpfs cannot be idmapped.
    let (a, b) = (lab.name("a"), lab.name("b"));
    let no_userns = if fs_type(Path::new("/usr/bin/ls")) == "tmpfs" { tmpfs_userns_args() } else { &[] };
    lab.ok(&[&["up", &a, "--address", "11.11.11.2/24", "--iface", "veth0", "--peer", &b], no_userns].concat());
    lab.ok(&[&["up", &b, "--address", "11.11.11.3/24", "--iface", "veth1", "--peer", &a], no_userns].concat());
    let layer = fs::read_dir(lab.state_dir.join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("myroot-"))
        .unwrap();
    assert_eq!(id(&layer.join("bin/ls")), id(Path::new("/usr/bin/ls")), "linked");
    let o = lab.exec(&a, &["/bin/ls", "/bin"]);
    assert!(o.status.success() && stdout(&o).lines().any(|l| l == "ping"), "{}", text(&o));
    let o = lab.exec(&a, &["ping", "-c", "1", "-W", "2", "11.11.11.3"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_write_through_the_overlay_leaves_the_linked_host_file_alone() {
    lab_tests::require_root();
    let t = TempDir::new("copyup");
    let (b, m, bin) = own_layer(&t);
    let dir = b.ensure(&m).unwrap();
    assert_eq!(id(&dir.join("bin/mytrue")), id(&bin), "linked");
    let before = unchanged_part(&bin);
    for d in ["upper", "work", "merged"] {
        fs::create_dir(t.path(d)).unwrap();
    }
    // The container's root as host-setup makes it: the layer as overlay's lower dir.
    // Written, chown-ed and chmod-ed through the overlay (chown clears setuid,
    // so chmod last): copied up first.
    let script = format!(
        "set -e\nmount -t overlay overlay -o lowerdir={l},upperdir={t}/upper,workdir={t}/work {t}/merged\n\
         echo written >> {t}/merged/bin/mytrue\nchown 1:1 {t}/merged/bin/mytrue\nchmod 4700 {t}/merged/bin/mytrue",
        l = dir.display(),
        t = t.0.display()
    );
    assert!(Command::new("unshare").args(["-m", "sh", "-c", &script]).status().unwrap().success());
    assert_eq!(unchanged_part(&bin), before, "the host file");
    assert_eq!(id(&dir.join("bin/mytrue")), id(&bin), "the layer still holds it");
    let up = t.path("upper/bin/mytrue");
    assert!(fs::read(&up).unwrap().ends_with(b"written\n"), "copied up");
    assert_eq!((fs::metadata(&up).unwrap().uid(), fs::metadata(&up).unwrap().mode() & 0o7777), (1, 0o4700));
    assert_ne!(id(&up), id(&bin));
}

#[test]
fn a_changed_host_file_gives_a_new_layer() {
    lab_tests::require_root();
    let t = TempDir::new("upgrade");
    let (b, m, bin) = own_layer(&t);
    let first = b.ensure(&m).unwrap();
    let old = id(&bin);
    assert_eq!(id(&first.join("bin/mytrue")), old);

    // A package upgrade: the new file written aside and renamed over the old one.
    let new = t.path("src/.mytrue.new");
    let mut bytes = fs::read(&bin).unwrap();
    bytes.extend_from_slice(b"upgraded");
    fs::write(&new, &bytes).unwrap();
    fs::set_permissions(&new, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&new, &bin).unwrap();
    let plan = b.plan(&m).unwrap();
    assert!(!plan.cached() && plan.dir() != first, "a new fingerprint");
    let second = b.build(&plan).unwrap();
    assert_eq!(id(&second.join("bin/mytrue")), id(&bin), "the new inode");
    assert_eq!(fs::read(second.join("bin/mytrue")).unwrap(), bytes);
    // The old layer keeps the old file for the containers still using it.
    assert_eq!(id(&first.join("bin/mytrue")), old);
    assert!(!fs::read(first.join("bin/mytrue")).unwrap().ends_with(b"upgraded"));

    // Rewritten in place (same inode): the layer's file changes with it, and the
    // fingerprint (size, mtime) names a new layer all the same.
    fs::OpenOptions::new().append(true).open(&bin).and_then(|mut f| std::io::Write::write_all(&mut f, b"!")).unwrap();
    let plan = b.plan(&m).unwrap();
    assert!(!plan.cached() && plan.dir() != second, "a new fingerprint");
    assert_eq!(b.build(&plan).unwrap(), plan.dir());
}
