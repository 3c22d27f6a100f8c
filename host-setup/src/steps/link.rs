//! Section 3 2)-3) of the tutorial: the veth pair between RED and BLUE, with an
//! address and `up` on each end —
//! `ip link add veth0 netns RED type veth peer name veth1 netns BLUE`, ...
//!
//! A pair needs both namespaces, so it is made by whichever of the two containers
//! comes up second, under the state dir's lock (red and blue may come up at once).

use super::Step;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::net::{self, Op, VethEnd};
use crate::spec::{self, Spec};
use crate::state::Journal;

pub struct Link;

impl Step for Link {
    fn name(&self) -> &'static str {
        "link"
    }

    fn locked(&self) -> bool {
        true
    }

    fn plan(&self, ctx: &Ctx) -> Result<Vec<Action>> {
        let me = ctx.spec;
        if let Some(j) = &me.join {
            return Ok(vec![Action::Note(format!(
                "on network {}: no pair (the network step joins the bridge)",
                j.network
            ))]);
        }
        let Some(my_net) = &me.net else {
            return Ok(vec![Action::Note("no address: the namespace has only lo".into())]);
        };
        let Some(them) = partner(ctx)? else {
            let peer = my_net.peer.as_deref().unwrap_or("<a container that names it as its peer>");
            let note = Action::Note(format!(
                "{peer} is not up yet: the veth pair is made when it comes up, by its host-setup"
            ));
            return Ok(match explained_peer(ctx) {
                // --explain of the tutorial's pair: the peer's own explain script
                // makes its netns but no journal, so the script checks when it runs.
                Some(them) => match (end(me), end(&them)) {
                    (Some(a), Some(b)) => vec![note, Action::IfNetns(them.netns.clone(), Op::VethPair(a, b))],
                    _ => vec![note],
                },
                None => vec![note],
            });
        };
        // The peer may have made the pair between our netns step and this one.
        // (A test that sets who the partner is also says that it has not.)
        if ctx.partner_override.is_none() && net::link_status(&me.netns, &my_net.iface)?.is_some() {
            return Ok(vec![Action::Note(format!("{} exists already in {}", my_net.iface, me.netns))]);
        }
        let (Some(a), Some(b)) = (end(me), end(&them)) else { unreachable!("both have addresses (partner checks)") };
        Ok(vec![Action::Net(Op::VethPair(a, b))])
    }
}

/// With --explain only: the tutorial's peer (red for blue, blue for red), its
/// defaults known without a journal, if it names us as its peer in turn.
fn explained_peer(ctx: &Ctx) -> Option<Spec> {
    let (me, peer) = (ctx.spec, ctx.spec.net.as_ref()?.peer.as_deref()?);
    if ctx.journal.is_some() || ctx.partner_override.is_some() {
        return None;
    }
    let them = Spec::new(peer, &Default::default()).ok()?;
    let theirs = them.net.as_ref()?;
    let mine = me.net.as_ref()?;
    let same = spec::same_subnet((mine.addr, mine.prefix_len), (theirs.addr, theirs.prefix_len));
    (theirs.peer.as_deref() == Some(me.name.as_str()) && same).then_some(them)
}

fn end(s: &Spec) -> Option<VethEnd> {
    let n = s.net.as_ref()?;
    Some(VethEnd::new(s.netns.clone(), n.iface.clone(), n.addr, n.prefix_len))
}

/// Who to link with: our peer if it is up, or an up container that names us as
/// its peer. Errors if the peer is up but wants someone else, or sits in another
/// subnet (the pair has no router).
fn partner(ctx: &Ctx) -> Result<Option<Spec>> {
    let me = ctx.spec;
    let Some(my_net) = &me.net else { return Ok(None) };
    let candidate = match &ctx.partner_override {
        Some(p) => p.clone(),
        None => {
            let up = |name: &str| -> Option<Spec> {
                let j = Journal::read(ctx.paths, name).ok()??;
                let s = j.spec()?;
                (j.has_netns() && net::netns_exists(&s.netns)).then_some(s)
            };
            match &my_net.peer {
                Some(p) => up(p),
                None => ctx
                    .paths
                    .container_names()
                    .iter()
                    .filter(|n| **n != me.name)
                    .filter_map(|n| up(n))
                    .find(|s| s.net.as_ref().and_then(|n| n.peer.as_deref()) == Some(me.name.as_str())),
            }
        }
    };
    let Some(spec) = candidate else { return Ok(None) };
    let their = spec.net.as_ref().ok_or_else(|| {
        crate::precondition!(
            "{} is up without an address, so it cannot be {}'s peer: give {} another --peer, or take {} down and up \
             again with --address",
            spec.name,
            me.name,
            me.name,
            spec.name
        )
    })?;
    if let Some(p) = &their.peer {
        if *p != me.name {
            return Err(crate::precondition!(
                "{} is up with peer {p}, not {}: a veth pair has two ends; give {} another --peer",
                spec.name,
                me.name,
                me.name
            ));
        }
    }
    if !spec::same_subnet((my_net.addr, my_net.prefix_len), (their.addr, their.prefix_len)) {
        return Err(crate::precondition!(
            "{} ({}/{}) and {} ({}/{}) are not in the same subnet; the pair has no router between them",
            me.name,
            my_net.addr,
            my_net.prefix_len,
            spec.name,
            their.addr,
            their.prefix_len
        ));
    }
    Ok(Some(spec))
}
