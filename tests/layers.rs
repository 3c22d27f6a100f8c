//! The image layers (tutorial sections 1 and 2), built from this host's binaries,
//! as root. Every test works in its own temp dir, removed even on failure; mounts
//! happen only inside `unshare -m` (they die with it).
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use host_setup::layers::{self, Builder, Manifest};
use lab_tests::{stdout, TempDir};

fn own_bin_dir() -> PathBuf {
    lab_tests::bin("escape_chroot").parent().unwrap().to_path_buf()
}

fn builder(t: &TempDir) -> Builder {
    Builder::new(t.path("layers"), own_bin_dir())
}

fn myroot() -> Manifest {
    layers::builtin("myroot").unwrap()
}

fn tools() -> Manifest {
    layers::builtin("tools").unwrap()
}

fn sh(script: &str) -> Output {
    let out = Command::new("sh").arg("-c").arg(script).output().expect("run sh");
    eprintln!(
        "$ {script}\n{}{}-> {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status
    );
    out
}

/// Every path under `root` (relative), with what identifies its current version.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64, i64, i64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            // A hard-linked file is the host's: other tests linking or unlinking
            // the same host file change its ctime meanwhile.
            let ctime = if m.nlink() > 1 && m.is_file() { 0 } else { m.ctime_nsec() };
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), m.ino(), m.mtime(), m.mtime_nsec(), ctime));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Relative paths of the regular files under `root`.
fn files(root: &Path) -> BTreeSet<PathBuf> {
    snapshot(root).into_iter().map(|s| s.0).filter(|p| root.join(p).symlink_metadata().unwrap().is_file()).collect()
}

/// What `ls /` shows: sorted names without the hidden ones.
fn ls(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names.join(" ")
}

fn is_elf(p: &Path) -> bool {
    fs::read(p).unwrap().starts_with(b"\x7fELF")
}

