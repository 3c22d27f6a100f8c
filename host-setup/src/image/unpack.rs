//! A layer blob (a tar: plain, gzip or zstd, told apart by its first bytes) ->
//! a layer dir overlayfs can use as a lower dir. Untrusted input: every entry is
//! checked before anything is made, the files are written by layerfs.rs (never
//! through a symlink, never outside the dir), and the whole decompressed stream
//! is hashed and must match the image config's diff ID. Any refusal fails the
//! whole layer; the caller (store.rs) removes the partial dir.
//!
//! | in the tar | in the layer dir |
//! |---|---|
//! | `.wh.NAME` | NAME as a 0/0 character device (overlay's whiteout) |
//! | `.wh..wh..opq` in DIR | DIR gets `trusted.overlay.opaque=y` and `user.overlay.opaque=y` |
//! | other `.wh..wh.*` (aufs's own) | skipped |
//! | character and block devices | skipped with a warning, as Podman does in a user namespace |
//! | xattrs `trusted.overlay.*`, `user.overlay.*` | refused: they would steer overlayfs |
//! | files, dirs, symlinks, hard links, fifos | made with their owner, mode (setuid too), mtime, xattrs |
//!
//! Refused: an absolute name, a `..` component, a path through a symlink, a
//! hard link to anything not already in this layer, a decompressed stream or
//! file contents over the size limit, a digest other than the diff ID.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::digest::{Digest, Hashing};
use super::layerfs::{LayerFs, Meta, R};
use crate::error::{Result, SysContext};

/// What a blob's first bytes say it is.
#[derive(Debug, PartialEq)]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
}

pub fn sniff(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::Plain,
    }
}

/// A reader of the plain tar inside `r`, whatever its compression.
pub fn decompress<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 << 10, r);
    let kind = sniff(br.fill_buf()?);
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        Compression::Plain => Box::new(br),
    })
}

/// An io error while reading the archive, in words; the size limit named as such.
pub fn read_error(e: &io::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text = format!("{text}: {s}");
        src = s.source();
    }
    if text.contains(super::digest::OVER) {
        return "the layer unpacks to more than the size limit (a decompression bomb?)".into();
    }
    format!("reading the archive: {}", crate::error::io_text(e))
}

/// Unpacks the layer blob at `blob` into `dest` (which must not exist), checking
/// that its plain tar hashes to `diff_id`. `limit`: the most bytes the plain tar,
/// and the files in it, may come to.
pub fn unpack(blob: &Path, dest: &Path, diff_id: &Digest, limit: u64) -> Result<()> {
    let what = format!("layer {diff_id}");
    let f = File::open(blob).sys(|| format!("open {}", blob.display()))?;
    let plain = decompress(f).sys(|| format!("read {}", blob.display()))?;
    let mut fs = LayerFs::create(dest).map_err(|m| crate::failed!("{what}: {m}"))?;
    let mut ar = tar::Archive::new(Hashing::new(plain, limit));
    let mut budget = limit;
    for e in ar.entries().map_err(|e| crate::failed!("{what}: {}", read_error(&e)))? {
        let mut e = e.map_err(|e| crate::failed!("{what}: {}; refused", read_error(&e)))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        apply(&mut fs, &mut e, &mut budget).map_err(|m| crate::failed!("{what}: entry {name:?}: {m}; refused"))?;
    }
    fs.finish().map_err(|m| crate::failed!("{what}: {m}"))?;
    let mut h = ar.into_inner();
    h.drain().map_err(|e| crate::failed!("{what}: {}; refused", read_error(&e)))?;
    let (got, _) = h.finish();
    if &got != diff_id {
        return Err(crate::failed!(
            "{what}: the layer's tar has digest {got}, not the diff ID its image config states; refused"
        ));
    }
    Ok(())
}

/// A name from the archive as components below the layer's root: `./` and
/// empty components dropped, absolute names and `..` refused.
pub fn clean(p: &Path) -> R<Vec<OsString>> {
    let mut out = vec![];
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path".into()),
            Component::ParentDir => return Err("a path with '..'".into()),
        }
    }
    Ok(out)
}

