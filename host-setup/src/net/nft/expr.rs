//! The nf_tables expressions our rules use, encoded as the kernel's expression modules
//! read them, and the matches built from them (what `nft --debug=netlink` shows for the
//! same rule text).
//!
//! A rule is a little program over registers: `payload`/`meta`/`ct`/`fib` load a value
//! into a register, `bitwise` masks it, `cmp` ends the rule when it does not match, and
//! the last expression acts (`immediate` of a verdict into the verdict register, `masq`,
//! `nat`). Register numbers: NFT_REG_VERDICT 0; NFT_REG_1..NFT_REG_4 (1..4) are the old
//! 16-byte registers, each the same storage as four 32-bit ones (NFT_REG_1 =
//! NFT_REG32_00..03, NFT_REG_2 = NFT_REG32_04..07). An interface name is 16 bytes
//! (IFNAMSIZ) and needs a whole 16-byte register; the dnat port goes to NFT_REG_2 so it
//! does not overlap the address in NFT_REG_1.

use std::net::Ipv4Addr;

use super::wire::{Attrs, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_LIST_ELEM};

pub(crate) const NFT_REG_VERDICT: u32 = 0;
pub(crate) const NFT_REG_1: u32 = 1;
pub(crate) const NFT_REG_2: u32 = 2;

const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NF_ACCEPT: u32 = 1;
const NF_DROP: u32 = 0;

const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
pub(crate) const NFT_META_IIFNAME: u32 = 6;
pub(crate) const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;

const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
pub(crate) const NFT_CMP_EQ: u32 = 0;
pub(crate) const NFT_CMP_NEQ: u32 = 1;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;

const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;

const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
pub(crate) const NFT_CT_STATE: u32 = 0;
pub(crate) const NFT_CT_STATUS: u32 = 2;
/// ct state bits (NF_CT_STATE_BIT): 1 << (ctinfo + 1), host order.
pub(crate) const CT_STATE_ESTABLISHED: u32 = 1 << 1;
pub(crate) const CT_STATE_RELATED: u32 = 1 << 2;
/// ct status IPS_DST_NAT: the connection was destination-NATted.
pub(crate) const IPS_DST_NAT: u32 = 1 << 5;

const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;

const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_DNAT: u32 = 1;
/// NF_NAT_RANGE_PROTO_SPECIFIED: the port is part of the mapping.
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
/// RTN_LOCAL: the address is one of this namespace's own.
const RTN_LOCAL: u32 = 2;

/// The expressions of one rule, as the NFTA_RULE_EXPRESSIONS list's contents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Exprs(pub(crate) Attrs);

