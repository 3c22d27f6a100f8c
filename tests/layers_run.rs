//! The image layers at work: every manifest binary runs in the overlay of both
//! layers (no ld.so.cache), and escape_chroot, from the myroot layer, escapes a
//! plain chroot and not a pivot_root. Mounts happen only inside `unshare -m` (they
//! die with it); every test works in its own temp dir, removed even on failure.
mod layers_common;

use std::fs;
use std::path::Path;
use std::process::Command;

use host_setup::layers;
use lab_tests::{stdout, TempDir};
use layers_common::*;

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
