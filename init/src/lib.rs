//! init: the PID 1 of a RED/BLUE container, a tiny static binary with no libc.
//!
//! This library is all of init's logic, `no_std` so that the binary (src/main.rs,
//! which adds only the start glue of src/rt.rs) needs nothing but the kernel;
//! under `cargo test` it is built with std so the pure parts are unit-tested.
//!
//! Where things are:
//! - `flag`   the host-setup -> init contract: the long options, named once
//! - `args`   the command line and tini's environment variables
//! - `help`   --help, --version (in tini's format, for Docker), -l
//! - `join`   setup steps 1-2: join cgroups (v1 tasks, v2 cgroup.procs), --cgroupns, setns into the netns
//! - `rootfs` setup step 3: private "/", overlay or bind, pivot_root (no put_old dir), /proc
//! - `rootparent` in step 3, for a non-recursive root propagation: DIR's parent mount private, old root rslave
//! - `dev`    --dev, in step 3: the minimal /dev made in the new root before the pivot
//! - `maskproc` --mask-proc, in step 3: runc's masked and read-only /proc paths
//! - `caps`   --restrict, after setup: capabilities, no_new_privs, non-dumpable
//! - `title`  what /proc/1/cmdline and ps show of init once CMD runs
//! - `exec`   step 5: the child between fork and execve, the $PATH search, --exec
//! - `signals` what init blocks and ignores, and what CMD gets back
//! - `pid1`   forwarding, reaping, exit status, --pause; tini's -s -p -w -e
//! - `ready`  the --ready-fd protocol
//! - `msg`    error text (step, path, errno), numbers, stderr and debug output
//! - `sys`    the raw system calls
//! - `spec`   --spec-fd: the in-container part of an OCI bundle's spec, as records (format only)
//! - `specrun` --spec-fd: loads and checks the records (decoded by `records`), and the phases that run them:
//!   `mounts` (+ `inroot`, `cgroup1`) before and after the pivot, `user` (rlimits, ids,
//!   capabilities), `start` (the wait for `start`), `hooks` (createContainer, startContainer)
//! - `waiter` --wait-child: what host-setup's supervisor becomes once init runs
#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod caps;
pub mod cgroup1;
pub mod cgroup2;
pub mod console;
pub mod dev;
pub mod exec;
pub mod flag;
pub mod help;
pub mod hooks;
pub mod inroot;
pub mod join;
pub mod logpipe;
pub mod maskproc;
pub mod mounts;
pub mod msg;
pub mod pid1;
pub mod pivotsync;
pub mod ready;
pub mod records;
pub mod rootfs;
pub mod rootparent;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod specrun;
pub mod start;
pub mod sys;
pub mod title;
pub mod user;
pub mod userns;
pub mod waiter;