impl Exprs {
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.0.nested(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name);
            e.nested(NFTA_EXPR_DATA, data);
        });
        self
    }

    fn meta(&mut self, key: u32, dreg: u32) -> &mut Self {
        self.expr("meta", |a| {
            a.be32(NFTA_META_DREG, dreg).be32(NFTA_META_KEY, key);
        })
    }

    fn cmp(&mut self, op: u32, sreg: u32, value: &[u8]) -> &mut Self {
        self.expr("cmp", |a| {
            a.be32(NFTA_CMP_SREG, sreg).be32(NFTA_CMP_OP, op).nested(NFTA_CMP_DATA, |d| {
                d.bytes(NFTA_DATA_VALUE, value);
            });
        })
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32, dreg: u32) -> &mut Self {
        self.expr("payload", |a| {
            a.be32(NFTA_PAYLOAD_DREG, dreg)
                .be32(NFTA_PAYLOAD_BASE, base)
                .be32(NFTA_PAYLOAD_OFFSET, offset)
                .be32(NFTA_PAYLOAD_LEN, len);
        })
    }

    /// reg = (reg & mask) ^ 0, in place.
    fn and(&mut self, reg: u32, mask: &[u8]) -> &mut Self {
        self.expr("bitwise", |a| {
            a.be32(NFTA_BITWISE_SREG, reg).be32(NFTA_BITWISE_DREG, reg).be32(NFTA_BITWISE_LEN, mask.len() as u32);
            a.nested(NFTA_BITWISE_MASK, |d| {
                d.bytes(NFTA_DATA_VALUE, mask);
            });
            a.nested(NFTA_BITWISE_XOR, |d| {
                d.bytes(NFTA_DATA_VALUE, &vec![0; mask.len()]);
            });
        })
    }

    fn immediate_value(&mut self, dreg: u32, value: &[u8]) -> &mut Self {
        self.expr("immediate", |a| {
            a.be32(NFTA_IMMEDIATE_DREG, dreg).nested(NFTA_IMMEDIATE_DATA, |d| {
                d.bytes(NFTA_DATA_VALUE, value);
            });
        })
    }

    /// `ip saddr NET/LEN`: the 4 source-address bytes of the IPv4 header (offset 12),
    /// masked to the prefix, equal to the network. A /0 matches everything: no expressions.
    pub(crate) fn saddr_in(&mut self, net: Ipv4Addr, prefix_len: u8) -> &mut Self {
        if prefix_len == 0 {
            return self;
        }
        let mask = u32::MAX << (32 - u32::from(prefix_len));
        let network = u32::from(net) & mask;
        self.payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1);
        if prefix_len < 32 {
            self.and(NFT_REG_1, &mask.to_be_bytes());
        }
        self.cmp(NFT_CMP_EQ, NFT_REG_1, &network.to_be_bytes())
    }

    /// `iifname NAME` / `oifname != NAME`: the interface's name, NUL-padded to IFNAMSIZ.
    pub(crate) fn ifname(&mut self, key: u32, op: u32, name: &str) -> &mut Self {
        let mut value = [0u8; 16];
        value[..name.len()].copy_from_slice(name.as_bytes());
        self.meta(key, NFT_REG_1).cmp(op, NFT_REG_1, &value)
    }

    /// `ct state established,related` / `ct status dnat`: any of the bits set.
    pub(crate) fn ct_any(&mut self, key: u32, bits: u32) -> &mut Self {
        self.expr("ct", |a| {
            a.be32(NFTA_CT_DREG, NFT_REG_1).be32(NFTA_CT_KEY, key);
        });
        self.and(NFT_REG_1, &bits.to_ne_bytes()).cmp(NFT_CMP_NEQ, NFT_REG_1, &0u32.to_ne_bytes())
    }

    /// `fib daddr type local`: the destination is an address of this namespace.
    pub(crate) fn daddr_local(&mut self) -> &mut Self {
        self.expr("fib", |a| {
            a.be32(NFTA_FIB_DREG, NFT_REG_1)
                .be32(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE)
                .be32(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
        });
        self.cmp(NFT_CMP_EQ, NFT_REG_1, &RTN_LOCAL.to_ne_bytes())
    }

    /// `tcp dport PORT` / `udp dport PORT`: meta l4proto (one byte), then the
    /// transport header's destination port (offset 2, big-endian).
    pub(crate) fn dport(&mut self, ipproto: u8, port: u16) -> &mut Self {
        self.meta(NFT_META_L4PROTO, NFT_REG_1).cmp(NFT_CMP_EQ, NFT_REG_1, &[ipproto]);
        self.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1).cmp(NFT_CMP_EQ, NFT_REG_1, &port.to_be_bytes())
    }

    /// `accept`: the verdict register gets NF_ACCEPT.
    pub(crate) fn accept(&mut self) -> &mut Self {
        self.verdict(NF_ACCEPT)
    }

    /// `drop`: the verdict register gets NF_DROP. A drop in any table's base chain
    /// is final for the packet.
    pub(crate) fn drop(&mut self) -> &mut Self {
        self.verdict(NF_DROP)
    }

    fn verdict(&mut self, code: u32) -> &mut Self {
        self.expr("immediate", |a| {
            a.be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT).nested(NFTA_IMMEDIATE_DATA, |d| {
                d.nested(NFTA_DATA_VERDICT, |v| {
                    v.be32(NFTA_VERDICT_CODE, code);
                });
            });
        })
    }

    /// `masquerade`: source NAT to the outgoing interface's address (nft_masq); no
    /// attributes needed.
    pub(crate) fn masquerade(&mut self) -> &mut Self {
        self.expr("masq", |_| {})
    }

    /// `dnat to ADDR:PORT`: the address into NFT_REG_1, the port into NFT_REG_2, then
    /// nat { type dnat, family ipv4, addr_min reg 1, proto_min reg 2 }. No _max: the
    /// kernel takes max = min.
    pub(crate) fn dnat(&mut self, addr: Ipv4Addr, port: u16) -> &mut Self {
        self.immediate_value(NFT_REG_1, &addr.octets()).immediate_value(NFT_REG_2, &port.to_be_bytes());
        self.expr("nat", |a| {
            a.be32(NFTA_NAT_TYPE, NFT_NAT_DNAT)
                .be32(NFTA_NAT_FAMILY, u32::from(super::wire::NFPROTO_IPV4))
                .be32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1)
                .be32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2)
                .be32(NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        })
    }
}
