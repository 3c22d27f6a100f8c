//! The D-Bus wire format (the specification's "Marshaling"), little-endian only,
//! for the few types systemd's Manager calls need: every value is aligned to its
//! type's size counted from the start of the message (the header and the body
//! each start 8-aligned, so each is encoded from offset 0 here).
//!
//! Alignments: y g v 1; b u i h s o a 4 (an array's elements after its length
//! are aligned to theirs, and the length counts neither that padding nor the
//! padding after); t x d ( ) { } 8.

use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U16(u16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    Str(String),
    Path(String),
    Sig(String),
    /// The elements' signature (needed when there are none), the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// This value's type signature.
    pub fn sig(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U16(_) => "q".into(),
            Value::U32(_) => "u".into(),
            Value::I32(_) => "i".into(),
            Value::U64(_) => "t".into(),
            Value::I64(_) => "x".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(v) => format!("({})", v.iter().map(Value::sig).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// The signature of several values one after the other (a body's).
pub fn signature(values: &[Value]) -> String {
    values.iter().map(Value::sig).collect()
}

fn align_of(t: u8) -> usize {
    match t {
        b'y' | b'g' | b'v' => 1,
        b'q' | b'n' => 2,
        b't' | b'x' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

#[derive(Default)]
pub struct Enc {
    pub buf: Vec<u8>,
}

impl Enc {
    pub fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::U16(n) => {
                self.pad(2);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => self.u32(*n),
            Value::I32(n) => self.u32(*n as u32),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::I64(n) => self.put(&Value::U64(*n as u64)),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(align_of(elem.as_bytes()[0]));
                let start = self.buf.len();
                for i in items {
                    self.put(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.sig()));
                self.put(inner);
            }
        }
    }
}

/// The first complete type of `sig` and the rest.
pub fn split_type(sig: &str) -> Result<(&str, &str)> {
    let b = sig.as_bytes();
    let end = match b.first() {
        None => return Err(crate::failed!("d-bus: empty signature")),
        Some(b'a') => 1 + split_type(&sig[1..])?.0.len(),
        Some(open @ (b'(' | b'{')) => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut at = 1;
            while b.get(at) != Some(&close) {
                if at >= b.len() {
                    return Err(crate::failed!("d-bus: signature {sig:?} is not closed"));
                }
                at += split_type(&sig[at..])?.0.len();
            }
            at + 1
        }
        Some(_) => 1,
    };
    Ok(sig.split_at(end))
}

pub struct Dec<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos + n).ok_or_else(|| crate::failed!("d-bus: message too short"))?;
        self.pos += n;
        Ok(s)
    }

    fn align(&mut self, a: usize) -> Result<()> {
        let to = self.pos.div_ceil(a) * a;
        self.take(to - self.pos).map(drop)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let s = self.take(len + 1)?;
        String::from_utf8(s[..len].to_vec()).map_err(|_| crate::failed!("d-bus: a string is not UTF-8"))
    }

    /// All the values of signature `sig`, one after the other.
    pub fn values(&mut self, mut sig: &str) -> Result<Vec<Value>> {
        let mut out = vec![];
        while !sig.is_empty() {
            let (t, rest) = split_type(sig)?;
            out.push(self.get(t)?);
            sig = rest;
        }
        Ok(out)
    }

    /// One value of complete type `t`.
    pub fn get(&mut self, t: &str) -> Result<Value> {
        Ok(match t.as_bytes()[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'q' | b'n' => {
                self.align(2)?;
                Value::U16(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
            }
            b'u' | b'h' => Value::U32(self.u32()?),
            b'i' => Value::I32(self.u32()? as i32),
            b't' | b'x' | b'd' => {
                self.align(8)?;
                let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
                if t == "x" {
                    Value::I64(n as i64)
                } else {
                    Value::U64(n)
                }
            }
            b's' => {
                let n = self.u32()? as usize;
                Value::Str(self.text(n)?)
            }
            b'o' => {
                let n = self.u32()? as usize;
                Value::Path(self.text(n)?)
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            b'v' => {
                let Value::Sig(s) = self.get("g")? else { unreachable!() };
                let (inner, rest) = split_type(&s)?;
                if !rest.is_empty() {
                    return Err(crate::failed!("d-bus: variant signature {s:?} is not one type"));
                }
                Value::Variant(Box::new(self.get(inner)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &t[1..];
                self.align(align_of(elem.as_bytes()[0]))?;
                let end = self.pos + len;
                let mut items = vec![];
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                Value::Struct(self.values(&t[1..t.len() - 1])?)
            }
            c => return Err(crate::failed!("d-bus: type {:?} is not supported", c as char)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut e = Enc::default();
        e.put(v);
        e.buf
    }

    #[test]
    fn basic_types_and_padding() {
        assert_eq!(enc(&Value::str("ab")), [2, 0, 0, 0, b'a', b'b', 0]);
        assert_eq!(enc(&Value::Sig("au".into())), [2, b'a', b'u', 0]);
        assert_eq!(enc(&Value::Bool(true)), [1, 0, 0, 0]);
        // A u64 after a byte: 7 bytes of padding.
        let mut e = Enc::default();
        e.put(&Value::Byte(9));
        e.put(&Value::U64(0x0102));
        assert_eq!(e.buf, [9, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn arrays_count_their_elements_only() {
        // a(sv) [("PIDs", <au [7]>)]: length, pad to 8, the struct.
        let v = Value::Array(
            "(sv)".into(),
            vec![Value::Struct(vec![
                Value::str("PIDs"),
                Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(7)]))),
            ])],
        );
        let b = enc(&v);
        #[rustfmt::skip]
        let want = [
            24, 0, 0, 0, 0, 0, 0, 0,          // length 24, pad to 8
            4, 0, 0, 0, b'P', b'I', b'D', b's', 0, // "PIDs"
            2, b'a', b'u', 0,                 // variant's signature "au"
            0, 0, 0,                          // pad to 4
            4, 0, 0, 0, 7, 0, 0, 0,           // au [7]
        ];
        assert_eq!(b, want);
        assert_eq!(v.sig(), "a(sv)");
        // An empty array of structs still pads to 8 and has length 0.
        assert_eq!(enc(&Value::Array("(sv)".into(), vec![])), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Dec::new(&b).get("a(sv)").unwrap(), v);
    }

    #[test]
    fn round_trips() {
        let vals = vec![
            Value::str("hsrun-x.scope"),
            Value::Path("/org/freedesktop/systemd1/job/42".into()),
            Value::U32(42),
            Value::Bool(false),
            Value::Array("y".into(), vec![Value::Byte(0b1011)]),
            Value::Variant(Box::new(Value::U64(u64::MAX))),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let mut e = Enc::default();
        for v in &vals {
            e.put(v);
        }
        let sig = signature(&vals);
        assert_eq!(sig, "soubayva(sa(sv))");
        assert_eq!(Dec::new(&e.buf).values(&sig).unwrap(), vals);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Dec::new(&[5, 0, 0, 0, b'a']).get("s").is_err(), "too short");
        assert!(split_type("(su").is_err());
        assert_eq!(split_type("a{sv}u").unwrap(), ("a{sv}", "u"));
        assert_eq!(split_type("(ua(sv))s").unwrap(), ("(ua(sv))", "s"));
    }
}
