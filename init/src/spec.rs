//! `--spec-fd N`: the in-container part of a container's spec, as records.
//!
//! host-setup's own containers need only init's flags. An OCI bundle (and an
//! image run with `-v`, `-u`, `-w`, `--read-only`) asks for more: a list of
//! mounts, masked paths, capability sets, rlimits, a user, a working directory,
//! the wait for `start`. host-setup writes those as records on a sealed memfd;
//! init reads them (src/specrun.rs runs them). One format, defined here, used by
//! both sides: host-setup encodes with `Writer`, init decodes with `Reader`, and
//! a host-setup unit test decodes what it encodes.
//!
//! The stream: `MAGIC`, then records, then a record with tag `END`.
//! A record: tag (1 byte), field count (u16 LE), fields.
//! A field: length (u32 LE), then that many bytes. Numbers are 8-byte LE u64
//! fields (i64 values cast); `NONE` stands for "not given".
//!
//! Records and their fields, in the order init applies them (see specrun.rs):
//!
//! | tag | fields | when |
//! |---|---|---|
//! | ROOT_PROPAGATION | flags (MS_SLAVE\|MS_REC, ...) | first, on "/" (default MS_PRIVATE\|MS_REC) |
//! | MOUNT | source, target, fstype, flags, data, propagation, src_fd | before the pivot, in order; target inside the new root |
//! | DEVICE | path, kind (b'c', b'b', b'p'), major, minor, mode, uid, gid | before the pivot (a bind of the host node under a userns) |
//! | SYMLINK | target, link path | before the pivot |
//! | ROOT_READONLY | - | after the mounts, before the pivot |
//! | NO_PIVOT | - | MS_MOVE + chroot instead of pivot_root (runc --no-pivot) |
//! | CONSOLE | fd (a unix socket connected to `--console-socket`) | right after the pivot: a pty of the container's devpts on 0-2, its master sent on fd |
//! | MASK | path | after the pivot: /dev/null over a file, an empty read-only tmpfs over a dir |
//! | READONLY | path | after the pivot: bind-remount read-only |
//! | SYSCTL | key (`net.ipv4.ip_forward`), value | after the pivot, into /proc/sys |
//! | DOMAINNAME | name | with the hostname |
//! | RLIMIT | resource, soft, hard | before the user's process |
//! | OOM_SCORE_ADJ | value | before the user's process |
//! | USER | uid, gid, umask (NONE: 022), additional gids... | before the user's process |
//! | CAPS | bounding, effective, permitted, inheritable, ambient | after USER |
//! | NO_NEW_PRIVS | - | after CAPS |
//! | CWD | path | last before exec |
//! | START_FIFO | path (a host path, opened O_PATH before the pivot) | init blocks opening it for writing until `start` reads it |
//! | CREATE_HOOK | as HOOK | createContainer hooks: after the mounts and /proc, before ROOT_READONLY and the pivot |
//! | HOOK | path, timeout s (0: none), argc, argv..., env... | startContainer hooks: after START_FIFO, inside, before exec |
//! | PIVOT_SYNC | - | before the CREATE_HOOKs: init writes `pivot\n` on the ready fd (a socket then) and waits for `go\n` while the runtime runs prestart and createRuntime hooks (src/pivotsync.rs) |
//! | STATE | head, middle, tail | every hook's stdin: head + status + middle + init's host pid + tail (the state JSON) |

/// The first bytes of the stream.
pub const MAGIC: &[u8; 8] = b"HSSPEC1\0";
/// A number field that was not given.
pub const NONE: u64 = u64::MAX;

pub const END: u8 = 0;
pub const MOUNT: u8 = 1;
pub const MASK: u8 = 2;
pub const READONLY: u8 = 3;
pub const SYSCTL: u8 = 4;
pub const RLIMIT: u8 = 5;
pub const CAPS: u8 = 6;
pub const USER: u8 = 7;
pub const CWD: u8 = 8;
pub const NO_NEW_PRIVS: u8 = 9;
pub const START_FIFO: u8 = 10;
pub const ROOT_READONLY: u8 = 11;
pub const ROOT_PROPAGATION: u8 = 12;
pub const DOMAINNAME: u8 = 13;
pub const DEVICE: u8 = 14;
pub const SYMLINK: u8 = 15;
pub const HOOK: u8 = 16;
pub const OOM_SCORE_ADJ: u8 = 17;
pub const NO_PIVOT: u8 = 18;
pub const CONSOLE: u8 = 19;
pub const CREATE_HOOK: u8 = 20;
pub const STATE: u8 = 21;
pub const PIVOT_SYNC: u8 = 22;

