//! The image layers (tutorial sections 1 and 2), built from this host's binaries,
//! as root: what a layer holds, the cache, prune, rebuilds. Every test works in its
//! own temp dir, removed even on failure. The layers at work (overlay, chroot,
//! pivot_root): layers_run.rs; `--explain`'s commands: layers_explain.rs; links,
//! reflinks and copies: layers_link.rs.
mod layers_common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use host_setup::layers::{self, Builder};
use lab_tests::{stdout, TempDir};
use layers_common::*;

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