fn layer_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn both_layers_build_like_the_tutorial_and_match_ldd() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let m = b.ensure(&myroot()).unwrap();
    let tl = b.ensure(&tools()).unwrap();
    for (dir, name) in [(&m, "myroot"), (&tl, "tools")] {
        let base = dir.file_name().unwrap().to_str().unwrap();
        let hex = base.strip_prefix(&format!("{name}-")).expect("named <layer>-<fingerprint>");
        assert!(hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "{base}");
        assert_eq!(dir.parent().unwrap(), t.path("layers"));
    }

    // The tutorial's trees (sections 1 and 2); library names are this host's.
    for p in [
        "bin/ls",
        "bin/mkdir",
        "bin/mount",
        "bin/ps",
        "bin/sh",
        "escape_chroot",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
    ] {
        assert!(m.join(p).is_file(), "myroot/{p}");
    }
    assert!(m.join("proc").is_dir() && fs::read_dir(m.join("proc")).unwrap().next().is_none(), "empty /proc");
    for p in [
        "bin/hostname",
        "bin/ping",
        "bin/rm",
        "bin/umount",
        "usr/bin/stress",
        "usr/bin/which",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        assert!(tl.join(p).is_file(), "tools/{p}");
    }
    // /bin/sh is dash's contents; `which` is a script, copied as it is.
    assert_eq!(fs::read(m.join("bin/sh")).unwrap(), fs::read(fs::canonicalize("/bin/sh").unwrap()).unwrap());
    assert_eq!(
        fs::read(tl.join("usr/bin/which")).unwrap(),
        fs::read(fs::canonicalize("/usr/bin/which").unwrap()).unwrap()
    );
    assert!(fs::read(tl.join("usr/bin/which")).unwrap().starts_with(b"#!"));
    // Permission bits kept, setuid dropped (mount and umount are setuid on the host).
    for (layer, p, host) in
        [(&m, "bin/mount", "/usr/bin/mount"), (&tl, "bin/umount", "/usr/bin/umount"), (&m, "bin/ls", "/usr/bin/ls")]
    {
        let mode = fs::metadata(layer.join(p)).unwrap().permissions().mode();
        let host_mode = fs::metadata(host).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, host_mode & 0o777, "{p}: {mode:o}");
    }
    // No symlinks, no ld.so.cache: the layers must work without either.
    for layer in [&m, &tl] {
        for (p, ..) in snapshot(layer) {
            let meta = fs::symlink_metadata(layer.join(&p)).unwrap();
            assert!(meta.is_file() || meta.is_dir(), "{}: not a file or dir", p.display());
        }
        assert!(!layer.join("etc").exists());
    }

    // The closure equals what the tutorial's `ldd` + `cp -L` gives: the union of
    // `ldd` of every ELF binary of the layer, nothing missing and nothing more.
    for (layer, manifest) in [(&m, myroot()), (&tl, tools())] {
        let mut want = BTreeSet::new();
        let mut entries = BTreeSet::new();
        for e in &manifest.entries {
            let layers::Entry::Host { dest, command, .. } = e else {
                if let layers::Entry::Own { dest, .. } = e {
                    entries.insert(dest.strip_prefix("/").unwrap().to_path_buf());
                }
                continue;
            };
            entries.insert(dest.strip_prefix("/").unwrap().to_path_buf());
            let host =
                layers::DEFAULT_SEARCH_PATH.iter().map(|d| Path::new(d).join(command)).find(|p| p.is_file()).unwrap();
            if !is_elf(&host) {
                continue;
            }
            let out = Command::new("ldd").arg(&host).output().unwrap();
            assert!(out.status.success(), "ldd {}", host.display());
            for word in stdout(&out).split_whitespace().filter(|w| w.starts_with('/')) {
                want.insert(Path::new(word).strip_prefix("/").unwrap().to_path_buf());
            }
        }
        let got: BTreeSet<PathBuf> = files(layer).difference(&entries).cloned().collect();
        assert_eq!(got, want, "closure of {} vs ldd", layer.display());
        // Each library has the host file's contents (cp -L).
        for lib in &got {
            assert_eq!(
                fs::read(layer.join(lib)).unwrap(),
                fs::read(Path::new("/").join(lib)).unwrap(),
                "{}",
                lib.display()
            );
        }
    }
}

#[test]
fn every_manifest_binary_runs_in_the_overlay_without_ld_so_cache() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let m = b.ensure(&myroot()).unwrap();
    let tl = b.ensure(&tools()).unwrap();
    let (upper, work, merged) = (t.path("upper"), t.path("work"), t.path("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    // Run by the layer's own /bin/sh (dash), with the layer's loader and libraries.
    let inner = r#"
export PATH=/bin:/usr/bin
run() { echo "== $*"; "$@" 2>&1; echo "== rc=$?"; }
run ls /
run mkdir /made-by-mkdir
run ls -d /made-by-mkdir
run mount --version
run ps --version
run ps -e -o comm=
run hostname
run ping -V
run rm --version
run umount --version
run stress --version
run which sh
run /escape_chroot --help
run ls /etc/ld.so.cache
"#;
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir={}:{},upperdir={},workdir={} {m}; mount -t proc proc {m}/proc; \
         exec chroot {m} /bin/sh -c '{inner}'",
        tl.display(),
        m.display(),
        upper.display(),
        work.display(),
        m = merged.display()
    );
    let out = Command::new("unshare").args(["-m", "sh", "-c", &script]).output().unwrap();
    let text = stdout(&out);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{:?}", out.status);
    assert!(!text.contains("error while loading shared libraries"), "{text}");

    // Split into (command, output, rc).
    let mut runs: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rc) = line.strip_prefix("== rc=") {
            runs.last_mut().unwrap().2 = rc.to_string();
        } else if let Some(cmd) = line.strip_prefix("== ") {
            runs.push((cmd.to_string(), String::new(), String::new()));
        } else {
            let r = &mut runs.last_mut().unwrap().1;
            r.push_str(line);
            r.push('\n');
        }
    }
    let get = |cmd: &str| runs.iter().find(|r| r.0 == cmd).unwrap_or_else(|| panic!("{cmd} did not run"));
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let checks: [(&str, &str); 13] = [
        ("ls /", "bin\nescape_chroot\nlib\nlib64\nproc\nusr\n"),
        ("mkdir /made-by-mkdir", ""),
        ("ls -d /made-by-mkdir", "/made-by-mkdir\n"),
        ("mount --version", "util-linux"),
        ("ps --version", "procps"),
        ("ps -e -o comm=", "\nps\n"),
        ("hostname", host_name.trim()),
        ("ping -V", "iputils"),
        ("rm --version", "coreutils"),
        ("umount --version", "util-linux"),
        ("stress --version", "stress 1."),
        ("which sh", "/bin/sh\n"),
        ("/escape_chroot --help", "Usage: escape_chroot"),
    ];
    for (cmd, want) in checks {
        let (_, output, rc) = get(cmd);
        assert_eq!(rc, "0", "{cmd}: {output}");
        assert!(output.contains(want), "{cmd}: {output:?} lacks {want:?}");
    }
    assert_ne!(get("ls /etc/ld.so.cache").2, "0", "no ld.so.cache in the container");
    // The writes went to the upper dir, the layers are untouched.
    assert!(upper.join("made-by-mkdir").is_dir());
    assert!(!m.join("made-by-mkdir").exists() && !tl.join("made-by-mkdir").exists());
}

