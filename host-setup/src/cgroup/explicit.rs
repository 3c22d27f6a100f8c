//! The cgroup of a container described in full (an OCI bundle): its path as
//! given and the runtime spec's resources, as v1 or v2 files (runc's mapping,
//! libcontainer/cgroups/fs and fs2). What this host cannot limit is refused,
//! naming the config.json path and what is missing; nothing is dropped silently.

use super::{Cgroups, Op};
use crate::error::Result;
use crate::spec::Resources;

pub(super) fn refuse(what: &str, why: &str) -> crate::error::Error {
    crate::failed!("config.json: linux.resources.{what}: {why}")
}

/// The ops that make cgroup `rel` (`default/ID`) and write `r` into it.
pub fn explicit_ops(cg: &Cgroups, rel: &str, r: &Resources) -> Result<Vec<Op>> {
    match cg {
        Cgroups::V1(m) => super::explicit_v1::ops(m, rel, r),
        Cgroups::V2(root) => super::explicit_v2::ops(root, rel, r),
    }
}
