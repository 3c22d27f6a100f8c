//! systemd's cgroup driver (hsrun `--systemd-cgroup`): the container's cgroup is a
//! transient unit systemd makes and owns, asked for over D-Bus in-process (no
//! busctl, no systemd-run, no libdbus: a direct connection to systemd and the few
//! marshalling rules its Manager calls need; zbus would bring an async runtime and
//! the `dbus` crate libdbus, a C library this static binary does not link).
//!
//! - unit_path.rs: runc's cgroupsPath `slice:prefix:name` -> the unit and its cgroup;
//! - wire.rs, message.rs, bus.rs: D-Bus (marshalling, messages, the connection);
//! - scope.rs: StartTransientUnit with the limits as properties, StopUnit;
//! - transient.rs: the cgroups step's action (journalled, started once init exists).

pub mod bus;
pub mod message;
pub mod scope;
pub mod transient;
pub mod unit_path;
pub mod wire;

pub use transient::Transient;
pub use unit_path::Unit;

/// systemd's own test of "booted with systemd" (sd_booted): this directory.
pub const BOOTED: &str = "/run/systemd/system";

pub fn booted() -> bool {
    std::path::Path::new(BOOTED).is_dir()
}