#[test]
fn second_ensure_is_a_cache_hit() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let first = b.ensure(&tools()).unwrap();
    let before = snapshot(&first);
    let dir_before = snapshot(&t.path("layers"));
    let second = b.ensure(&tools()).unwrap();
    assert_eq!(first, second);
    assert_eq!(snapshot(&second), before, "nothing in the layer was rewritten");
    assert_eq!(snapshot(&t.path("layers")), dir_before, "nothing in layers_dir changed");
    // Editing a comment does not rebuild either.
    let commented = layers::parse("tools", &format!("# a new comment\n{}", layers::TOOLS_MANIFEST)).unwrap();
    assert_eq!(b.ensure(&commented).unwrap(), first);
    assert_eq!(
        layer_entries(&t.path("layers")),
        [".lock".to_string(), first.file_name().unwrap().to_string_lossy().into_owned()]
    );
}

#[test]
fn a_changed_input_gives_a_new_layer_and_prune_removes_the_old() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    // Our own copy of escape_chroot, whose mtime the test can change.
    let own = t.path("own");
    fs::create_dir(&own).unwrap();
    fs::copy(lab_tests::bin("escape_chroot"), own.join("escape_chroot")).unwrap();
    let b = Builder::new(t.path("layers"), &own);
    let old = b.ensure(&myroot()).unwrap();
    let tl = b.ensure(&tools()).unwrap();

    let f = fs::File::options().write(true).open(own.join("escape_chroot")).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    drop(f);
    let new = b.ensure(&myroot()).unwrap();
    assert_ne!(old, new, "a changed input must give a new layer");
    assert!(old.is_dir() && new.is_dir(), "both exist until prune");
    // A changed manifest is a new layer too.
    let mut bigger = myroot();
    bigger.entries.push(layers::Entry::Dir { dest: "/sys".into() });
    let with_sys = b.ensure(&bigger).unwrap();
    assert_ne!(with_sys, new);
    assert!(with_sys.join("sys").is_dir());

    // A leftover of a build that died is removed too.
    fs::create_dir_all(t.path("layers/.tmp-myroot-0000000000000000-1/bin")).unwrap();
    b.prune(&[new.clone(), tl.clone()]).unwrap();
    assert!(!old.exists(), "old version pruned");
    assert!(!with_sys.exists(), "not kept: pruned");
    assert!(new.is_dir() && tl.is_dir(), "kept");
    assert_eq!(layer_entries(&t.path("layers")).len(), 3, "{:?}", layer_entries(&t.path("layers")));
    // Still a cache hit after prune.
    assert_eq!(b.ensure(&myroot()).unwrap(), new);
}

