//! `host-setup network create|ls|rm`: the command line (argh) of network/.

use argh::FromArgs;

use host_setup::error::Result;
use host_setup::network;
use host_setup::state::Paths;

#[derive(FromArgs)]
#[argh(subcommand, name = "network")]
/// Bridge networks for many containers: create, ls, rm (join one with --net NAME).
pub struct NetworkCmd {
    #[argh(subcommand)]
    pub cmd: NetSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum NetSub {
    Create(NetCreate),
    Ls(NetLs),
    Rm(NetRm),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "create")]
/// Make a bridge network: the bridge with the gateway address, forwarding for it and its uplink, NAT out of the uplink.
pub struct NetCreate {
    /// network name (also the bridge's)
    #[argh(positional)]
    pub name: String,
    /// the subnet, e.g. 10.80.0.0/16 (default: the first of 10.77.0.0/16 .. 10.99.0.0/16 no route of the host overlaps)
    #[argh(option)]
    pub subnet: Option<String>,
    /// the interface traffic leaves by (default: that of the default route)
    #[argh(option)]
    pub uplink: Option<String>,
    /// print the equivalent ip/nft commands and change nothing
    #[argh(switch)]
    pub explain: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "ls")]
/// Show the networks: bridge, subnet, gateway, uplink and members.
pub struct NetLs {}

#[derive(FromArgs)]
#[argh(subcommand, name = "rm")]
/// Remove networks that have no members: bridge, forwarding, NAT table.
pub struct NetRm {
    /// network names
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Runs a `network` command; `root` fails unless host-setup runs as root.
pub fn run(paths: &Paths, n: NetworkCmd, root: &dyn Fn() -> Result<()>) -> Result<i32> {
    match n.cmd {
        NetSub::Create(c) => {
            network::check_create_args(&c.name, c.subnet.as_deref(), c.uplink.as_deref())?;
            root()?;
            network::create_cmd(paths, &c.name, c.subnet.as_deref(), c.uplink.as_deref(), c.explain)?;
        }
        NetSub::Ls(_) => print!("{}", network::ls(paths)?),
        NetSub::Rm(c) => {
            if c.names.is_empty() {
                return Err(host_setup::usage!("network rm needs a network name, e.g. host-setup network rm web"));
            }
            for n in &c.names {
                host_setup::spec::validate_network_name(n)?;
            }
            root()?;
            for n in &c.names {
                network::rm_cmd(paths, n)?;
            }
        }
    }
    Ok(0)
}
