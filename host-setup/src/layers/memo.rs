//! The warm cache check: instead of resolving a layer again (every input opened,
//! its ELF headers read, every search-path candidate looked up: ~300 system
//! calls a layer), a memo of the last resolution is proved still valid with one
//! statx per thing it depended on, and names the layer's directory.
//!
//! The memo (`<state>/layer-memos/<layer>`, written after a build or a full cache
//! check) lists what the resolution looked at:
//! - `f`: every host file it found (inputs, and candidates it skipped): dev, inode,
//!   mode, size, mtime as the resolution saw them. A package upgrade renames a new
//!   file in (another inode); an in-place write changes mtime (and usually size);
//!   a chmod changes mode. Not ctime: a hard link into the layer changes it.
//! - `d`: every directory a name was looked up in (search path and library dirs,
//!   misses included): dev, inode, size, mtime. A name added, removed or renamed
//!   in a directory changes its mtime: a new `/usr/local/lib/libc.so.6` is seen.
//! - `i`: every other directory on the way (`/`, `/usr`, `/tmp`...): dev and inode
//!   only (following symlinks), so an unrelated file made in /tmp does not count,
//!   while a directory or symlink replaced on the way (another inode) does.
//! - `x`: a path that did not resolve, with its errno; it must still fail so.
//!
//! The key covers the manifest, the search path, the own-binaries dir, the
//! layers dir and ld.so.conf's directories (read again each time: a few calls).
//!
//! Racy timestamps (git's "racy clean" problem): the kernel stamps mtime from a
//! coarse clock (a jiffy; 1–2 s on some filesystems), so a change in the same tick
//! as what we saw leaves mtime equal. A memo is therefore only written when every
//! `f` and `d` mtime is at least [`RACY`] older than the moment the resolution
//! began; anything changed since then carries a later mtime. What a memo misses,
//! as the full check does: a file rewritten in place with its old mtime and size
//! put back (`touch -d`), and a directory tree renamed over a prefix of the
//! search path during the few milliseconds of a resolution.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::debug;

use super::build::{Builder, LayerPlan};
use super::cache::{in_layer, Fnv};
use super::closure::Resolved;
use super::ldso::LibSearch;
use super::manifest::Manifest;

const HEADER: &str = "host-setup layer memo 1";

/// How much older than the resolution an mtime must be to be trusted.
const RACY: Duration = Duration::from_secs(2);

/// What one path was when looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// A file found: (dev, ino, mode, size, mtime s, mtime ns).
    File(u64, u64, u32, u64, i64, i64),
    /// A directory looked in: (dev, ino, size, mtime s, mtime ns).
    Dir(u64, u64, u64, i64, i64),
    /// A directory passed through: (dev, ino).
    Ident(u64, u64),
    /// Did not resolve: the errno.
    Missing(i32),
}

/// What a resolution depended on, path by path, and when it began.
#[derive(Debug, Default)]
pub(super) struct Witnesses {
    pub seen: BTreeMap<PathBuf, Seen>,
    pub began: Option<SystemTime>,
    /// The memo's key, with ld.so.conf's directories as the resolution read them.
    pub key: u64,
}