#[test]
fn a_missing_command_names_its_package() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    fs::create_dir(t.path("empty")).unwrap();
    let mut b = builder(&t);
    b.search_path = vec![t.path("empty")];
    let m = layers::parse("stressonly", "/usr/bin/stress  stress  stress\n").unwrap();
    let e = b.ensure(&m).unwrap_err();
    assert_eq!(e.to_string(), "stress: not found on the host; install the 'stress' package");
    assert_eq!(e.exit_code(), 3, "a precondition");
    let e = b.ensure(&tools()).unwrap_err();
    assert_eq!(e.to_string(), "hostname: not found on the host; install the 'hostname' package");
    // A command that is there but not executable does not count.
    fs::write(t.path("empty/stress"), "not a program").unwrap();
    assert!(b.ensure(&m).unwrap_err().to_string().contains("install the 'stress' package"));

    let b = Builder::new(t.path("layers"), t.path("empty"));
    let e = b.ensure(&myroot()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("escape_chroot: not found in {}; build it with cargo build --release", t.path("empty").display())
    );
    assert_eq!(e.exit_code(), 3);
    // Nothing was built.
    assert!(!t.path("layers").exists() || layer_entries(&t.path("layers")).iter().all(|n| n == ".lock"));
}

#[test]
fn concurrent_builders_agree_on_one_layer() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| b.ensure(&tools()).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(dirs.iter().all(|d| *d == dirs[0]), "{dirs:?}");
    assert_eq!(
        layer_entries(&t.path("layers")),
        [".lock".to_string(), dirs[0].file_name().unwrap().to_string_lossy().into_owned()]
    );
    assert!(dirs[0].join("usr/bin/stress").is_file());
}

#[test]
fn explain_gives_shell_commands_that_build_the_same_tree() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let m = b.ensure(&tools()).unwrap();
    let plan = b.plan(&tools()).unwrap();
    assert_eq!((plan.dir(), plan.cached()), (m.as_path(), true));
    let lines = plan.shell();
    let text = lines.join("\n");
    // ping has a file capability: not linked (tests/layers_link.rs has the rest).
    assert!(text.contains(&format!("cp -L --reflink=auto /usr/bin/ping {}/bin/ping", m.display())), "{text}");
    assert!(
        text.contains(&format!(
            "ln -fL /lib/x86_64-linux-gnu/libc.so.6 {}/lib/x86_64-linux-gnu/libc.so.6",
            m.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("ln -fL /lib64/ld-linux-x86-64.so.2 {}/lib64/ld-linux-x86-64.so.2", m.display())),
        "{text}"
    );
    // Run them (into another dir): the same files with the same contents.
    let by_hand = t.path("by-hand");
    let script = text.replace(&m.display().to_string(), &by_hand.display().to_string());
    assert!(sh(&format!("set -e\n{script}")).status.success());
    assert_eq!(files(&by_hand), files(&m));
    for f in files(&m) {
        assert_eq!(fs::read(by_hand.join(&f)).unwrap(), fs::read(m.join(&f)).unwrap(), "{}", f.display());
    }

    // The host-independent version (for docs: `command -v` and an `ldd` loop) too.
    let root = b.ensure(&myroot()).unwrap();
    let generic = t.path("generic");
    let script = layers::explain(&myroot(), &generic)
        .join("\n")
        .replace("target/x86_64-unknown-linux-gnu/release/", &format!("{}/", own_bin_dir().display()));
    assert!(sh(&format!("set -e\n{script}")).status.success());
    assert_eq!(files(&generic), files(&root));
    assert!(generic.join("proc").is_dir());
}

