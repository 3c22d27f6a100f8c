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
//! | console | right after the pivot (src/console.rs) | CONSOLE |
//! | start | last before seccomp | START_FIFO (the wait for `start`), HOOK... |
//! | hooks | createContainer: in root, after the mounts; startContainer: in start | CREATE_HOOK..., HOOK...; STATE their stdin |
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

use crate::msg::{self, Error};
use crate::spec::{self, Reader};
use crate::sys::{self, files, Errno, MS_PRIVATE, MS_REC, O_CLOEXEC, O_PATH};

pub use crate::mounts::PROPAGATION;
pub use crate::records::{decode, tag_name, Device, Hook, Item, Mount, User, GIDS_MAX};

/// The longest stream init maps (a spec of thousands of mounts is far below).
const STREAM_MAX: u64 = 16 << 20;
/// The longest path or value in a record (PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// What a phase does with one record.
pub type Step<'f> = &'f mut dyn FnMut(Item<'static>) -> Result<(), Error<'static>>;

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
    /// PIVOT_SYNC: wait for the runtime's hooks before the createContainer ones.
    pub pivot_sync: bool,
    pub root_readonly: bool,
    /// Records of the root phase (they need --rootfs).
    pub root_records: bool,
    /// init's pid as the host sees it, for the hooks' state (with STATE only).
    pub host_pid: u32,
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
        pivot_sync: false,
        root_readonly: false,
        root_records: false,
        host_pid: 0,
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
            spec::MOUNT
                | spec::DEVICE
                | spec::SYMLINK
                | spec::ROOT_READONLY
                | spec::NO_PIVOT
                | spec::ROOT_PROPAGATION
                | spec::CREATE_HOOK
                | spec::PIVOT_SYNC
        );
        match decode(rec).map_err(|e| bad(e, tag))? {
            Item::RootPropagation(p) if p & !(PROPAGATION | MS_REC) != 0 || p & PROPAGATION == 0 => {
                return Err(bad("not a propagation (MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE)", tag))
            }
            Item::RootPropagation(p) => s.propagation = p,
            Item::Mount(m) if m.target == b"/proc" => s.mounts_proc = true,
            Item::NoPivot => s.no_pivot = true,
            Item::PivotSync => s.pivot_sync = true,
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
        if let Some(Item::StartFifo(path)) = s.find(spec::START_FIFO) {
            let mut buf = [0u8; PATH_MAX];
            let c = cstr(path, &mut buf);
            msg::debug(&[b"open the start fifo ", path, b" (O_PATH)"]);
            s.fifo = sys::open(c, O_PATH | O_CLOEXEC).map_err(|e| Error::new(e, &[b"open(", path, b", O_PATH)"]))?;
        }
        if s.find(spec::STATE).is_some() {
            s.host_pid = host_pid();
        }
        Ok(s)
    }

    /// The records, decoded (the stream was checked by `load`).
    #[cfg(test)]
    pub fn items(&self) -> impl Iterator<Item = Item<'static>> {
        let mut r = Reader::new(self.stream).ok();
        core::iter::from_fn(move || r.as_mut()?.next_record().ok()?.map(decode)?.ok())
    }

    /// Runs `f` on each record with `tag`, in the stream's order; stops at
    /// the first error. (One loop for every phase, behind a `dyn`: init's size.)
    pub fn each(&self, tag: u8, f: Step<'_>) -> Result<(), Error<'static>> {
        let Ok(mut r) = Reader::new(self.stream) else { return Ok(()) };
        while let Ok(Some(rec)) = r.next_record() {
            if rec.tag == tag {
                if let Ok(item) = decode(rec) {
                    f(item)?;
                }
            }
        }
        Ok(())
    }

    /// The last record with `tag` (a spec gives USER, CAPS, CWD once).
    pub fn find(&self, tag: u8) -> Option<Item<'static>> {
        let mut found = None;
        let _ = self.each(tag, &mut |i| {
            found = Some(i);
            Ok(())
        });
        found
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
        self.each(spec::DOMAINNAME, &mut |i| match i {
            Item::Domainname(name) => {
                msg::debug(&[b"setdomainname ", name]);
                sys::spec::setdomainname(name).map_err(|e| Error::new(e, &[b"setdomainname(", name, b")"]))
            }
            _ => Ok(()),
        })?;
        self.each(spec::SYSCTL, &mut |i| match i {
            Item::Sysctl { key, value } => sysctl(key, value),
            _ => Ok(()),
        })?;
        self.each(spec::READONLY, &mut |i| match i {
            Item::Readonly(p) => crate::mounts::readonly(p),
            _ => Ok(()),
        })?;
        self.each(spec::MASK, &mut |i| match i {
            Item::Mask(p) => crate::mounts::mask(p),
            _ => Ok(()),
        })
    }
}

/// init's pid in the host's pid namespace: /proc/self of the /proc init was
/// started with (the runtime's, until the pivot) names it; getpid() is 1 in
/// the container's own pid namespace.
fn host_pid() -> u32 {
    let mut b = [0u8; 20];
    let n = sys::spec::readlink(c"/proc/self", &mut b).unwrap_or(0);
    let pid = b[..n].iter().try_fold(0u32, |p, &d| d.is_ascii_digit().then(|| p * 10 + (d - b'0') as u32));
    pid.filter(|&p| p > 0).unwrap_or(sys::getpid() as u32)
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