/// One field of a record, to write.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Bytes(&'a [u8]),
    U64(u64),
}

/// Encodes records; `out` receives the bytes (host-setup appends them to a Vec).
pub struct Writer<F: FnMut(&[u8])> {
    out: F,
}

impl<F: FnMut(&[u8])> Writer<F> {
    pub fn new(mut out: F) -> Self {
        out(MAGIC);
        Writer { out }
    }

    pub fn record(&mut self, tag: u8, fields: &[Field]) {
        (self.out)(&[tag]);
        (self.out)(&(fields.len() as u16).to_le_bytes());
        for f in fields {
            match f {
                Field::Bytes(b) => {
                    (self.out)(&(b.len() as u32).to_le_bytes());
                    (self.out)(b);
                }
                Field::U64(n) => {
                    (self.out)(&8u32.to_le_bytes());
                    (self.out)(&n.to_le_bytes());
                }
            }
        }
    }

    pub fn end(mut self) {
        self.record(END, &[]);
    }
}

/// Decodes records from the whole stream in memory.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    done: bool,
}

/// One record: its tag and its fields, read in order.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub tag: u8,
    count: u16,
    rest: &'a [u8],
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if b.len() < n {
        return Err("truncated");
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

impl<'a> Reader<'a> {
    pub fn new(mut stream: &'a [u8]) -> Result<Self, &'static str> {
        if take(&mut stream, MAGIC.len())? != MAGIC {
            return Err("not a spec stream (bad magic)");
        }
        Ok(Reader { rest: stream, done: false })
    }

    /// The next record; `Ok(None)` after END.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, &'static str> {
        if self.done {
            return Ok(None);
        }
        let tag = take(&mut self.rest, 1)?[0];
        let c = take(&mut self.rest, 2)?;
        let count = u16::from_le_bytes([c[0], c[1]]);
        let start = self.rest;
        // Skip the fields now, so a record's reader cannot desynchronise the stream.
        for _ in 0..count {
            let l = take(&mut self.rest, 4)?;
            take(&mut self.rest, u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)?;
        }
        if tag == END {
            self.done = true;
            return Ok(None);
        }
        let used = start.len() - self.rest.len();
        Ok(Some(Record { tag, count, rest: &start[..used] }))
    }
}

impl<'a> Record<'a> {
    /// How many fields are left to read.
    pub fn remaining(&self) -> usize {
        self.count as usize
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        if self.count == 0 {
            return Err("missing field");
        }
        self.count -= 1;
        let l = take(&mut self.rest, 4)?;
        take(&mut self.rest, u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
    }

    pub fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.bytes()?;
        let a: [u8; 8] = b.try_into().map_err(|_| "a number field is not 8 bytes")?;
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let mut w = Writer::new(|b: &[u8]| buf.extend_from_slice(b));
        w.record(MOUNT, &[Field::Bytes(b"proc"), Field::Bytes(b"/proc"), Field::U64(7)]);
        w.record(NO_NEW_PRIVS, &[]);
        w.end();
        let mut r = Reader::new(&buf).unwrap();
        let mut m = r.next_record().unwrap().unwrap();
        assert_eq!((m.tag, m.remaining()), (MOUNT, 3));
        assert_eq!(m.bytes().unwrap(), b"proc");
        // A record read only in part does not disturb the next one.
        let n = r.next_record().unwrap().unwrap();
        assert_eq!((n.tag, n.remaining()), (NO_NEW_PRIVS, 0));
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(m.bytes().unwrap(), b"/proc");
        assert_eq!(m.u64().unwrap(), 7);
        assert_eq!(m.bytes(), Err("missing field"));
    }

    #[test]
    fn refuses_garbage() {
        assert!(Reader::new(b"nope").is_err());
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&[MOUNT, 1, 0, 200, 0, 0, 0, b'x']);
        assert_eq!(Reader::new(&buf).unwrap().next_record().unwrap_err(), "truncated");
    }
}