#[test]
fn escape_chroot_escapes_a_plain_chroot() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let m = builder(&t).ensure(&myroot()).unwrap();
    let d = t.path("jail");
    assert!(sh(&format!("cp -a {} {}", m.display(), d.display())).status.success());
    let before = ls(&d);
    assert_eq!(before, ls(&m));
    let out = Command::new("chroot").arg(&d).arg("/escape_chroot").output().unwrap();
    let text = stdout(&out);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let host_root = ls(Path::new("/"));
    assert_eq!(out.status.code(), Some(0), "exit 0 when escaped");
    assert_eq!(
        text.trim_end(),
        format!("escape_chroot: ESCAPED: reached the real root of this mount namespace; / holds: {host_root}")
    );
    assert_eq!(layer_entries(&d), layer_entries(&m), "the temp dir was removed");
}

#[test]
fn escape_chroot_is_contained_after_pivot_root() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let (m, tl) = (b.ensure(&myroot()).unwrap(), b.ensure(&tools()).unwrap());
    // A copy of the merged view (tools on top of myroot), as a container sees it.
    let d = t.path("root");
    fs::create_dir(&d).unwrap();
    assert!(sh(&format!("cp -a {}/. {d}/ && cp -a {}/. {d}/", m.display(), tl.display(), d = d.display()))
        .status
        .success());
    // The tutorial's pivot_root (section 4-2), in a private mount namespace; mount
    // and umount are the layers' own (umount needs /proc).
    let script = format!(
        "set -e; mount --make-rprivate /; mount --bind {d} {d}; cd {d}; mkdir -p old; pivot_root . old; \
         export PATH=/bin:/usr/bin; mount -t proc proc /proc; umount -l /old; exec /escape_chroot",
        d = d.display()
    );
    let out = Command::new("unshare").args(["-m", "sh", "-c", &script]).output().unwrap();
    let text = stdout(&out);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "exit 1 when contained");
    assert_eq!(text.trim_end(), format!("escape_chroot: CONTAINED: \"/\" did not change; / holds: {}", ls(&d)));
    assert!(ls(&d).starts_with("bin escape_chroot lib lib64 old proc"), "{}", ls(&d));
    assert_eq!(fs::read_dir(d.join("old")).unwrap().count(), 0, "nothing mounted on old from the host's view");
}

#[test]
fn escape_chroot_without_cap_sys_chroot_says_so() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    // A custom layer: setpriv (with its closure) to drop the capability inside the chroot.
    let m = layers::parse("nocap", "/bin/setpriv  setpriv  util-linux\n/escape_chroot  @escape_chroot\n").unwrap();
    let dir = builder(&t).ensure(&m).unwrap();
    let d = t.path("jail");
    assert!(sh(&format!("cp -a {} {}", dir.display(), d.display())).status.success());
    let out = Command::new("chroot")
        .arg(&d)
        .args(["/bin/setpriv", "--bounding-set=-sys_chroot", "--inh-caps=-sys_chroot", "/escape_chroot"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}{err}", stdout(&out));
    assert_eq!(out.status.code(), Some(2), "exit 2 on an error");
    assert!(err.contains(": EPERM: operation not permitted; chroot needs CAP_SYS_CHROOT"), "{err}");
    assert_eq!(layer_entries(&d), layer_entries(&dir), "the temp dir was removed");
}

#[test]
fn a_damaged_layer_is_built_again() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let dir = b.ensure(&tools()).unwrap();
    fs::remove_file(dir.join("usr/bin/stress")).unwrap();
    // Replaced, not written: the layer's bin/rm is the host's /usr/bin/rm (a hard link).
    fs::remove_file(dir.join("bin/rm")).unwrap();
    fs::write(dir.join("bin/rm"), "truncated").unwrap();
    assert_eq!(b.ensure(&tools()).unwrap(), dir, "same inputs, same place");
    assert_eq!(fs::read(dir.join("usr/bin/stress")).unwrap(), fs::read("/usr/bin/stress").unwrap());
    assert_eq!(fs::read(dir.join("bin/rm")).unwrap(), fs::read("/usr/bin/rm").unwrap());
    // The damaged copy is gone after the next prune.
    b.prune(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(
        layer_entries(&t.path("layers")),
        [".lock".to_string(), dir.file_name().unwrap().to_string_lossy().into_owned()]
    );
}
