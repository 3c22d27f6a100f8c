//! hsrun, the OCI runtime: runc's command line over the same engine as `host-setup up`.
//! (oci-core's files join these; the verbs below are helper oci-verbs'.)

pub mod cap_names;
pub mod features;
pub mod list;
pub mod pause;
pub mod ps;
pub mod running;
pub mod update;
pub mod update_cgroup;
pub mod verb_args;
