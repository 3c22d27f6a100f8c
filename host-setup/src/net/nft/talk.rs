//! Sending nf_tables batches and requests over a NETLINK_NETFILTER socket of the calling
//! thread's network namespace, and reading the kernel's acks.

use std::os::fd::AsRawFd;

use log::debug;
use netlink_sys::Socket;
use nix::errno::Errno;

use super::wire::{self, Msg, NLMSG_DONE, NLMSG_ERROR};
use crate::error::{Error, Result, SysContext};
use crate::failed;
use crate::net::netlink::{ack_error, echo_len, ext_ack_text, open_socket};

/// One answer of the kernel: the seq it answers and the errno (0: it went through),
/// with the kernel's extended-ack text if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) seq: u32,
    pub(crate) code: i32,
    pub(crate) text: Option<String>,
}

const NO_NF_TABLES: &str =
    "the kernel has no nf_tables (CONFIG_NF_TABLES): load it (modprobe nf_tables) or use a kernel that has it";

fn socket() -> Result<Socket> {
    open_socket(wire::NETLINK_NETFILTER, || "open netfilter netlink socket".to_string()).map_err(|e| match e.errno() {
        // No nfnetlink at all (CONFIG_NETFILTER_NETLINK), so no nf_tables either.
        Some(Errno::EPROTONOSUPPORT) => e.hint(format!("{NO_NF_TABLES} (modprobe nfnetlink)")),
        _ => e,
    })
}

/// The acks and errors in one datagram from the kernel (NLMSG_ERROR messages, and the
/// error code of an NLMSG_DONE); data messages are skipped.
pub(crate) fn parse_acks(data: &[u8]) -> Result<Vec<Ack>> {
    let mut acks = Vec::new();
    let mut off = 0;
    while off + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > data.len() {
            return Err(failed!("malformed netlink reply from nf_tables (length {len} at offset {off})"));
        }
        let kind = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
        let flags = u16::from_ne_bytes([data[off + 6], data[off + 7]]);
        let seq = u32::from_ne_bytes(data[off + 8..off + 12].try_into().unwrap());
        let body = &data[off + 16..off + len];
        if (kind == NLMSG_ERROR || kind == NLMSG_DONE) && body.len() >= 4 {
            let code = i32::from_ne_bytes(body[..4].try_into().unwrap());
            let rest = &body[4..];
            let text = if kind == NLMSG_ERROR { ext_ack_text(echo_len(flags, rest), flags, rest) } else { None };
            acks.push(Ack { seq, code, text });
        }
        off += wire::align4(len);
    }
    Ok(acks)
}

/// Sends `bytes` and reads every answer the kernel queued for it.
///
/// The kernel handles a netlink request inside sendmsg (nfnetlink commits or aborts
/// the whole batch there), so all its answers are queued when send returns: they are
/// drained without blocking, and nothing can hang. `Overrun`: the socket's receive
/// buffer overflowed (ENOBUFS) and some answers were lost; the first ones are kept.
fn exchange(what: &str, bytes: &[u8]) -> Result<(Vec<Ack>, bool)> {
    let socket = socket()?;
    fit_send_buffer(&socket, bytes.len(), what)?;
    let sent = socket.send(bytes, 0).sys(|| format!("{what} (netlink send)"))?;
    if sent != bytes.len() {
        return Err(failed!("{what}: netlink send took {sent} of {} bytes", bytes.len()));
    }
    socket.set_non_blocking(true).sys(|| format!("{what} (netlink socket)"))?;
    let mut acks: Vec<Ack> = Vec::new();
    let mut overrun = false;
    loop {
        let (data, from) = match socket.recv_from_full() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok((acks, overrun)),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                overrun = true;
                continue;
            }
            Err(e) => return Err(e).sys(|| format!("{what} (netlink receive)")),
        };
        if from.port_number() == 0 {
            acks.extend(parse_acks(&data)?); // else: not from the kernel
        }
    }
}

/// A datagram larger than the socket's send buffer is refused (EMSGSIZE), and a batch is
/// one datagram: ~1 kB per published port. So a big batch gets a send buffer to fit, with
/// SO_SNDBUFFORCE (CAP_NET_ADMIN; past net.core.wmem_max), as nft does.
fn fit_send_buffer(socket: &Socket, len: usize, what: &str) -> Result<()> {
    const ENOUGH_BY_DEFAULT: usize = 64 * 1024;
    if len <= ENOUGH_BY_DEFAULT {
        return Ok(());
    }
    let size = libc::c_int::try_from(len + ENOUGH_BY_DEFAULT)
        .map_err(|_| failed!("{what}: a batch of {len} bytes is too big for one netlink message"))?;
    crate::sys::set_send_buffer_force(socket.as_raw_fd(), size)
        .map_err(|e| Error::sys(format!("{what} (SO_SNDBUFFORCE {size} on the netlink socket)"), e))?;
    Ok(())
}

