//! `--spec-fd N`: init runs the records of src/spec.rs (an OCI bundle's
//! in-container part) at their places in its own order.
//!
//! The whole stream is mapped and checked first (every record decoded, every
//! tag known, every field where it belongs), before anything is mounted: a
//! malformed stream is refused, never half applied. Then, in runc's and
//! youki's order (anchors.md "Init order"):
//!
//! | phase | where | records (this order) |
//! |---|---|---|
//! | load | before any setup step | the START_FIFO path opened O_PATH (a host path) |
//! | root | rootfs::enter, before the pivot | ROOT_PROPAGATION on "/", MOUNT..., DEVICE..., SYMLINK..., ROOT_READONLY, NO_PIVOT |
//! | after the pivot | after the hostname | DOMAINNAME, SYSCTL..., READONLY..., MASK... |
//! | process | before CMD | RLIMIT..., OOM_SCORE_ADJ, CAPS' bounding set, USER, CAPS' other sets, NO_NEW_PRIVS, CWD |
//! | start | last before seccomp | START_FIFO (the wait for `start`), HOOK... |
//!
//! SYSCTL comes before READONLY and MASK, as in runc's standard_init: the OCI
//! defaults make /proc/sys read-only, and a sysctl written after that would
//! fail EROFS. The kernel's other orders are told where they bite (src/mounts.rs,
//! src/user.rs).
//!
//! With START_FIFO, init writes `ok` on the ready fd and closes it right
//! before it blocks: `hsrun create` returns then; what fails after `start`
//! (a hook, the exec) is on stderr only.

use core::ffi::CStr;

use crate::caps::Sets;
use crate::msg::{self, Error};
use crate::spec::{self, Reader, Record, NONE};
use crate::sys::{self, files, Errno, MS_PRIVATE, MS_REC, O_CLOEXEC, O_PATH};

pub use crate::mounts::PROPAGATION;

/// The longest stream init maps (a spec of thousands of mounts is far below).
const STREAM_MAX: u64 = 16 << 20;
/// The longest path or value in a record (PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// The most additional gids of USER (the kernel's NGROUPS_MAX is 65536).
pub const GIDS_MAX: usize = 256;