fn meta<T: Read>(e: &mut tar::Entry<T>) -> R<Meta> {
    let h = e.header();
    let bad = |f: &str, err: io::Error| format!("its {f} field: {err}");
    let mut m = Meta {
        mode: h.mode().map_err(|err| bad("mode", err))?,
        uid: h.uid().map_err(|err| bad("uid", err))? as u32,
        gid: h.gid().map_err(|err| bad("gid", err))? as u32,
        mtime: TimeSpec::new(h.mtime().map_err(|err| bad("mtime", err))? as i64, 0),
        xattrs: vec![],
    };
    if let Some(exts) = e.pax_extensions().map_err(|err| bad("pax header", err))? {
        for x in exts {
            let x = x.map_err(|err| bad("pax header", err))?;
            let key = x.key().map_err(|_| "a pax key that is not UTF-8".to_string())?;
            let num = || x.value().ok().and_then(|v| v.parse::<u32>().ok()).ok_or(format!("pax {key}: not a number"));
            match key {
                "uid" => m.uid = num()?,
                "gid" => m.gid = num()?,
                "mtime" => m.mtime = pax_time(x.value().unwrap_or(""))?,
                k if k.starts_with("SCHILY.xattr.") => {
                    let name = &k["SCHILY.xattr.".len()..];
                    if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                        return Err(format!("the xattr {name} would steer overlayfs"));
                    }
                    m.xattrs.push((name.into(), x.value_bytes().to_vec()));
                }
                k if k.starts_with("LIBARCHIVE.xattr.") => {
                    log::warn!("pax {k}: libarchive's xattr form is not read; skipped")
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

/// A pax mtime: seconds with an optional fraction, "1700000000.123456789".
fn pax_time(v: &str) -> R<TimeSpec> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().map_err(|_| format!("pax mtime {v:?}: not a time"))?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse::<i64>().map_err(|_| format!("pax mtime {v:?}: not a time"))?
    };
    Ok(TimeSpec::new(secs, if secs < 0 && nanos > 0 { -nanos } else { nanos }))
}

fn apply<T: Read>(fs: &mut LayerFs, e: &mut tar::Entry<T>, budget: &mut u64) -> R<()> {
    let kind = e.header().entry_type();
    if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
        return Ok(());
    }
    let path = e.path().map_err(|err| format!("its name: {err}"))?.into_owned();
    let comps = clean(&path)?;
    let m = meta(e)?;
    if let Some(last) = comps.last().and_then(|l| l.to_str()) {
        if let Some(rest) = last.strip_prefix(".wh.") {
            let dir = &comps[..comps.len() - 1];
            return match rest {
                ".wh..opq" => fs.opaque(dir),
                r if r.starts_with(".wh.") => Ok(()), // aufs's own (.wh..wh.plnk, .wh..wh.aufs)
                "" | "." => Err("a whiteout of nothing".into()),
                r => fs.whiteout(&[dir, &[OsString::from(r)]].concat()),
            };
        }
    }
    match kind {
        EntryType::Directory => fs.mkdir(&comps, &m),
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => fs.file(&comps, &m, e, budget),
        EntryType::Symlink => {
            let target =
                e.link_name().map_err(|err| format!("its link name: {err}"))?.ok_or("a symlink without a target")?;
            fs.symlink(&comps, &target, &m)
        }
        EntryType::Link => {
            let target =
                e.link_name().map_err(|err| format!("its link name: {err}"))?.ok_or("a hard link without a target")?;
            let target = clean(&target).map_err(|m| format!("hard link to {}: {m}", target.display()))?;
            fs.hardlink(&comps, &target)
        }
        EntryType::Fifo => fs.fifo(&comps, &m),
        EntryType::Char | EntryType::Block => {
            // Podman in a user namespace cannot mknod and skips them too; /dev comes
            // from the container's own tmpfs, never from an image.
            log::warn!("{}: a device node in the image; skipped", path.display());
            Ok(())
        }
        other => {
            log::warn!("{}: tar entry type {other:?} is not supported; skipped", path.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_or_refused() {
        let c = |s: &str| clean(Path::new(s));
        assert_eq!(c("./a/b/").unwrap(), vec![OsString::from("a"), "b".into()]);
        assert_eq!(c("./").unwrap(), Vec::<OsString>::new());
        assert!(c("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(c("a/../../x").unwrap_err().contains(".."));
        assert!(c("..").is_err());
    }

    #[test]
    fn compression_by_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(sniff(b"bin/"), Compression::Plain);
        assert_eq!(sniff(&[]), Compression::Plain);
    }

    #[test]
    fn pax_times() {
        assert_eq!(pax_time("1700000000.5").unwrap(), TimeSpec::new(1700000000, 500_000_000));
        assert_eq!(pax_time("12").unwrap(), TimeSpec::new(12, 0));
        assert!(pax_time("x").is_err());
    }
}
