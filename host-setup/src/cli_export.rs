//! `host-setup export NAME DIR [-- CMD...]`: the command line (argh) of oci/export_cmd.rs.

use std::path::PathBuf;

use argh::FromArgs;

use host_setup::error::Result;
use host_setup::spec;
use host_setup::state::Paths;

#[derive(FromArgs)]
#[argh(subcommand, name = "export")]
/// Write an OCI bundle of a container (config.json and rootfs, its layers and what it has written) into DIR, for runc run or hsrun run; the veth pair, bridge network and supervisor have no OCI form.
pub struct ExportCmd {
    /// container name (running, or described by its journal)
    #[argh(positional)]
    pub name: String,
    /// the bundle directory: new, or empty
    #[argh(positional)]
    pub dir: PathBuf,
    /// the bundle's process instead of the container's command, after `--` (default: the container's, or /bin/sh)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

/// Runs `export`; `root` fails unless host-setup runs as root.
pub fn run(paths: &Paths, c: ExportCmd, root: &dyn Fn() -> Result<()>) -> Result<i32> {
    spec::validate_name(&c.name)?;
    root()?;
    let dir = if c.dir.is_absolute() {
        c.dir
    } else {
        std::env::current_dir().map_err(|e| host_setup::failed!("getcwd: {e}"))?.join(c.dir)
    };
    println!("{}", host_setup::oci::export_cmd::export(paths, &c.name, &dir, &c.command)?);
    Ok(0)
}
