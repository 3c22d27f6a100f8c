//! What the layers suites share (layers.rs, layers_run.rs, layers_explain.rs): the
//! builder over a test's temp dir, the built-in manifests, a tree's snapshot. Each
//! includes it with `mod layers_common;`; none uses all of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host_setup::layers::{self, Builder, Manifest};
use lab_tests::TempDir;

pub fn own_bin_dir() -> PathBuf {
    lab_tests::bin("escape_chroot").parent().unwrap().to_path_buf()
}

pub fn builder(t: &TempDir) -> Builder {
    Builder::new(t.path("layers"), own_bin_dir())
}

pub fn myroot() -> Manifest {
    layers::builtin("myroot").unwrap()
}

pub fn tools() -> Manifest {
    layers::builtin("tools").unwrap()
}

pub fn sh(script: &str) -> Output {
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
pub fn snapshot(root: &Path) -> Vec<(PathBuf, u64, i64, i64, i64)> {
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
pub fn files(root: &Path) -> BTreeSet<PathBuf> {
    snapshot(root).into_iter().map(|s| s.0).filter(|p| root.join(p).symlink_metadata().unwrap().is_file()).collect()
}

/// What `ls /` shows: sorted names without the hidden ones.
pub fn ls(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names.join(" ")
}

pub fn is_elf(p: &Path) -> bool {
    fs::read(p).unwrap().starts_with(b"\x7fELF")
}

pub fn layer_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}
