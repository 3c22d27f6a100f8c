//! host-setup: the host side of the RED/BLUE lab.
//!
//! Follow one container: `host-setup red` -> `spec` (what red is) -> `plan` (the
//! engine) asks each of `steps/` — layers, dirs, netns, link, cgroups, launch, the
//! tutorial's sections in order — for its `action`s, which are journalled
//! (`state/`), then run or, with `--explain`, printed -> the launch step spawns
//! `init` (`spawn`, `contract`) under a `supervisor` -> init does the rest inside.
//! `down` undoes the journal, newest first. `sys` holds every `unsafe` call
//! (the compiler enforces it: `unsafe_code` is denied everywhere else).
#![deny(unsafe_code)]
pub mod action;
pub mod cgroup;
pub mod commands;
pub mod contract;
pub mod contract_run;
pub mod contract_shell;
pub mod contract_spec;
pub mod ctx;
pub mod disk;
pub mod error;
pub mod exec;
pub mod fault;
pub mod forward;
pub mod hooks;
pub mod image;
pub mod init_image;
pub mod layers;
pub mod logs;
pub mod made;
pub mod memfd;
pub mod mountinfo;
pub mod net;
pub mod network;
pub mod nsjoin;
pub mod oci;
pub mod plan;
pub mod preconditions;
pub mod relay;
pub mod seccomp;
pub mod shorthand;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod status;
pub mod status_json;
pub mod steps;
pub mod stop;
pub mod supervisor;
pub mod supervisor_cgroup;
#[allow(unsafe_code)] // The one place: each call with its SAFETY comment.
pub mod sys;
pub mod systemd;
pub mod tty;
pub mod userns;
pub mod verify;
