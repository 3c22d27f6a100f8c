//! The nf_tables wire format: netlink attributes, nfnetlink messages and the batch
//! that carries them. Pure byte building, unit-tested without root.
//!
//! The kernel's rules that shape it (include/uapi/linux/netfilter/nfnetlink.h,
//! nf_tables.h; net/netfilter/nfnetlink.c):
//! - Every message is a `struct nlmsghdr` (host byte order), then a `struct nfgenmsg`
//!   { u8 family, u8 version (NFNETLINK_V0), __be16 res_id }, then attributes. The
//!   message type is `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*`.
//! - nf_tables' numbers inside attributes are big-endian (`nla_get_be32` in the kernel):
//!   registers, hook numbers, priorities, verdicts, payload offsets, nat types. The netlink
//!   framing (nla_len, nla_type, nlmsghdr) is host order. Data compared against packet
//!   bytes is in packet (network) order; data compared against kernel values (ct state,
//!   the fib address type, meta l4proto) is in host order, as the kernel stores them.
//! - Changes go in a batch: NFNL_MSG_BATCH_BEGIN, the messages, NFNL_MSG_BATCH_END, all
//!   in one datagram. The begin and end messages carry the *subsystem* in `res_id`
//!   (big-endian NFNL_SUBSYS_NFTABLES), family AF_UNSPEC. The kernel applies the whole
//!   batch as one transaction, or nothing of it.

pub(crate) use crate::net::netlink::align4;

/// NETLINK_NETFILTER, the netlink protocol of nfnetlink.
pub(crate) const NETLINK_NETFILTER: isize = 12;

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10; // NLMSG_MIN_TYPE
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;
pub(crate) const NFNETLINK_V0: u8 = 0;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
pub(crate) const NLMSG_ERROR: u16 = 0x2;
pub(crate) const NLMSG_DONE: u16 = 0x3;
/// Set on nested attributes, as libmnl does (the kernel's parser ignores it).
const NLA_F_NESTED: u16 = 0x8000;

pub(crate) const NFPROTO_IPV4: u8 = 2;

/// enum nf_tables_msg_types
pub(crate) const NFT_MSG_NEWTABLE: u16 = 0;
pub(crate) const NFT_MSG_GETTABLE: u16 = 1;
pub(crate) const NFT_MSG_DELTABLE: u16 = 2;
pub(crate) const NFT_MSG_NEWCHAIN: u16 = 3;
pub(crate) const NFT_MSG_NEWRULE: u16 = 6;

// enum nft_table_attributes, nft_chain_attributes, nft_hook_attributes, nft_rule_attributes
pub(crate) const NFTA_TABLE_NAME: u16 = 1;
pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const NFTA_CHAIN_HOOK: u16 = 4;
pub(crate) const NFTA_CHAIN_POLICY: u16 = 5;
pub(crate) const NFTA_CHAIN_TYPE: u16 = 7;
pub(crate) const NFTA_HOOK_HOOKNUM: u16 = 1;
pub(crate) const NFTA_HOOK_PRIORITY: u16 = 2;
pub(crate) const NFTA_RULE_TABLE: u16 = 1;
pub(crate) const NFTA_RULE_CHAIN: u16 = 2;
pub(crate) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(crate) const NFTA_LIST_ELEM: u16 = 1;
pub(crate) const NFTA_EXPR_NAME: u16 = 1;
pub(crate) const NFTA_EXPR_DATA: u16 = 2;

/// The netfilter hooks of the ip family (enum nf_inet_hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Prerouting = 0,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

impl Hook {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// A stream of netlink attributes: `u16 nla_len, u16 nla_type, value`, each padded to
/// 4 bytes (nla_len counts the header and the value, not the padding).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len() + (align4(len) - len), 0);
        self
    }

    /// A NUL-terminated string (NLA_STRING / NLA_NUL_STRING).
    pub(crate) fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v)
    }

    /// A 32-bit number, big-endian as nf_tables reads them.
    pub(crate) fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.bytes(kind, &v.to_be_bytes())
    }

    pub(crate) fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        fill(&mut inner);
        self.bytes(kind | NLA_F_NESTED, &inner.0)
    }
}

/// One nfnetlink message of a batch, with what it does as `nft` would say it (which names
/// it in errors: `nft add chain ip hs-x postrouting: ENOENT: ...`).
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) what: String,
    /// NFT_MSG_*
    pub(crate) kind: u16,
    /// NLM_F_CREATE, NLM_F_EXCL, NLM_F_APPEND: on top of NLM_F_REQUEST | NLM_F_ACK.
    pub(crate) flags: u16,
    pub(crate) attrs: Attrs,
}

