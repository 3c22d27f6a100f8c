//! `hsrun`: an OCI runtime with runc's command line over the same engine as
//! `host-setup up`. A bundle's config.json becomes a Spec (to_spec.rs), the same
//! steps make the container (plan.rs), and init does the in-container part from
//! records (contract_spec.rs). `--root DIR` is host-setup's state dir: `host-setup
//! --state-dir DIR status` shows these containers, and `delete` is `down`.
//!
//! `host-setup export` is the other direction: a container of ours -> a bundle
//! (export.rs, export_rootfs.rs, export_cmd.rs).
//!
//! One file per verb group; a verb is one arm in cli.rs's `verb` and one file.

pub mod cli;
pub mod config;
pub mod console;
pub mod create;
pub mod delete;
pub mod exec;
mod exec_tty;
pub mod export;
pub mod export_cmd;
pub mod export_rootfs;
pub mod features;
use crate::hooks;
pub mod kill;
pub mod list;
pub mod log;
mod mounts;
pub mod names;
pub mod pause;
mod process;
pub mod ps;
mod resources;
pub mod start;
pub mod state;
pub mod to_spec;
pub mod update;
pub mod update_cgroup;
mod userns;

/// Where containers without a cgroupsPath go: PARENT/ID.
pub const CGROUP_PARENT: &str = "hsrun";
/// `--root`'s default.
pub const DEFAULT_ROOT: &str = "/run/hsrun";
