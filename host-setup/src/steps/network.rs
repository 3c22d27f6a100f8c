//! Not in the tutorial: many containers on one bridge, as Docker's bridge network and
//! the CNI bridge plugin do it (`--net NETWORK`; `--net pair` is the tutorial's pair,
//! link.rs). Two steps:
//!
//! - `lease`: an address of the network's subnet, a file made with O_EXCL under the
//!   network's leases/ (the default network `hs0` is made first if it is not there);
//! - `network`: a veth pair from the host's bridge into the container's netns, the
//!   address and `ip route add default via GATEWAY` inside, and the published ports.

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::net::{nft, Join, Op};
use crate::network::LeaseReq;
use crate::spec::Proto;

pub struct Lease;

impl Step for Lease {
    fn name(&self) -> &'static str {
        "lease"
    }

    // The default network is made, and never removed, while a container joins it.
    fn locked(&self) -> bool {
        true
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let Some(join) = &ctx.spec.join else { return Ok(vec![]) };
        Ok(vec![Action::Lease(LeaseReq::plan(ctx.paths, &ctx.spec.name, join)?)])
    }
}

pub struct Network;

impl Step for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let (Some(join), Some((net, addr))) = (&ctx.spec.join, &ctx.lease) else { return Ok(vec![]) };
        let j = Join {
            bridge: net.bridge.clone(),
            host_end: host_end(ctx.paths, &ctx.spec.name),
            netns: ctx.spec.netns.clone(),
            iface: join.iface.clone(),
            addr: *addr,
            prefix_len: net.prefix_len,
            gateway: net.gateway,
            ns: net.ns,
        };
        let mut actions = vec![];
        if !join.ports.is_empty() {
            let ports = nft::Ports {
                table: format!("host-setup-{}", j.host_end),
                bridge: net.bridge.clone(),
                maps: join
                    .ports
                    .iter()
                    .map(|p| nft::PortMap {
                        proto: match p.proto {
                            Proto::Tcp => nft::Proto::Tcp,
                            Proto::Udp => nft::Proto::Udp,
                        },
                        host_port: p.host_port,
                        addr: *addr,
                        port: p.port,
                    })
                    .collect(),
            };
            actions.push(Action::Net(Op::Ports { ports, ns: net.ns }));
        }
        actions.insert(0, Action::Net(Op::JoinBridge(j)));
        Ok(actions)
    }
}

pub use crate::network::host_end;
