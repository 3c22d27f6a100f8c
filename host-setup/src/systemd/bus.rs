//! A connection to systemd itself, as runc and crun make it as root: the unix
//! socket /run/systemd/private (a direct peer connection, no bus daemon, so no
//! Hello), EXTERNAL authentication (our uid, hex-encoded ASCII), then messages.
//! systemd sends its Manager signals (JobRemoved) to every private connection
//! without a Subscribe, so they arrive interleaved with the replies.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::message::{self, Message};
use crate::error::{Result, SysContext};

pub const PRIVATE: &str = "/run/systemd/private";

pub struct Bus {
    sock: BufReader<UnixStream>,
    serial: u32,
    /// Signals read while waiting for a reply.
    pending: Vec<Message>,
}

impl Bus {
    pub fn connect() -> Result<Bus> {
        let sock = UnixStream::connect(PRIVATE).sys(|| format!("systemd: connect {PRIVATE}"))?;
        let mut bus = Bus { sock: BufReader::new(sock), serial: 0, pending: vec![] };
        bus.auth()?;
        Ok(bus)
    }

    fn auth(&mut self) -> Result<()> {
        let what = || format!("systemd: authenticate on {PRIVATE}");
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // The credentials byte (NUL) first, then the text protocol.
        let s = self.sock.get_mut();
        s.set_read_timeout(Some(Duration::from_secs(10))).sys(what)?;
        s.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes()).sys(what)?;
        let mut line = String::new();
        self.sock.read_line(&mut line).sys(what)?;
        if !line.starts_with("OK ") {
            return Err(crate::failed!("{}: systemd answered {:?}", what(), line.trim_end()));
        }
        self.sock.get_mut().write_all(b"BEGIN\r\n").sys(what)
    }

    fn read(&mut self, until: Instant) -> Result<Message> {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let what = || format!("systemd: read a message from {PRIVATE}");
        self.sock.get_mut().set_read_timeout(Some(left)).sys(what)?;
        let mut head = [0u8; 16];
        self.sock.read_exact(&mut head).sys(what)?;
        let mut buf = head.to_vec();
        buf.resize(Message::length(&head)?, 0);
        self.sock.read_exact(&mut buf[16..]).sys(what)?;
        let m = Message::decode(&buf)?;
        log::debug!(
            "d-bus: read kind {} serial {} reply to {:?} {:?} {:?} {:?}",
            m.kind,
            m.serial,
            m.reply_serial,
            m.member,
            m.error_name,
            m.body.first()
        );
        Ok(m)
    }

    /// Send `m` and wait for its reply; an error reply is an error naming `what`.
    pub fn call(&mut self, mut m: Message, what: &str) -> Result<Message> {
        self.serial += 1;
        m.serial = self.serial;
        log::debug!("d-bus: call {what} (serial {})", m.serial);
        self.sock.get_mut().write_all(&m.encode()).sys(|| format!("systemd: {what}: send over {PRIVATE}"))?;
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.read(until).map_err(|e| crate::failed!("{what}: {e}"))?;
            match r.kind {
                message::SIGNAL => self.pending.push(r),
                message::METHOD_RETURN if r.reply_serial == Some(m.serial) => return Ok(r),
                message::ERROR if r.reply_serial == Some(m.serial) => {
                    let name = r.error_name.unwrap_or_default();
                    let text = r.body.first().and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    return Err(crate::failed!("systemd: {what}: {name}: {}", text.trim_end_matches('.')));
                }
                _ => {}
            }
        }
    }

    /// The first signal named `member` whose body `matches`, read or already
    /// pending, within `timeout`.
    pub fn wait_signal(
        &mut self,
        member: &str,
        timeout: Duration,
        matches: impl Fn(&Message) -> bool,
    ) -> Result<Message> {
        let is = |m: &Message| m.member.as_deref() == Some(member) && matches(m);
        if let Some(i) = self.pending.iter().position(is) {
            return Ok(self.pending.remove(i));
        }
        let until = Instant::now() + timeout;
        loop {
            if Instant::now() >= until {
                return Err(crate::failed!("systemd: no {member} signal within {} s", timeout.as_secs()));
            }
            let m = self.read(until).map_err(|e| crate::failed!("waiting for {member}: {e}"))?;
            if m.kind == message::SIGNAL && is(&m) {
                return Ok(m);
            }
        }
    }
}