fn file(m: &Metadata) -> Seen {
    Seen::File(m.dev(), m.ino(), m.mode(), m.size(), m.mtime(), m.mtime_nsec())
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// What `path` is now, seen as `like` was (the kind of witness).
fn look(path: &Path, like: &Seen) -> Seen {
    match (like, fs::metadata(path)) {
        (_, Err(e)) => Seen::Missing(errno(&e)),
        (Seen::File(..), Ok(m)) => file(&m),
        (Seen::Ident(..), Ok(m)) => Seen::Ident(m.dev(), m.ino()),
        (_, Ok(m)) => Seen::Dir(m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()),
    }
}

impl Witnesses {
    /// From a resolution's answers: `looked_in` the directories names were looked up
    /// in (as asked, and their real path where they had one), `found` the files.
    pub(super) fn collect(
        began: SystemTime,
        key: u64,
        looked_in: &[(PathBuf, Option<PathBuf>)],
        found: &[(PathBuf, Metadata)],
    ) -> Witnesses {
        let mut seen = BTreeMap::new();
        for (real, m) in found {
            seen.insert(real.clone(), file(m));
        }
        for (asked, real) in looked_in {
            match real {
                Some(r) => {
                    seen.entry(r.clone()).or_insert_with(|| look(r, &Seen::Dir(0, 0, 0, 0, 0)));
                }
                None => {
                    seen.entry(asked.clone()).or_insert_with(|| look(asked, &Seen::Missing(0)));
                }
            }
        }
        let mut on_the_way = Vec::new();
        for (asked, real) in looked_in {
            // The asked path itself too: `/lib64` may be a symlink to the real dir.
            on_the_way.extend(asked.ancestors().map(Path::to_path_buf));
            on_the_way.extend(real.iter().flat_map(|r| r.ancestors().skip(1).map(Path::to_path_buf)));
        }
        for p in on_the_way {
            if !p.as_os_str().is_empty() {
                seen.entry(p.clone()).or_insert_with(|| look(&p, &Seen::Ident(0, 0)));
            }
        }
        Witnesses { seen, began: Some(began), key }
    }

    /// Why a memo of these may not be written, if it may not.
    fn unfit(&self) -> Option<String> {
        let began = self.began?;
        for (p, s) in &self.seen {
            if !p.is_absolute() || p.as_os_str().as_encoded_bytes().contains(&b'\n') {
                return Some(format!("{}: not a plain absolute path", p.display()));
            }
            let (Seen::File(.., sec, nsec) | Seen::Dir(.., sec, nsec)) = s else { continue };
            let mtime = match u64::try_from(*sec) {
                Ok(s) => UNIX_EPOCH + Duration::new(s, *nsec as u32),
                Err(_) => continue,
            };
            if mtime + RACY > began {
                return Some(format!("{} changed less than {RACY:?} before the check", p.display()));
            }
        }
        None
    }
}

/// The memo's key: everything besides the witnesses that the resolution depended on.
pub(super) fn key(b: &Builder, m: &Manifest, search: &LibSearch) -> u64 {
    let mut h = Fnv::new();
    h.str(HEADER);
    h.str(&m.canonical_text());
    for p in b.search_path.iter().chain([&b.own_bin_dir, &b.layers_dir]).chain(&search.conf_dirs) {
        h.path(p);
    }
    h.num(search.conf_dirs.len() as u64);
    for p in &search.default_dirs {
        h.path(p);
    }
    h.0
}

fn memo_path(b: &Builder, name: &str) -> Option<PathBuf> {
    Some(b.layers_dir.parent()?.join("layer-memos").join(name))
}

fn line(tag: &str, p: &Path, nums: &[i128]) -> String {
    let mut out = tag.to_string();
    for n in nums {
        out += &format!(" {n}");
    }
    format!("{out} {}\n", p.display())
}

/// The memo's text for `plan` (a full plan, whose layer directory now exists).
pub(super) fn render(plan: &LayerPlan, w: &Witnesses) -> Option<String> {
    let key = w.key;
    let dir = plan.dir.file_name()?.to_str()?;
    let mut out = format!("{HEADER}\nkey {key:016x}\nlayer {dir}\n");
    let r = &plan.content;
    for f in &r.files {
        out += &line("F", &f.dest, &[i128::from(f.src.meta.len())]);
    }
    for d in &r.dirs {
        out += &line("D", d, &[]);
    }
    for (p, s) in &w.seen {
        out += &match *s {
            Seen::File(dev, ino, mode, size, s, ns) => {
                line("f", p, &[dev.into(), ino.into(), mode.into(), size.into(), s.into(), ns.into()])
            }
            Seen::Dir(dev, ino, size, s, ns) => {
                line("d", p, &[dev.into(), ino.into(), size.into(), s.into(), ns.into()])
            }
            Seen::Ident(dev, ino) => line("i", p, &[dev.into(), ino.into()]),
            Seen::Missing(e) => line("x", p, &[e.into()]),
        };
    }
    let lines = out.lines().count();
    out += &format!("end {lines}\n");
    Some(out)
}

/// Writes the memo of a full plan whose layer directory now exists. A memo is
/// only a shortcut: failing to write one is logged, not an error. Not fsync-ed: a
/// memo lost or cut short by a crash (it ends with its line count) is no memo.
pub(super) fn write(b: &Builder, plan: &LayerPlan) {
    let Some(w) = &plan.content.witnesses else { return };
    if let Some(why) = w.unfit() {
        debug!("layer {}: no memo written: {why}", plan.name);
        return;
    }
    let (Some(path), Some(text)) = (memo_path(b, &plan.name), render(plan, w)) else { return };
    let dir = path.parent().expect("a memo has a parent");
    let tmp = dir.join(format!(".{}.{}", plan.name, std::process::id()));
    let r = crate::state::perms::ensure_dir(dir, crate::state::perms::PRIVATE_DIR).map_err(|e| e.to_string()).and_then(
        |_| {
            let mut f = fs::File::create(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
            f.write_all(text.as_bytes()).map_err(|e| format!("write {}: {e}", tmp.display()))?;
            fs::rename(&tmp, &path).map_err(|e| format!("rename {}: {e}", tmp.display()))
        },
    );
    match r {
        Ok(()) => debug!("layer {}: memo written to {} ({} witnesses)", plan.name, path.display(), w.seen.len()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            debug!("layer {}: no memo written: {e}", plan.name);
        }
    }
}

/// What a memo says, parsed.
#[derive(Debug, PartialEq)]
pub(super) struct Memo {
    pub key: u64,
    pub layer: String,
    pub files: Vec<(PathBuf, u64)>,
    pub dirs: Vec<PathBuf>,
    pub seen: Vec<(PathBuf, Seen)>,
}

/// Parses a memo; None for anything not exactly as [`render`] writes it.
pub(super) fn parse(text: &str) -> Option<Memo> {
    let mut lines: Vec<&str> = text.strip_suffix('\n')?.split('\n').collect();
    let count: usize = lines.pop()?.strip_prefix("end ")?.parse().ok()?;
    if count != lines.len() || lines.first() != Some(&HEADER) {
        return None;
    }
    let key = u64::from_str_radix(lines.get(1)?.strip_prefix("key ")?, 16).ok()?;
    let layer = lines.get(2)?.strip_prefix("layer ")?.to_string();
    let mut memo = Memo { key, layer, files: vec![], dirs: vec![], seen: vec![] };
    for l in &lines[3..] {
        let (tag, rest) = l.split_once(' ')?;
        let want = match tag {
            "F" => 1,
            "D" => 0,
            "f" => 6,
            "d" => 5,
            "i" => 2,
            "x" => 1,
            _ => return None,
        };
        let mut parts = rest.splitn(want + 1, ' ');
        let nums: Vec<i64> = (0..want).map(|_| parts.next()?.parse().ok()).collect::<Option<_>>()?;
        let path = PathBuf::from(parts.next()?);
        let u = |i: usize| u64::try_from(nums[i]).ok();
        match tag {
            "F" => memo.files.push((path, u(0)?)),
            "D" => memo.dirs.push(path),
            "f" => {
                memo.seen.push((path, Seen::File(u(0)?, u(1)?, u32::try_from(nums[2]).ok()?, u(3)?, nums[4], nums[5])))
            }
            "d" => memo.seen.push((path, Seen::Dir(u(0)?, u(1)?, u(2)?, nums[3], nums[4]))),
            "i" => memo.seen.push((path, Seen::Ident(u(0)?, u(1)?))),
            _ => memo.seen.push((path, Seen::Missing(i32::try_from(nums[0]).ok()?))),
        }
    }
    Some(memo)
}

/// The plan of a cached layer, from its memo, if every witness is as recorded and
/// the layer directory is there, complete. None: make a full plan.
pub(super) fn check(b: &Builder, m: &Manifest) -> Option<LayerPlan> {
    let path = memo_path(b, &m.name)?;
    let memo = parse(&fs::read_to_string(&path).ok()?)?;
    let search = LibSearch::host().ok()?;
    if memo.key != key(b, m, &search) {
        debug!("layer {}: memo {} is for another manifest or host", m.name, path.display());
        return None;
    }
    if let Some((p, was)) = memo.seen.iter().find(|(p, was)| look(p, was) != *was) {
        debug!("layer {}: memo: {} changed (was {was:?}); a full check", m.name, p.display());
        return None;
    }
    let dir = b.layers_dir.join(&memo.layer);
    let complete =
        memo.files.iter().all(|(dest, len)| {
            fs::symlink_metadata(in_layer(&dir, dest)).is_ok_and(|m| m.is_file() && m.len() == *len)
        }) && memo.dirs.iter().all(|d| in_layer(&dir, d).is_dir());
    if !complete {
        debug!("layer {}: memo: {} missing or incomplete; a full check", m.name, dir.display());
        return None;
    }
    let fingerprint = u64::from_str_radix(memo.layer.rsplit_once('-')?.1, 16).ok()?;
    debug!("layer {}: memo proved ({} witnesses), cached at {}", m.name, memo.seen.len(), dir.display());
    Some(LayerPlan {
        name: m.name.clone(),
        dir,
        fingerprint,
        content: Resolved { dirs: memo.dirs, files: vec![], witnesses: None },
        cached: true,
        placements: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_what_render_writes_and_nothing_cut_short() {
        let text = format!(
            "{HEADER}\nkey 00000000000000ff\nlayer tools-0123456789abcdef\nF 100 /bin/ls\nD /proc\n\
             f 1 2 33261 100 1700000000 5 /usr/bin/ls\nd 1 3 4096 1700000000 0 /usr/bin\ni 1 4 /usr\n\
             x 2 /usr/local/lib/with space\nend 9\n"
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.key, 255);
        assert_eq!(m.layer, "tools-0123456789abcdef");
        assert_eq!(m.files, [(PathBuf::from("/bin/ls"), 100)]);
        assert_eq!(m.dirs, [PathBuf::from("/proc")]);
        assert_eq!(
            m.seen,
            [
                ("/usr/bin/ls".into(), Seen::File(1, 2, 0o100755, 100, 1_700_000_000, 5)),
                ("/usr/bin".into(), Seen::Dir(1, 3, 4096, 1_700_000_000, 0)),
                ("/usr".into(), Seen::Ident(1, 4)),
                ("/usr/local/lib/with space".into(), Seen::Missing(2)),
            ]
        );
        // Cut short anywhere (a crash before the rename's data reached the disk): no memo.
        for cut in 0..text.len() - 1 {
            assert_eq!(parse(&text[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse(&text.replace("end 9", "end 8")), None);
        // What `line` writes is what parse reads (no number: one space).
        assert_eq!(line("D", Path::new("/proc"), &[]), "D /proc\n");
        assert_eq!(line("i", Path::new("/a b"), &[1, -2]), "i 1 -2 /a b\n");
        assert_eq!(parse(&text.replace("\nd 1 3", "\nq 1 3")), None);
    }

    #[test]
    fn a_recent_mtime_is_not_trusted() {
        let now = SystemTime::now();
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut w = Witnesses { seen: BTreeMap::new(), began: Some(now), key: 0 };
        w.seen.insert("/usr/bin".into(), Seen::Dir(1, 2, 4096, secs(now) - 10, 0));
        w.seen.insert("/tmp".into(), Seen::Ident(1, 3));
        assert_eq!(w.unfit(), None);
        w.seen.insert("/usr/bin/ls".into(), Seen::File(1, 4, 0o100755, 9, secs(now), 0));
        assert!(w.unfit().unwrap().starts_with("/usr/bin/ls changed"));
        w.seen.insert("/usr/bin/ls".into(), Seen::File(1, 4, 0o100755, 9, secs(now) - 10, 0));
        w.seen.insert("/usr/lib".into(), Seen::Dir(1, 5, 4096, secs(now) - 1, 0));
        assert!(w.unfit().unwrap().starts_with("/usr/lib changed"));
    }
}