/// One record, decoded.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    RootPropagation(usize),
    Mount(Mount<'a>),
    Device(Device<'a>),
    Symlink { target: &'a [u8], link: &'a [u8] },
    RootReadonly,
    NoPivot,
    Mask(&'a [u8]),
    Readonly(&'a [u8]),
    Sysctl { key: &'a [u8], value: &'a [u8] },
    Domainname(&'a [u8]),
    Rlimit { resource: u32, soft: u64, hard: u64 },
    OomScoreAdj(i64),
    User(User),
    Caps(Sets),
    NoNewPrivs,
    Cwd(&'a [u8]),
    StartFifo(&'a [u8]),
    Hook(Hook<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    /// Empty: none (NULL to mount(2)).
    pub source: &'a [u8],
    pub target: &'a [u8],
    pub fstype: &'a [u8],
    pub flags: u64,
    pub data: &'a [u8],
    /// NONE or 0: none.
    pub propagation: u64,
    /// NONE: none; else a detached mount (open_tree) to attach.
    pub src_fd: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device<'a> {
    pub path: &'a [u8],
    /// b'c', b'b' or b'p'.
    pub kind: u8,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    /// NONE: leave the owner.
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub umask: u32,
    pub gids: [u32; GIDS_MAX],
    pub ngids: usize,
}

#[derive(Debug, Clone)]
pub struct Hook<'a> {
    pub path: &'a [u8],
    /// Seconds; 0: no timeout.
    pub timeout: u64,
    /// argv, then the environment, one field each.
    pub argc: usize,
    pub rest: Record<'a>,
}

fn id(n: u64, what: &'static str) -> Result<u32, &'static str> {
    u32::try_from(n).map_err(|_| what)
}

fn text<'a>(r: &mut Record<'a>) -> Result<&'a [u8], &'static str> {
    let b = r.bytes()?;
    if b.contains(&0) || b.len() >= PATH_MAX {
        return Err("a text field holds a NUL or is longer than PATH_MAX");
    }
    Ok(b)
}

/// Decodes one record; an unknown tag, a missing or an extra field is an error.
pub fn decode(mut r: Record<'_>) -> Result<Item<'_>, &'static str> {
    let item = match r.tag {
        spec::ROOT_PROPAGATION => Item::RootPropagation(r.u64()? as usize),
        spec::MOUNT => Item::Mount(Mount {
            source: text(&mut r)?,
            target: text(&mut r)?,
            fstype: text(&mut r)?,
            flags: r.u64()?,
            data: text(&mut r)?,
            propagation: r.u64()?,
            src_fd: r.u64()?,
        }),
        spec::DEVICE => {
            let path = text(&mut r)?;
            let kind = match r.bytes()? {
                [k] => *k,
                b => b.try_into().map(u64::from_le_bytes).map_err(|_| "a device kind is one byte")? as u8,
            };
            if !matches!(kind, b'c' | b'b' | b'p') {
                return Err("a device kind is c, b or p");
            }
            let (major, minor) = (r.u64()?, r.u64()?);
            let mode = id(r.u64()?, "a device mode is a u32")? & 0o7777;
            Item::Device(Device { path, kind, major, minor, mode, uid: r.u64()?, gid: r.u64()? })
        }
        spec::SYMLINK => Item::Symlink { target: text(&mut r)?, link: text(&mut r)? },
        spec::ROOT_READONLY => Item::RootReadonly,
        spec::NO_PIVOT => Item::NoPivot,
        spec::MASK => Item::Mask(text(&mut r)?),
        spec::READONLY => Item::Readonly(text(&mut r)?),
        spec::SYSCTL => Item::Sysctl { key: text(&mut r)?, value: r.bytes()? },
        spec::DOMAINNAME => Item::Domainname(r.bytes()?),
        spec::RLIMIT => Item::Rlimit { resource: id(r.u64()?, "a resource is a u32")?, soft: r.u64()?, hard: r.u64()? },
        spec::OOM_SCORE_ADJ => Item::OomScoreAdj(r.u64()? as i64),
        spec::USER => {
            let uid = id(r.u64()?, "a uid is a u32")?;
            let gid = id(r.u64()?, "a gid is a u32")?;
            let umask = match r.u64()? {
                NONE => 0o022,
                m => id(m, "a umask is a u32")? & 0o777,
            };
            let mut u = User { uid, gid, umask, gids: [0; GIDS_MAX], ngids: r.remaining() };
            if u.ngids > GIDS_MAX {
                return Err("more than 256 additional gids");
            }
            for g in u.gids.iter_mut().take(u.ngids) {
                *g = id(r.u64()?, "a gid is a u32")?;
            }
            Item::User(u)
        }
        spec::CAPS => Item::Caps(Sets {
            bounding: r.u64()?,
            effective: r.u64()?,
            permitted: r.u64()?,
            inheritable: r.u64()?,
            ambient: r.u64()?,
        }),
        spec::NO_NEW_PRIVS => Item::NoNewPrivs,
        spec::CWD => Item::Cwd(text(&mut r)?),
        spec::START_FIFO => Item::StartFifo(text(&mut r)?),
        spec::HOOK => {
            let path = text(&mut r)?;
            let timeout = r.u64()?;
            let argc = r.u64()? as usize;
            if argc == 0 || argc > r.remaining() {
                return Err("a hook's argc is 0 or more than its fields");
            }
            let mut check = r.clone();
            while check.remaining() > 0 {
                text(&mut check)?;
            }
            return Ok(Item::Hook(Hook { path, timeout, argc, rest: r }));
        }
        _ => return Err("unknown record tag"),
    };
    if r.remaining() != 0 {
        return Err("more fields than the record has");
    }
    Ok(item)
}

/// The record's name for messages.
pub fn tag_name(tag: u8) -> &'static [u8] {
    const NAMES: [&str; 19] = [
        "END",
        "MOUNT",
        "MASK",
        "READONLY",
        "SYSCTL",
        "RLIMIT",
        "CAPS",
        "USER",
        "CWD",
        "NO_NEW_PRIVS",
        "START_FIFO",
        "ROOT_READONLY",
        "ROOT_PROPAGATION",
        "DOMAINNAME",
        "DEVICE",
        "SYMLINK",
        "HOOK",
        "OOM_SCORE_ADJ",
        "NO_PIVOT",
    ];
    NAMES.get(tag as usize).map_or(b"an unknown record", |n| n.as_bytes())
}

/// The mapped, checked stream and what init looked up in it at load.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    stream: &'static [u8],
    /// START_FIFO's host path, open O_PATH (-1: none).
    pub fifo: i32,
    /// "/" first gets this (ROOT_PROPAGATION, or MS_PRIVATE|MS_REC).
    pub propagation: usize,
    /// A MOUNT on /proc: rootfs::enter does not mount its own.
    pub mounts_proc: bool,
    pub no_pivot: bool,
    pub root_readonly: bool,
    /// Records of the root phase (they need --rootfs).
    pub root_records: bool,
}

fn bad(reason: &'static str, tag: u8) -> Error<'static> {
    Error::new(Errno::EINVAL, &[b"--spec-fd: ", tag_name(tag), b": ", reason.as_bytes()])
        .hint("host-setup and init disagree on the record format (src/spec.rs)")
}

/// Checks a whole stream; returns what `Spec` keeps of it.
pub fn check(stream: &'static [u8]) -> Result<Spec, Error<'static>> {
    let mut r = Reader::new(stream).map_err(|e| bad(e, 0))?;
    let mut s = Spec {
        stream,
        fifo: -1,
        propagation: MS_PRIVATE | MS_REC,
        mounts_proc: false,
        no_pivot: false,
        root_readonly: false,
        root_records: false,
    };
    loop {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => return Ok(s),
            Err(e) => return Err(bad(e, 0).hint("a truncated or corrupt stream (no END record?)")),
        };
        let tag = rec.tag;
        s.root_records |= matches!(
            tag,
            spec::MOUNT | spec::DEVICE | spec::SYMLINK | spec::ROOT_READONLY | spec::NO_PIVOT | spec::ROOT_PROPAGATION
        );
        match decode(rec).map_err(|e| bad(e, tag))? {
            Item::RootPropagation(p) if p & !(PROPAGATION | MS_REC) != 0 || p & PROPAGATION == 0 => {
                return Err(bad("not a propagation (MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE)", tag))
            }
            Item::RootPropagation(p) => s.propagation = p,
            Item::Mount(m) if m.target == b"/proc" => s.mounts_proc = true,
            Item::NoPivot => s.no_pivot = true,
            Item::RootReadonly => s.root_readonly = true,
            _ => {}
        }
    }
}

impl Spec {
    /// Maps the stream on `fd` (host-setup's sealed memfd), checks it, closes
    /// `fd`, and opens START_FIFO's host path O_PATH (before the pivot hides it).
    pub fn load(fd: i32) -> Result<Spec, Error<'static>> {
        let what: &[&[u8]] = &[b"mmap(--spec-fd)"];
        let mapped = match files::size(fd) {
            Ok(0) => Err(Error::new(Errno::EINVAL, what).hint("an empty spec stream")),
            Ok(n) if n > STREAM_MAX => Err(Error::new(Errno::E2BIG, what).hint("a spec stream over 16 MiB")),
            Ok(n) => sys::spec::map_fd(fd, n as usize).map_err(|e| Error::new(e, what)),
            Err(e) => Err(Error::new(e, &[b"lseek(--spec-fd)"]).hint("--spec-fd must be a file or memfd")),
        };
        let _ = sys::close(fd);
        let mut s = check(mapped?)?;
        if let Some(path) = s.items().find_map(|i| if let Item::StartFifo(p) = i { Some(p) } else { None }) {
            let mut buf = [0u8; PATH_MAX];
            let c = cstr(path, &mut buf);
            msg::debug(&[b"open the start fifo ", path, b" (O_PATH)"]);
            s.fifo = sys::open(c, O_PATH | O_CLOEXEC).map_err(|e| Error::new(e, &[b"open(", path, b", O_PATH)"]))?;
        }
        Ok(s)
    }

    /// The records, decoded (the stream was checked by `load`).
    pub fn items(&self) -> impl Iterator<Item = Item<'static>> {
        let mut r = Reader::new(self.stream).ok();
        core::iter::from_fn(move || r.as_mut()?.next_record().ok()?.map(decode)?.ok())
    }

    /// Whether the stream holds a record with `tag`.
    pub fn has(&self, tag: u8) -> bool {
        let mut r = Reader::new(self.stream).ok();
        core::iter::from_fn(move || r.as_mut()?.next_record().ok()?).any(|rec| rec.tag == tag)
    }

    /// Closes every fd above 2 but `ready` and the start fifo (--restrict's
    /// step; exec::close_fds_except keeps only one).
    /// From `first`: fds below it are the process's (--preserve-fds).
    pub fn close_fds_except(&self, first: i32, ready: i32) {
        let mut keep = [ready, self.fifo];
        keep.sort_unstable();
        let mut from = first;
        for k in keep.into_iter().filter(|&k| k >= first) {
            if k > from {
                let _ = sys::close_range(from as u32, k as u32 - 1);
            }
            from = from.max(k + 1);
        }
        let _ = sys::close_range(from as u32, u32::MAX);
    }

    /// After the pivot and the hostname: DOMAINNAME, SYSCTL, READONLY, MASK.
    pub fn after_pivot(&self) -> Result<(), Error<'static>> {
        for item in self.items() {
            if let Item::Domainname(name) = item {
                msg::debug(&[b"setdomainname ", name]);
                sys::spec::setdomainname(name).map_err(|e| Error::new(e, &[b"setdomainname(", name, b")"]))?;
            }
        }
        for item in self.items() {
            if let Item::Sysctl { key, value } = item {
                sysctl(key, value)?;
            }
        }
        for item in self.items() {
            if let Item::Readonly(p) = item {
                crate::mounts::readonly(p)?;
            }
        }
        for item in self.items() {
            if let Item::Mask(p) = item {
                crate::mounts::mask(p)?;
            }
        }
        Ok(())
    }
}

/// `bytes` + NUL in `buf` (the stream's text fields were checked: no NUL,
/// shorter than PATH_MAX, so this cannot fail for them).
pub fn cstr<'b>(bytes: &[u8], buf: &'b mut [u8; PATH_MAX]) -> &'b CStr {
    crate::userns::nul_terminated(bytes, buf).unwrap_or(c"")
}

