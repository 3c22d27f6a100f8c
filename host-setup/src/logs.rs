//! A background container's log: what its main process writes on stdout and
//! stderr, as Docker's json-file driver keeps it (plain bytes, no JSON).
//!
//! The main process writes into a pipe; the supervisor (`init --wait-child`,
//! init/src/logpipe.rs) reads it and appends to `console.log` in the container's
//! directory, a file of root's (0600) that no process in the container holds or
//! can reach by a path. At `max_size` bytes it rotates: console.log becomes
//! console.log.1, .1 becomes .2, ... and the oldest beyond `max_files` files in all
//! goes (Docker's `max-size` / `max-file`). The limit is always on.
//! `host-setup logs NAME [-f] [--tail N]` reads them, oldest first.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SysContext};
use crate::spec::format_bytes;
use crate::state::{Journal, Paths, Role};

/// The log's file name in the container's directory; rotated ones add `.1`, `.2`...
pub const FILE: &str = "console.log";

/// The size limit and rotation of a container's log (`--log-max-size`, `--log-max-files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for Limits {
    /// 10 MiB x 3 files: at most 30 MiB of a container's output on the host.
    fn default() -> Limits {
        Limits { max_size: 10 << 20, max_files: 3 }
    }
}

impl Limits {
    /// From the options as typed (None: the default of each).
    pub fn parse(size: Option<&str>, files: Option<&str>) -> Result<Limits> {
        let d = Limits::default();
        let max_size = match size {
            // parse_memory's units; at least one page so a line fits.
            Some(s) => parse_size(s).filter(|&n| n >= 4096).ok_or_else(|| {
                crate::usage!(
                    "invalid --log-max-size {s:?}: give bytes or a number with K, M or G, at least 4K (e.g. 10M)"
                )
            })?,
            None => d.max_size,
        };
        let max_files =
            match files {
                Some(s) => s.parse().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                    crate::usage!("invalid --log-max-files {s:?}: give a number of files from 1 to 100")
                })?,
                None => d.max_files,
            };
        Ok(Limits { max_size, max_files })
    }

    pub fn describe(&self) -> String {
        format!("at most {} x {} files", format_bytes(self.max_size), self.max_files)
    }
}

/// `4096`, `64K`, `10M`, `1G` (binary units, as --memory's).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The log's files, oldest first (those that exist).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.strip_prefix(FILE)?.strip_prefix('.')?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut all: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(FILE);
    if current.exists() {
        all.push(current);
    }
    all
}

/// The log's size on disk, all files together.
pub fn total_size(dir: &Path) -> u64 {
    files(dir).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// The last `n` lines of `text` (a last line without a newline counts).
pub fn tail(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &text[text.len()..];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    match body.iter().enumerate().rev().filter(|(_, &c)| c == b'\n').nth(n - 1) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

/// `host-setup logs NAME [-f] [--tail N]`.
pub fn show(paths: &Paths, name: &str, follow: bool, tail_lines: Option<usize>) -> Result<()> {
    let dir = paths.container(name);
    if !dir.exists() {
        return Err(crate::precondition!("{name} is not up: no log"));
    }
    let mut text = vec![];
    for f in files(&dir) {
        // A file rotated away between listing and reading has moved on: skip it.
        if let Ok(mut file) = File::open(&f) {
            file.read_to_end(&mut text).sys(|| format!("read {}", f.display()))?;
        }
    }
    let out = match tail_lines {
        Some(n) => tail(&text, n),
        None => &text[..],
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out).and_then(|()| stdout.flush());
    drop(stdout);
    if follow {
        follow_from(paths, name, &dir.join(FILE))?;
    }
    Ok(())
}

/// Whether the container's init is gone (or was never there).
fn ended(paths: &Paths, name: &str) -> bool {
    match Journal::read(paths, name) {
        Ok(Some(j)) => j.exited().is_some() || !j.proc(Role::Init).is_some_and(|p| p.alive()),
        _ => true,
    }
}

/// Print what is appended to `path` from its current end on, following it to the
/// new file when it rotates, until the container has ended and all is read.
fn follow_from(paths: &Paths, name: &str, path: &Path) -> Result<()> {
    let open = |p: &Path| File::open(p).ok();
    let mut file = open(path);
    if let Some(f) = file.as_mut() {
        f.seek(SeekFrom::End(0)).sys(|| format!("lseek {}", path.display()))?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // The supervisor journals the exit only once the pipe is drained into the log.
        let done = ended(paths, name);
        if let Some(f) = file.as_mut() {
            copy_rest(f, &mut buf)?;
        }
        // Rotated: the file we hold is now console.log.1; read the new one from its start.
        let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let held = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| (m.dev(), m.ino()));
        if now.is_some() && now != held {
            // What was written to the old file between our read and the rename.
            if let Some(f) = file.as_mut() {
                copy_rest(f, &mut buf)?;
            }
            file = open(path);
            continue;
        }
        if done {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn copy_rest(f: &mut File, buf: &mut [u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    loop {
        let n = f.read(buf).sys(|| "read the log".into())?;
        if n == 0 {
            let _ = stdout.flush();
            return Ok(());
        }
        if stdout.write_all(&buf[..n]).is_err() {
            return Err(crate::failed!("write to stdout: it was closed"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\n", 0), b"");
    }

    #[test]
    fn limits_parse_and_default() {
        assert_eq!(Limits::parse(None, None).ok(), Some(Limits { max_size: 10 << 20, max_files: 3 }));
        assert_eq!(Limits::parse(Some("1M"), Some("2")).ok(), Some(Limits { max_size: 1 << 20, max_files: 2 }));
        assert_eq!(Limits::parse(Some("64k"), None).ok().map(|l| l.max_size), Some(65536));
        assert!(Limits::parse(Some("100"), None).is_err());
        assert!(Limits::parse(Some("1x"), None).is_err());
        assert!(Limits::parse(None, Some("0")).is_err());
    }
}
