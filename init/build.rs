//! Links the init binary against nothing: no C runtime start files (src/rt.rs
//! has its own `_start`), no libc, statically (the workspace's rustflags already
//! ask for crt-static and a non-PIE static relocation model). `-bins` keeps the
//! unit tests of the library (cargo test -p init) linked normally.
fn main() {
    println!("cargo:rustc-link-arg-bins=-nostartfiles");
    println!("cargo:rustc-link-arg-bins=-nostdlib");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rerun-if-changed=build.rs");
}