/// /proc/sys/KEY with dots turned into slashes (`net.ipv4.ip_forward`), or
/// None for a key that could leave /proc/sys ("..", a slash, empty parts).
pub fn sysctl_path<'b>(key: &[u8], buf: &'b mut [u8; PATH_MAX]) -> Option<&'b CStr> {
    const PREFIX: &[u8] = b"/proc/sys/";
    if key.is_empty() || key.contains(&b'/') || key.split(|&b| b == b'.').any(|p| p.is_empty()) {
        return None;
    }
    let mut path = [0u8; PATH_MAX];
    let len = PREFIX.len() + key.len();
    path.get_mut(..len)?[..PREFIX.len()].copy_from_slice(PREFIX);
    for (d, &b) in path[PREFIX.len()..len].iter_mut().zip(key) {
        *d = if b == b'.' { b'/' } else { b };
    }
    crate::userns::nul_terminated(&path[..len], buf)
}

fn sysctl(key: &'static [u8], value: &'static [u8]) -> Result<(), Error<'static>> {
    let mut buf = [0u8; PATH_MAX];
    let what: [&[u8]; 5] = [b"write(/proc/sys/", key, b", ", value, b")"];
    let path = sysctl_path(key, &mut buf).ok_or(Error::new(Errno::EINVAL, &what).hint("not a sysctl name"))?;
    msg::debug(&[b"sysctl ", key, b"=", value]);
    write_file(path, value).map_err(|e| {
        let err = Error::new(e, &what);
        match e {
            Errno::ENOENT => err.hint("no such sysctl in this kernel"),
            Errno::EROFS | Errno::EACCES => err.hint("not namespaced: only the host may set it"),
            _ => err,
        }
    })
}

/// Writes `value` to the existing file `path` (a /proc file: one write).
pub fn write_file(path: &CStr, value: &[u8]) -> sys::Result<()> {
    let fd = sys::open(path, sys::O_WRONLY | O_CLOEXEC)?;
    let r = sys::write_all(fd, value);
    let _ = sys::close(fd);
    r
}

#[cfg(test)]
#[path = "specrun_tests.rs"]
mod tests;
