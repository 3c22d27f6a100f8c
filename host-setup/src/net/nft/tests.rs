//! The bytes of our nf_tables messages against layouts checked by hand from the kernel's
//! uapi headers, the kernel's answers read back, and the `nft` lines for `--explain`.
//! No root needed; tests/nft.rs applies them to a real kernel.

use std::net::Ipv4Addr;

use super::expr::{Exprs, NFT_CMP_EQ, NFT_META_IIFNAME};
use super::talk::{first_error, parse_acks, Ack};
use super::wire::{self, Chain, Hook};
use super::*;

fn ne16(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn ne32(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}
/// nla header: host-order length and type.
fn nla(len: u16, kind: u16) -> Vec<u8> {
    cat(&[ne16(len), ne16(kind)])
}

#[test]
fn a_batch_is_begin_messages_end_with_the_subsystem_big_endian() {
    let bytes = wire::batch(7, &[wire::new_table("t")]);
    let expected = cat(&[
        // BATCH_BEGIN: len 20, type NLMSG_MIN_TYPE, NLM_F_REQUEST, seq 7, pid 0,
        // nfgenmsg { AF_UNSPEC, NFNETLINK_V0, res_id = htons(NFNL_SUBSYS_NFTABLES) }
        ne32(20),
        ne16(0x10),
        ne16(0x1),
        ne32(7),
        ne32(0),
        vec![0, 0, 0x00, 0x0a],
        // NEWTABLE: len 28, type NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE,
        // REQUEST|ACK|EXCL|CREATE, seq 8, nfgenmsg { NFPROTO_IPV4, 0, 0 },
        // NFTA_TABLE_NAME "t\0" (nla_len 6, padded to 8)
        ne32(28),
        ne16(0x0a00),
        ne16(0x1 | 0x4 | 0x200 | 0x400),
        ne32(8),
        ne32(0),
        vec![2, 0, 0, 0],
        nla(6, 1),
        vec![b't', 0, 0, 0],
        // BATCH_END: as BEGIN, type NLMSG_MIN_TYPE + 1, seq 9
        ne32(20),
        ne16(0x11),
        ne16(0x1),
        ne32(9),
        ne32(0),
        vec![0, 0, 0x00, 0x0a],
    ]);
    assert_eq!(bytes, expected);
}

#[test]
fn only_the_last_message_of_a_batch_asks_for_an_ack() {
    let bytes = wire::batch(1, &[wire::new_table("a"), wire::del_table("b")]);
    let flags_at = |off: usize| u16::from_ne_bytes([bytes[off + 6], bytes[off + 7]]);
    // BEGIN (20 bytes), NEWTABLE "a" (28), DELTABLE "b" (28), END (20)
    assert_eq!(bytes.len(), 96);
    assert_eq!(flags_at(0), 0x1);
    assert_eq!(flags_at(20), 0x1 | 0x200 | 0x400, "no NLM_F_ACK: only an error is answered");
    assert_eq!(flags_at(48), 0x1 | 0x4, "NLM_F_ACK: its 0 says the batch was committed");
    assert_eq!(flags_at(76), 0x1);
    assert_eq!(u16::from_ne_bytes([bytes[52], bytes[53]]), 0x0a02, "NFT_MSG_DELTABLE");
}

#[test]
fn a_base_chain_has_its_hook_nested_and_numbers_big_endian() {
    let chain = Chain { name: "pre", kind: "nat", hook: Hook::Prerouting, priority: -100, policy_accept: true };
    let m = chain.msg("t");
    assert_eq!(m.kind, wire::NFT_MSG_NEWCHAIN);
    assert_eq!(m.what, "nft add chain ip t pre { type nat hook prerouting priority -100; policy accept; }");
    let expected = cat(&[
        nla(6, 1), // NFTA_CHAIN_TABLE "t"
        vec![b't', 0, 0, 0],
        nla(8, 3), // NFTA_CHAIN_NAME "pre"
        b"pre\0".to_vec(),
        nla(20, 4 | 0x8000), // NFTA_CHAIN_HOOK, NLA_F_NESTED
        nla(8, 1),           // NFTA_HOOK_HOOKNUM NF_INET_PRE_ROUTING
        vec![0, 0, 0, 0],
        nla(8, 2), // NFTA_HOOK_PRIORITY -100, two's complement, big-endian
        vec![0xff, 0xff, 0xff, 0x9c],
        nla(8, 5), // NFTA_CHAIN_POLICY NF_ACCEPT
        vec![0, 0, 0, 1],
        nla(8, 7), // NFTA_CHAIN_TYPE "nat"
        b"nat\0".to_vec(),
    ]);
    assert_eq!(m.attrs.0, expected);
}

#[test]
fn iifname_accept_is_meta_cmp_and_a_verdict() {
    let mut e = Exprs::default();
    e.ifname(NFT_META_IIFNAME, NFT_CMP_EQ, "br0").accept();
    let elem = |len: u16| nla(len, 1 | 0x8000); // NFTA_LIST_ELEM, nested
    let mut ifname = b"br0".to_vec();
    ifname.resize(16, 0);
    let expected = cat(&[
        // meta { NFTA_META_DREG NFT_REG_1, NFTA_META_KEY NFT_META_IIFNAME }
        elem(36),
        nla(9, 1),
        b"meta\0\0\0\0".to_vec(),
        nla(20, 2 | 0x8000),
        nla(8, 1),
        vec![0, 0, 0, 1],
        nla(8, 2),
        vec![0, 0, 0, 6],
        // cmp { SREG 1, OP EQ, DATA { VALUE: 16 bytes, the name NUL-padded } }
        elem(56),
        nla(8, 1),
        b"cmp\0".to_vec(),
        nla(44, 2 | 0x8000),
        nla(8, 1),
        vec![0, 0, 0, 1],
        nla(8, 2),
        vec![0, 0, 0, 0],
        nla(24, 3 | 0x8000),
        nla(20, 1),
        ifname,
        // immediate { DREG NFT_REG_VERDICT, DATA { VERDICT { CODE NF_ACCEPT } } }
        elem(48),
        nla(14, 1),
        b"immediate\0\0\0".to_vec(),
        nla(28, 2 | 0x8000),
        nla(8, 1),
        vec![0, 0, 0, 0],
        nla(16, 2 | 0x8000),
        nla(12, 2 | 0x8000),
        nla(8, 1),
        vec![0, 0, 0, 1],
    ]);
    assert_eq!(e.0 .0, expected);
}

/// The names of a rule's expressions, in order: the rule's shape.
fn expr_names(e: &Exprs) -> Vec<String> {
    let b = &e.0 .0;
    let mut names = Vec::new();
    let mut off = 0;
    while off + 4 <= b.len() {
        let len = u16::from_ne_bytes([b[off], b[off + 1]]) as usize;
        // NFTA_LIST_ELEM, then NFTA_EXPR_NAME first
        let name = &b[off + 8..off + 4 + u16::from_ne_bytes([b[off + 4], b[off + 5]]) as usize];
        names.push(String::from_utf8_lossy(name).trim_end_matches('\0').to_string());
        off += wire::align4(len);
    }
    names
}

#[test]
fn a_subnet_match_masks_the_host_bits() {
    let mut e = Exprs::default();
    e.saddr_in(Ipv4Addr::new(10, 1, 2, 0), 23);
    assert_eq!(expr_names(&e), ["payload", "bitwise", "cmp"]);
    let b = &e.0 .0;
    let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    assert!(has(&cat(&[nla(8, 1), vec![255, 255, 254, 0]])), "the /23 mask as packet bytes");
    assert!(has(&cat(&[nla(8, 1), vec![10, 1, 2, 0]])), "the network as packet bytes");
    let mut host = Exprs::default();
    host.saddr_in(Ipv4Addr::new(10, 1, 2, 3), 32);
    assert_eq!(expr_names(&host), ["payload", "cmp"], "a /32 needs no mask");
    let mut all = Exprs::default();
    all.saddr_in(Ipv4Addr::UNSPECIFIED, 0);
    assert!(all.0 .0.is_empty(), "a /0 matches everything");
}

#[test]
fn dnat_loads_address_and_port_in_separate_registers() {
    let mut e = Exprs::default();
    e.daddr_local().dport(6, 8080).dnat(Ipv4Addr::new(10, 0, 0, 2), 80);
    assert_eq!(expr_names(&e), ["fib", "cmp", "meta", "cmp", "payload", "cmp", "immediate", "immediate", "nat"]);
    let b = &e.0 .0;
    let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    // port 8080 big-endian, compared as packet bytes; the new port 80 big-endian
    assert!(has(&cat(&[nla(6, 1), vec![0x1f, 0x90]])));
    assert!(has(&cat(&[nla(6, 1), vec![0x00, 0x50]])));
    // the nat expression: DNAT, NFPROTO_IPV4, addr_min NFT_REG_1, proto_min NFT_REG_2
    let nat = cat(&[
        nla(8, 1),
        vec![0, 0, 0, 1],
        nla(8, 2),
        vec![0, 0, 0, 2],
        nla(8, 3),
        vec![0, 0, 0, 1],
        nla(8, 5),
        vec![0, 0, 0, 2],
        nla(8, 7),
        vec![0, 0, 0, 2],
    ]);
    assert!(has(&nat));
}

fn nat(uplink: Option<&str>) -> NetworkNat {
    NetworkNat {
        table: "hs-net-red".into(),
        subnet: (Ipv4Addr::new(10, 1, 0, 1), 24),
        bridge: "hsbr0".into(),
        uplink: uplink.map(String::from),
    }
}

#[test]
fn network_nat_renders_as_nft_lines() {
    assert_eq!(
        nat(None).shell(),
        [
            "nft add table ip hs-net-red",
            "nft 'add chain ip hs-net-red postrouting { type nat hook postrouting priority 100; }'",
            "nft 'add chain ip hs-net-red forward { type filter hook forward priority 0; policy accept; }'",
            r#"nft 'add rule ip hs-net-red postrouting ip saddr 10.1.0.0/24 oifname != "hsbr0" masquerade'"#,
            r#"nft 'add rule ip hs-net-red postrouting ip saddr 127.0.0.0/8 oifname "hsbr0" masquerade'"#,
            r#"nft 'add rule ip hs-net-red forward iifname "hsbr0" accept'"#,
            r#"nft 'add rule ip hs-net-red forward oifname "hsbr0" ct state established,related accept'"#,
            r#"nft 'add rule ip hs-net-red forward oifname "hsbr0" ct status dnat accept'"#,
            r#"nft 'add rule ip hs-net-red forward oifname "hsbr0" drop'"#,
        ]
    );
    assert_eq!(
        nat(Some("eth0")).shell()[3],
        r#"nft 'add rule ip hs-net-red postrouting ip saddr 10.1.0.0/24 oifname "eth0" masquerade'"#
    );
}

#[test]
fn ports_render_as_nft_lines() {
    let p = Ports {
        table: "hs-ports-web".into(),
        bridge: "hsbr0".into(),
        maps: vec![
            PortMap { proto: Proto::Tcp, host_port: 8080, addr: Ipv4Addr::new(10, 1, 0, 2), port: 80 },
            PortMap { proto: Proto::Udp, host_port: 5353, addr: Ipv4Addr::new(10, 1, 0, 2), port: 53 },
        ],
    };
    assert_eq!(
        p.shell(),
        [
            "nft add table ip hs-ports-web",
            "nft 'add chain ip hs-ports-web prerouting { type nat hook prerouting priority -100; }'",
            "nft 'add chain ip hs-ports-web output { type nat hook output priority -100; }'",
            "nft 'add rule ip hs-ports-web prerouting fib daddr type local tcp dport 8080 dnat to 10.1.0.2:80'",
            "nft 'add rule ip hs-ports-web prerouting fib daddr type local udp dport 5353 dnat to 10.1.0.2:53'",
            "nft 'add rule ip hs-ports-web output fib daddr type local tcp dport 8080 dnat to 10.1.0.2:80'",
            "nft 'add rule ip hs-ports-web output fib daddr type local udp dport 5353 dnat to 10.1.0.2:53'",
        ]
    );
    // one message per line, in the same order: table, chains, rules
    let msgs = batch_msgs(&p.table, &[Ports::PREROUTING, Ports::OUTPUT], &p.rules());
    let whats: Vec<_> = msgs.iter().map(|m| m.what.replace("nft add", "nft 'add") + "'").collect();
    assert_eq!(whats[1..], p.shell()[1..]);
}

#[test]
fn bad_names_and_ports_are_usage_errors_before_any_netlink() {
    // check() is what create() runs first; create() itself would act on the namespace
    // these tests run in (the host's), so it is only called in tests/nft.rs.
    for bad in ["", "1abc", "a b", "a;b", "-x", &"x".repeat(256)] {
        let e = check_table_name(bad).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
    }
    check_table_name("hs-net.red_1").unwrap();
    assert_eq!("udp".parse::<Proto>().unwrap(), Proto::Udp);
    assert_eq!("tcp".parse::<Proto>().unwrap().to_string(), "tcp");
    assert_eq!("sctp".parse::<Proto>().unwrap_err().to_string(), r#"invalid protocol "sctp": tcp or udp"#);
    let e = NetworkNat { bridge: "a/b".into(), ..nat(None) }.check().unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let e = NetworkNat { subnet: (Ipv4Addr::LOCALHOST, 33), ..nat(None) }.check().unwrap_err();
    assert_eq!(e.to_string(), "invalid prefix length /33 for 127.0.0.1: at most 32");
    let zero = PortMap { proto: Proto::Tcp, host_port: 0, addr: Ipv4Addr::LOCALHOST, port: 80 };
    let e = Ports { table: "p".into(), bridge: "b".into(), maps: vec![zero] }.check().unwrap_err();
    assert_eq!(e.to_string(), "invalid port mapping tcp:0 -> 127.0.0.1:80: port 0");
}

/// An nlmsgerr datagram as the kernel sends it with NETLINK_CAP_ACK and extended acks.
fn ack_msg(seq: u32, code: i32, text: Option<&str>) -> Vec<u8> {
    let mut body = code.to_ne_bytes().to_vec();
    body.extend(cat(&[ne32(16), ne16(0), ne16(0), ne32(seq), ne32(0)])); // the echoed header
    let mut flags = 0x100; // NLM_F_CAPPED
    if let Some(t) = text {
        flags |= 0x200; // NLM_F_ACK_TLVS
        let mut a = wire::Attrs::default();
        a.str(1, t); // NLMSGERR_ATTR_MSG
        body.extend(a.0);
    }
    cat(&[ne32(16 + body.len() as u32), ne16(2), ne16(flags), ne32(seq), ne32(0), body])
}

#[test]
fn the_refused_message_is_named_with_the_kernels_text() {
    let data = cat(&[ack_msg(2, 0, None), ack_msg(3, -libc::ENOENT, Some("No such file")), ack_msg(4, 0, None)]);
    let acks = parse_acks(&data).unwrap();
    assert_eq!(
        acks,
        [
            Ack { seq: 2, code: 0, text: None },
            Ack { seq: 3, code: -libc::ENOENT, text: Some("No such file".into()) },
            Ack { seq: 4, code: 0, text: None },
        ]
    );
    let p = Ports {
        table: "t".into(),
        bridge: "b".into(),
        maps: vec![PortMap { proto: Proto::Tcp, host_port: 1, addr: Ipv4Addr::LOCALHOST, port: 2 }],
    };
    let msgs = batch_msgs(&p.table, &[Ports::PREROUTING], &p.rules()[..1]);
    let e = first_error(&msgs, 1, &acks, hint).unwrap_err();
    assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT));
    assert_eq!(
        e.to_string(),
        "nft add chain ip t prerouting { type nat hook prerouting priority -100; }: ENOENT: no such file or directory; \
         kernel says: No such file; the kernel has no nat chain type: load it (modprobe nft_chain_nat); \
         nothing of the batch was applied"
    );
    // all acked with 0: no error
    first_error(&msgs, 1, &parse_acks(&cat(&[ack_msg(2, 0, None), ack_msg(3, 0, None)])).unwrap(), hint).unwrap();
    // a truncated datagram is an error, not a panic
    assert!(parse_acks(&data[..data.len() - 3]).is_err());
}
