//! Shared helpers for the integration tests (they run as root, on the real kernel).
use std::path::PathBuf;

/// Where the project's binaries were built (`tests/run` builds them first).
/// `HS_BIN_DIR` overrides it, e.g. to test installed binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu")
        .join(profile)
}

/// Path of one of the project's binaries: "host-setup", "init" or "escape_chroot".
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} is not built: run `tests/run` (or cargo build --release) first", p.display());
    p
}

/// These tests change kernel state; they need root and never skip.
pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "the integration tests need root: run `sudo tests/run`");
}