/// nlmsghdr + nfgenmsg + attributes.
pub(crate) fn message(msg_type: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut v = Vec::with_capacity(align4(len));
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(&msg_type.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: 0, the kernel fills in ours
    v.push(family);
    v.push(NFNETLINK_V0);
    v.extend_from_slice(&res_id.to_be_bytes());
    v.extend_from_slice(attrs);
    v.resize(align4(len), 0);
    v
}

/// The nf_tables message type of NFT_MSG_*.
pub(crate) fn nft_type(kind: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | kind
}

/// The bytes of one batch: BEGIN with `seq`, message i with `seq + 1 + i`, END last.
///
/// The kernel answers every message that fails with an nlmsgerr of that message's seq
/// (ack or not: it goes on through the batch so that every error is reported), and then
/// applies none of the batch. Only the last message asks for an ack (NLM_F_ACK): its 0
/// says the batch went through, and a thousand-message batch does not queue a thousand
/// acks on the socket. All answers come once the whole batch was processed. BEGIN and
/// END get no ack of their own (kernels before 6.4 never ack them); an error that
/// concerns the whole batch (no nf_tables, EPERM, a failed commit) comes as an error for
/// BEGIN's seq.
pub(crate) fn batch(seq: u32, msgs: &[Msg]) -> Vec<u8> {
    let subsys = NFNL_SUBSYS_NFTABLES;
    let mut v = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, subsys, &[]);
    for (i, m) in msgs.iter().enumerate() {
        let ack = if i + 1 == msgs.len() { NLM_F_ACK } else { 0 };
        let flags = NLM_F_REQUEST | ack | m.flags;
        v.extend(message(nft_type(m.kind), flags, seq + 1 + i as u32, NFPROTO_IPV4, 0, &m.attrs.0));
    }
    v.extend(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1 + msgs.len() as u32, 0, subsys, &[]));
    v
}

/// `nft add table ip NAME`: NLM_F_EXCL, so an existing table is an error (EEXIST), never
/// silently shared.
pub(crate) fn new_table(name: &str) -> Msg {
    let mut attrs = Attrs::default();
    attrs.str(NFTA_TABLE_NAME, name);
    Msg { what: format!("nft add table ip {name}"), kind: NFT_MSG_NEWTABLE, flags: NLM_F_CREATE | NLM_F_EXCL, attrs }
}

/// `nft delete table ip NAME`: the table with all its chains and rules, in one message.
pub(crate) fn del_table(name: &str) -> Msg {
    let mut attrs = Attrs::default();
    attrs.str(NFTA_TABLE_NAME, name);
    Msg { what: format!("nft delete table ip {name}"), kind: NFT_MSG_DELTABLE, flags: 0, attrs }
}

/// A base chain: `type TYPE hook HOOK priority PRIO; [policy accept;]`.
///
/// Base chains need a hook and a type: the nat expressions (masq, dnat) are accepted only
/// in a chain of type "nat", which the kernel also gives the nat engine's hook order
/// (and only for the first packet of each connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) hook: Hook,
    pub(crate) priority: i32,
    /// NF_ACCEPT (1) to say it explicitly; None leaves the kernel's default (accept).
    pub(crate) policy_accept: bool,
}

impl Chain {
    /// The chain as `nft add chain` takes it.
    pub(crate) fn text(&self, table: &str) -> String {
        let policy = if self.policy_accept { " policy accept;" } else { "" };
        format!(
            "add chain ip {table} {} {{ type {} hook {} priority {};{policy} }}",
            self.name,
            self.kind,
            self.hook.name(),
            self.priority
        )
    }

    pub(crate) fn msg(&self, table: &str) -> Msg {
        let mut attrs = Attrs::default();
        attrs.str(NFTA_CHAIN_TABLE, table).str(NFTA_CHAIN_NAME, self.name).nested(NFTA_CHAIN_HOOK, |h| {
            h.be32(NFTA_HOOK_HOOKNUM, self.hook as u32);
            // A signed priority, sent as its two's complement in big-endian.
            h.be32(NFTA_HOOK_PRIORITY, self.priority as u32);
        });
        if self.policy_accept {
            attrs.be32(NFTA_CHAIN_POLICY, 1); // NF_ACCEPT
        }
        attrs.str(NFTA_CHAIN_TYPE, self.kind);
        Msg {
            what: format!("nft {}", self.text(table)),
            kind: NFT_MSG_NEWCHAIN,
            flags: NLM_F_CREATE | NLM_F_EXCL,
            attrs,
        }
    }
}

/// `nft add rule ip TABLE CHAIN <text>` with its expressions (already encoded, each an
/// NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }). NLM_F_APPEND puts it after the
/// chain's earlier rules; without it the kernel would insert it first.
pub(crate) fn new_rule(table: &str, chain: &str, text: &str, exprs: &Attrs) -> Msg {
    let mut attrs = Attrs::default();
    attrs.str(NFTA_RULE_TABLE, table).str(NFTA_RULE_CHAIN, chain).bytes(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, &exprs.0);
    Msg {
        what: format!("nft add rule ip {table} {chain} {text}"),
        kind: NFT_MSG_NEWRULE,
        flags: NLM_F_CREATE | NLM_F_APPEND,
        attrs,
    }
}
