//! The records of init/src/spec.rs decoded into what init does with them
//! (`Item`), each one checked whole: an unknown tag, a missing or an extra
//! field, a text with a NUL or longer than PATH_MAX is an error. Pure: the
//! unit tests (specrun_tests.rs) run it without root.

use crate::caps::Sets;
use crate::spec::{self, Record, NONE};
use crate::specrun::PATH_MAX;

/// The most additional gids of USER (the kernel's NGROUPS_MAX is 65536).
pub const GIDS_MAX: usize = 256;

/// One record, decoded.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    RootPropagation(usize),
    Mount(Mount<'a>),
    Device(Device<'a>),
    Symlink {
        target: &'a [u8],
        link: &'a [u8],
    },
    RootReadonly,
    NoPivot,
    PivotSync,
    Mask(&'a [u8]),
    Readonly(&'a [u8]),
    Sysctl {
        key: &'a [u8],
        value: &'a [u8],
    },
    Domainname(&'a [u8]),
    Rlimit {
        resource: u32,
        soft: u64,
        hard: u64,
    },
    OomScoreAdj(i64),
    User(User<'a>),
    Caps(Sets),
    NoNewPrivs,
    Cwd(&'a [u8]),
    StartFifo(&'a [u8]),
    /// HOOK and CREATE_HOOK.
    Hook(Hook<'a>),
    /// The state JSON around its status and pid (src/hooks.rs).
    State {
        head: &'a [u8],
        middle: &'a [u8],
        tail: &'a [u8],
    },
    /// The console socket's fd (src/console.rs).
    Console(i32),
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

#[derive(Debug, Clone)]
pub struct User<'a> {
    pub uid: u32,
    pub gid: u32,
    pub umask: u32,
    /// The additional gids, one u64 field each (checked: each a u32, at most GIDS_MAX).
    pub gids: Record<'a>,
}

impl User<'_> {
    /// The additional gids into `buf`; how many.
    pub fn gids(&self, buf: &mut [u32; GIDS_MAX]) -> usize {
        let mut r = self.gids.clone();
        let n = r.remaining();
        for g in buf.iter_mut().take(n) {
            *g = r.u64().unwrap_or(0) as u32;
        }
        n
    }
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
        spec::PIVOT_SYNC => Item::PivotSync,
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
            if r.remaining() > GIDS_MAX {
                return Err("more than 256 additional gids");
            }
            let gids = r.clone();
            while r.remaining() > 0 {
                id(r.u64()?, "a gid is a u32")?;
            }
            Item::User(User { uid, gid, umask, gids })
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
        spec::CONSOLE => Item::Console(i32::try_from(r.u64()?).map_err(|_| "a console fd is an int")?),
        spec::STATE => Item::State { head: r.bytes()?, middle: r.bytes()?, tail: r.bytes()? },
        spec::HOOK | spec::CREATE_HOOK => {
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
    const NAMES: [&str; 23] = [
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
        "CONSOLE",
        "CREATE_HOOK",
        "STATE",
        "PIVOT_SYNC",
    ];
    NAMES.get(tag as usize).map_or(b"an unknown record", |n| n.as_bytes())
}
