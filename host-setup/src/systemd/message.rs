//! One D-Bus message: the fixed header (endianness 'l', type, flags, version 1,
//! body length, serial), the header fields `a(yv)` padded to 8, then the body.

use super::wire::{self, Dec, Enc, Value};
use crate::error::Result;

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// The header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SIGNATURE: u8 = 8;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    /// A method call to systemd's manager object.
    pub fn call(path: &str, interface: &str, member: &str, body: Vec<Value>) -> Message {
        Message {
            kind: METHOD_CALL,
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            destination: Some("org.freedesktop.systemd1".into()),
            body,
            ..Default::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Enc::default();
        for v in &self.body {
            body.put(v);
        }
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
        let mut fields = vec![];
        let strings = [
            (PATH, &self.path, true),
            (INTERFACE, &self.interface, false),
            (MEMBER, &self.member, false),
            (ERROR_NAME, &self.error_name, false),
            (DESTINATION, &self.destination, false),
        ];
        for (code, v, is_path) in strings {
            if let Some(s) = v {
                fields.push(field(code, if is_path { Value::Path(s.clone()) } else { Value::str(s) }));
            }
        }
        if let Some(r) = self.reply_serial {
            fields.push(field(REPLY_SERIAL, Value::U32(r)));
        }
        if !self.body.is_empty() {
            fields.push(field(SIGNATURE, Value::Sig(wire::signature(&self.body))));
        }
        let mut e = Enc::default();
        e.buf.extend_from_slice(&[b'l', self.kind, 0, 1]);
        e.put(&Value::U32(body.buf.len() as u32));
        e.put(&Value::U32(self.serial));
        e.put(&Value::Array("(yv)".into(), fields));
        e.pad(8);
        e.buf.extend_from_slice(&body.buf);
        e.buf
    }

    /// The whole length of the message whose first 16 bytes are `head`.
    pub fn length(head: &[u8; 16]) -> Result<usize> {
        if head[0] != b'l' {
            return Err(crate::failed!("d-bus: a big-endian message ({:?}) is not supported", head[0] as char));
        }
        let n = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes")) as usize;
        let (body, fields) = (n(4), n(12));
        Ok(16 + fields.div_ceil(8) * 8 + body)
    }

    pub fn decode(buf: &[u8]) -> Result<Message> {
        let head: &[u8; 16] =
            buf.get(..16).and_then(|h| h.try_into().ok()).ok_or_else(|| crate::failed!("d-bus: message too short"))?;
        Message::length(head)?;
        let mut d = Dec::new(buf);
        d.pos = 8;
        let serial = d.get("u")?.as_u32().unwrap_or(0);
        let Value::Array(_, fields) = d.get("a(yv)")? else { unreachable!() };
        let mut m = Message { kind: buf[1], serial, ..Default::default() };
        let mut sig = String::new();
        for f in fields {
            let Value::Struct(f) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else { continue };
            let s = v.as_str().map(str::to_string);
            match *code {
                PATH => m.path = s,
                INTERFACE => m.interface = s,
                MEMBER => m.member = s,
                ERROR_NAME => m.error_name = s,
                DESTINATION => m.destination = s,
                REPLY_SERIAL => m.reply_serial = v.as_u32(),
                SIGNATURE => sig = s.unwrap_or_default(),
                _ => {}
            }
        }
        let start = d.pos.div_ceil(8) * 8;
        let mut body = Dec::new(buf.get(start..).unwrap_or_default());
        m.body = body.values(&sig)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_encodes_and_decodes() {
        let mut m = Message::call(
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            vec![Value::str("hsrun-x.scope"), Value::str("replace")],
        );
        m.serial = 3;
        let b = m.encode();
        assert_eq!(&b[..4], &[b'l', METHOD_CALL, 0, 1]);
        assert_eq!(Message::length(b[..16].try_into().unwrap()).unwrap(), b.len());
        // The body starts 8-aligned: 4 bytes length + "hsrun-x.scope\0" ...
        let body_len = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        assert_eq!(&b[b.len() - body_len..][..4], &[13, 0, 0, 0]);
        assert_eq!(Message::decode(&b).unwrap(), m);
    }

    #[test]
    fn a_signal_as_systemd_sends_it() {
        // JobRemoved(u id, o job, s unit, s result), as the bus would carry it.
        let m = Message {
            kind: SIGNAL,
            serial: 9,
            path: Some("/org/freedesktop/systemd1".into()),
            interface: Some("org.freedesktop.systemd1.Manager".into()),
            member: Some("JobRemoved".into()),
            body: vec![
                Value::U32(42),
                Value::Path("/org/freedesktop/systemd1/job/42".into()),
                Value::str("hsrun-x.scope"),
                Value::str("done"),
            ],
            ..Default::default()
        };
        let d = Message::decode(&m.encode()).unwrap();
        assert_eq!(d.member.as_deref(), Some("JobRemoved"));
        assert_eq!(d.body[3].as_str(), Some("done"));
        let mut big = m.encode();
        big[0] = b'B';
        assert!(Message::decode(&big).is_err());
    }
}
