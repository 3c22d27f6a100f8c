//! Links the init binary against nothing: no C runtime start files (src/rt.rs
//! has its own `_start`), no libc, statically (the workspace's rustflags already
//! ask for crt-static and a non-PIE static relocation model). `-bins` keeps the
//! unit tests of the library (cargo test -p init) linked normally.
//!
//! Also gives `init --version` the git commit it is built from (as tini's build
//! does; Docker shows it): `INIT_GIT_COMMIT` if set, else `git rev-parse`, else
//! "unknown" (a build outside a git checkout).
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-arg-bins=-nostartfiles");
    println!("cargo:rustc-link-arg-bins=-nostdlib");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rerun-if-changed=build.rs");
    // No unwind tables in the binary: init is panic=abort and never unwinds,
    // yet rustc and the prebuilt core emit .eh_frame (13 KB, an eighth of init).
    // `-C force-unwind-tables=no` would need a per-package rustflag (the tests
    // crate unwinds and needs them), so the linker drops them instead.
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let script = Path::new(&out).join("no-eh-frame.ld");
    std::fs::write(&script, "SECTIONS { /DISCARD/ : { *(.eh_frame) } } INSERT AFTER .text;\n")
        .expect("write the linker script");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());

    println!("cargo:rerun-if-env-changed=INIT_GIT_COMMIT");
    let commit = std::env::var("INIT_GIT_COMMIT").ok().or_else(git_commit);
    // Docker splits the version on '.': the commit must hold none (nor spaces).
    let commit = commit.filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    println!("cargo:rustc-env=INIT_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}

/// `git rev-parse --short=7 HEAD`, and the files whose change means a new commit
/// (HEAD, the branch it points at, packed refs) for cargo to watch.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=7", "HEAD"])?;
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watch {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(commit)
}
