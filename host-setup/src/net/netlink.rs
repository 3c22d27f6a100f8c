//! The one place that talks rtnetlink to the kernel: a socket opened inside a named
//! network namespace, and [`Netlink::request`], which sends one message and reads the
//! kernel's whole answer (data messages, then an ack or NLMSG_DONE).

use std::cell::Cell;
use std::fs::File;

use log::debug;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use super::netns;
use crate::error::{Error, Result, SysContext};
use crate::failed;

/// `NLM_F_CAPPED`: the error ack echoes only the request's header (we set NETLINK_CAP_ACK).
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's own error text (e.g. "ipv4: Invalid prefix length").
const NLMSGERR_ATTR_MSG: u16 = 1;
/// The size of a struct nlmsghdr.
const NETLINK_HEADER_LEN: usize = 16;
/// How often a dump that a concurrent change interrupted (NLM_F_DUMP_INTR) is redone.
const DUMP_ATTEMPTS: u32 = 5;

/// An rtnetlink socket that lives in one network namespace.
pub(crate) struct Netlink {
    socket: Socket,
    seq: Cell<u32>,
}

impl Netlink {
    /// Opens an rtnetlink socket inside the namespace `ns` (the opened /run/netns/NAME).
    ///
    /// A netlink socket belongs for its whole life to the network namespace of the task
    /// that created it, whatever that task does later. So a short-lived thread enters
    /// the namespace, creates the socket and ends; the caller's own thread never leaves
    /// its namespace (namespaces are per task, and setns in a thread affects only it).
    pub(crate) fn open(netns_name: &str, ns: &File) -> Result<Netlink> {
        let socket = netns::run_in(netns_name, ns, || {
            open_socket(NETLINK_ROUTE, || format!("open netlink socket in netns {netns_name}"))
        })?;
        debug!("netns {netns_name}: netlink socket open");
        Ok(Netlink { socket, seq: Cell::new(0) })
    }

    /// Opens an rtnetlink socket in the calling thread's own network namespace (the
    /// one host-setup runs in: "the host", for bridges and their veth ends).
    pub(crate) fn open_here() -> Result<Netlink> {
        let what = || "open netlink socket in host-setup's own netns".to_string();
        let mut socket = Socket::new(NETLINK_ROUTE).sys(what)?;
        socket.set_cap_ack(true).sys(what)?;
        socket.set_ext_ack(true).sys(what)?;
        socket.bind_auto().sys(what)?;
        socket.connect(&SocketAddr::new(0, 0)).sys(what)?;
        Ok(Netlink { socket, seq: Cell::new(0) })
    }

    /// Sends `msg` with NLM_F_REQUEST plus `flags` and returns the kernel's data replies.
    ///
    /// Requests that are not dumps also get NLM_F_ACK, so every request ends with an
    /// ack or an error: an error ack (negative errno) becomes `Error::Sys { what, .. }`,
    /// with the kernel's extended-ack text as hint when it sent one. Dumps end with
    /// NLMSG_DONE; one that a concurrent change interrupted is redone.
    pub(crate) fn request(&self, what: &str, flags: u16, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        for attempt in 1..=DUMP_ATTEMPTS {
            let seq = self.seq.get().wrapping_add(1);
            self.seq.set(seq);
            let mut header = NetlinkHeader::default();
            header.flags = flags;
            header.sequence_number = seq;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg.clone()));
            packet.finalize();
            let mut buf = vec![0; packet.buffer_len()];
            packet.serialize(&mut buf);
            debug!("{what} (rtnetlink seq {seq}, flags {flags:#x})");
            self.socket.send(&buf, 0).sys(|| format!("{what} (netlink send)"))?;

            let mut replies = Vec::new();
            let mut interrupted = false;
            let mut undecodable = None;
            'receive: loop {
                // Reads one whole datagram however big (a peek tells its size first).
                let (data, from) = self.socket.recv_from_full().sys(|| format!("{what} (netlink receive)"))?;
                if from.port_number() != 0 {
                    continue; // not from the kernel
                }
                let mut off = 0;
                while data.len() - off >= NETLINK_HEADER_LEN {
                    let raw = NetlinkBuffer::new_checked(&data[off..])
                        .map_err(|e| failed!("{what}: malformed netlink reply: {e}"))?;
                    let len = raw.length() as usize;
                    let (msg_seq, msg_flags) = (raw.sequence_number(), raw.flags());
                    let bytes = &data[off..off + len];
                    off = (off + align4(len)).min(data.len());
                    if msg_seq != seq {
                        continue; // a late answer to an earlier request
                    }
                    interrupted |= msg_flags & NLM_F_DUMP_INTR != 0;
                    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
                        Ok(m) => match m.payload {
                            NetlinkPayload::InnerMessage(r) => replies.push(r),
                            NetlinkPayload::Error(e) => match e.code {
                                None => break 'receive,
                                Some(code) => {
                                    let text = ext_ack_text(echo_len(msg_flags, &e.header), msg_flags, &e.header);
                                    return Err(ack_error(what, code.get(), text));
                                }
                            },
                            NetlinkPayload::Done(d) => {
                                if d.code < 0 {
                                    let text = ext_ack_text(0, msg_flags, &d.extended_ack);
                                    return Err(ack_error(what, d.code, text));
                                }
                                break 'receive;
                            }
                            _ => {}
                        },
                        // Keep reading up to the ack, so the socket stays in step.
                        Err(e) => {
                            undecodable.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            }
            if let Some(e) = undecodable {
                return Err(failed!("{what}: cannot decode the kernel's reply: {e}"));
            }
            if dump && interrupted {
                debug!("{what}: dump interrupted by a concurrent change (attempt {attempt})");
                continue;
            }
            return Ok(replies);
        }
        Err(failed!("{what}: the dump was interrupted by concurrent changes {DUMP_ATTEMPTS} times"))
    }
}

