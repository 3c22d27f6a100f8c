//! Sections 1 and 2 of the tutorial: the image layers `myroot` and `tools`.
//!
//! The tutorial builds them by hand: `mkdir -p`, `cp -L` of each binary and
//! `ldd` + `cp -L` of every shared library it needs. This module does the same
//! work in-process (no `ldd`, no `cp`): each manifest entry is found on the host,
//! its symlinks are resolved, its ELF file is parsed with goblin (PT_INTERP and
//! DT_NEEDED, recursively, searched the way ld.so searches) and every file is
//! put at the path where the host found it: hard-linked where the layer cache is
//! on the same mount and a link gives what a copy would, reflinked or copied
//! otherwise (`place.rs`).
//!
//! A layer is cached: its directory is `<layers_dir>/<name>-<fingerprint>`, where
//! the fingerprint covers the manifest and the (path, size, mtime, inode, mode) of
//! every input file, closure included. An existing directory is used as it is; a
//! new one is built in a temporary directory under an flock and renamed into
//! place, so two host-setup processes (red and blue come up together) never see
//! a half-built layer. [`Builder::prune`] removes the versions nobody uses.
//!
//! One description per action: [`Builder::plan`] works out once, writing
//! nothing, what the layer will be ([`LayerPlan`]: its directory and the host
//! files that go into it); [`Builder::build`] does exactly that and
//! [`LayerPlan::shell`] prints exactly that as the tutorial's commands.
//!
//! The files, in the order of the work: `manifest.rs` (what a layer holds),
//! `ldso.rs` (where ld.so looks for a library), `elf.rs` (what an ELF file asks
//! for), `closure.rs` (the files of a layer, found on this host, with
//! `realpath.rs` resolving each directory once), `cache.rs` (the fingerprint,
//! the layer's directory, pruning), `memo.rs` (the warm check: a memo of the last
//! resolution proved still valid with one statx per thing it looked at), `place.rs` (link, reflink or copy), `build.rs` (a layer's plan, and making its
//! directory) and `shell.rs` (the same plan as shell commands).

mod build;
mod cache;
mod closure;
mod elf;
mod ldso;
mod manifest;
mod memo;
mod place;
mod realpath;
mod shell;

pub use build::{Builder, LayerPlan};
pub use closure::DEFAULT_SEARCH_PATH;
pub use manifest::{builtin, parse, Entry, Manifest, BUILTIN, MYROOT_MANIFEST, TOOLS_MANIFEST};
pub use place::Placement;
pub use shell::explain;