/// An error about the whole batch, reported for BATCH_BEGIN.
fn batch_error(what: &str, ack: &Ack) -> Error {
    let e = ack_error(what, ack.code, ack.text.clone());
    match e.errno() {
        // nfnetlink has no nf_tables subsystem to hand the batch to.
        Some(Errno::EOPNOTSUPP) => e.hint(NO_NF_TABLES),
        Some(Errno::EPERM) => e.hint("changing nf_tables needs CAP_NET_ADMIN over the network namespace"),
        _ => e,
    }
}

/// Applies `msgs` as one nf_tables transaction: all of them or none. The first message
/// the kernel refused is the error, named by its `what`; `hint` may add advice for it.
pub(crate) fn apply(what: &str, msgs: &[Msg], hint: impl Fn(&Msg, &Error) -> Option<String>) -> Result<()> {
    const SEQ: u32 = 1; // a fresh socket per batch: its own seq space
    let bytes = wire::batch(SEQ, msgs);
    debug!("{what}: nf_tables batch of {} messages, {} bytes", msgs.len(), bytes.len());
    let (acks, overrun) = exchange(what, &bytes)?;
    // An error about the whole batch comes for BATCH_BEGIN's seq, before the rest.
    if let Some(a) = acks.iter().find(|a| a.seq == SEQ && a.code != 0) {
        return Err(batch_error(what, a));
    }
    first_error(msgs, SEQ, &acks, hint)?;
    // Nothing refused: the last message's ack (0) says the batch was committed.
    let last = SEQ + msgs.len() as u32;
    if msgs.is_empty() || acks.iter().any(|a| a.seq == last && a.code == 0) {
        Ok(())
    } else if overrun {
        Err(Error::sys(format!("{what} (netlink receive)"), Errno::ENOBUFS)
            .hint("the kernel's answers overflowed the socket's receive buffer"))
    } else {
        Err(failed!("{what}: the kernel did not acknowledge the batch"))
    }
}

/// The error of the first refused message of a batch that started at `seq`, if any.
pub(crate) fn first_error(
    msgs: &[Msg],
    seq: u32,
    acks: &[Ack],
    hint: impl Fn(&Msg, &Error) -> Option<String>,
) -> Result<()> {
    for (i, m) in msgs.iter().enumerate() {
        let Some(ack) = acks.iter().find(|a| a.seq == seq + 1 + i as u32 && a.code != 0) else {
            continue;
        };
        let mut e = ack_error(&m.what, ack.code, ack.text.clone());
        if let Some(h) = hint(m, &e) {
            e = e.hint(h);
        }
        let others = acks.iter().filter(|a| a.code != 0).count() - 1;
        if others > 0 {
            e = e.hint(format!("{others} more message(s) of the batch failed"));
        }
        return Err(e.hint("nothing of the batch was applied"));
    }
    Ok(())
}

/// NFT_MSG_GETTABLE for `ip NAME` (a plain request, outside any batch): whether it
/// exists. ENOENT is "no"; any other error is an error.
pub(crate) fn table_exists(name: &str) -> Result<bool> {
    let what = format!("nft list table ip {name}");
    let mut attrs = wire::Attrs::default();
    attrs.str(wire::NFTA_TABLE_NAME, name);
    let flags = wire::NLM_F_REQUEST | wire::NLM_F_ACK;
    let bytes = wire::message(wire::nft_type(wire::NFT_MSG_GETTABLE), flags, 1, wire::NFPROTO_IPV4, 0, &attrs.0);
    let (acks, _) = exchange(&what, &bytes)?;
    match acks.iter().find(|a| a.seq == 1) {
        Some(a) if a.code == 0 => Ok(true),
        Some(a) if a.code == -libc::ENOENT => Ok(false),
        Some(a) => {
            let e = ack_error(&what, a.code, a.text.clone());
            Err(if e.errno() == Some(Errno::EOPNOTSUPP) { e.hint(NO_NF_TABLES) } else { e })
        }
        None => Err(failed!("{what}: no answer from the kernel")),
    }
}
