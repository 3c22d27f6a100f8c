//! host-setup: the host side of the RED/BLUE lab. Each module is one section of the
//! tutorial; `plan` puts them in order (see the table there).
pub mod cgroup;
pub mod error;
pub mod exec;
pub mod fault;
pub mod launch;
pub mod layers;
pub mod live;
pub mod mountinfo;
pub mod net;
pub mod plan;
pub mod spec;
pub mod state;
pub mod status;
pub mod status_json;
pub mod tty;
pub mod verify;