/// A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER) in the calling
/// thread's network namespace, bound and connected to the kernel. Error acks carry only
/// the request's header plus the kernel's error text.
pub(crate) fn open_socket(protocol: isize, what: impl Fn() -> String) -> Result<Socket> {
    let mut socket = Socket::new(protocol).sys(&what)?;
    socket.set_cap_ack(true).sys(&what)?;
    socket.set_ext_ack(true).sys(&what)?;
    socket.bind_auto().sys(&what)?;
    socket.connect(&SocketAddr::new(0, 0)).sys(&what)?;
    Ok(socket)
}

pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// How many bytes of an error ack's payload (after the error code) are the echoed request:
/// its header alone when the kernel capped it, else the whole request.
pub(crate) fn echo_len(flags: u16, payload: &[u8]) -> usize {
    if flags & NLM_F_CAPPED != 0 || payload.len() < NETLINK_HEADER_LEN {
        return NETLINK_HEADER_LEN.min(payload.len());
    }
    u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize
}

/// The kernel's error text (NLMSGERR_ATTR_MSG) from the extended-ack attributes that
/// start at `tlv_start` in `payload`, if the ack carries any.
pub(crate) fn ext_ack_text(tlv_start: usize, flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let mut off = align4(tlv_start);
    while off + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[off], payload[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[off + 2], payload[off + 3]]) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = &payload[off + 4..off + len];
            let value = value.split(|&b| b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(value).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
        off += align4(len);
    }
    None
}

/// An error ack (`code` is a negative errno) as our error type.
pub(crate) fn ack_error(what: &str, code: i32, kernel_text: Option<String>) -> Error {
    let err = Error::sys(what, Errno::from_raw(code.saturating_abs()));
    match kernel_text {
        Some(text) => err.hint(format!("kernel says: {text}")),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize(align4(len), 0);
        v
    }

    #[test]
    fn error_ack_maps_to_errno_and_names_the_step() {
        let e = ack_error("create veth pair veth0 (netns RED) <-> veth1 (netns BLUE)", -libc::EEXIST, None);
        assert_eq!(e.errno(), Some(Errno::EEXIST));
        assert_eq!(e.to_string(), "create veth pair veth0 (netns RED) <-> veth1 (netns BLUE): EEXIST: file exists");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn kernel_text_becomes_the_hint() {
        let e = ack_error(
            "add address 11.11.11.2/24 to veth0 (netns RED)",
            -libc::EINVAL,
            Some("ipv4: Invalid prefix length".into()),
        );
        assert_eq!(
            e.to_string(),
            "add address 11.11.11.2/24 to veth0 (netns RED): EINVAL: invalid argument; kernel says: ipv4: Invalid prefix length"
        );
    }

    #[test]
    fn ext_ack_text_is_found_after_a_capped_echo() {
        // payload after the error code: the echoed 16-byte nlmsghdr, then the TLVs
        let mut payload = vec![0u8; 16];
        payload[..4].copy_from_slice(&40u32.to_ne_bytes()); // the original length: ignored when capped
        payload.extend(tlv(4, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS: skipped
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"ipv4: Invalid prefix length\0"));
        let flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        assert_eq!(
            ext_ack_text(echo_len(flags, &payload), flags, &payload).as_deref(),
            Some("ipv4: Invalid prefix length")
        );
        // without NLM_F_ACK_TLVS there is nothing to read
        assert_eq!(ext_ack_text(echo_len(NLM_F_CAPPED, &payload), NLM_F_CAPPED, &payload), None);
    }

    #[test]
    fn ext_ack_text_is_found_after_a_full_echo() {
        let mut payload = vec![0u8; 20]; // a whole 20-byte request echoed
        payload[..4].copy_from_slice(&20u32.to_ne_bytes());
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"Unknown device type\0"));
        assert_eq!(echo_len(NLM_F_ACK_TLVS, &payload), 20);
        assert_eq!(ext_ack_text(20, NLM_F_ACK_TLVS, &payload).as_deref(), Some("Unknown device type"));
    }

    #[test]
    fn ext_ack_text_survives_garbage() {
        let payload = [0u8, 0, 0, 0, 0xff, 0xff, 1, 0];
        assert_eq!(ext_ack_text(0, NLM_F_ACK_TLVS, &payload), None);
        assert_eq!(ext_ack_text(100, NLM_F_ACK_TLVS, &payload), None);
    }
}
