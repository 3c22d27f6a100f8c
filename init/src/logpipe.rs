//! The container's log, written by its supervisor (src/waiter.rs) from the pipe
//! that is the main process's stdout and stderr: appended to the file NAME in
//! the container's directory, at most MAX_SIZE bytes a file; then NAME becomes
//! NAME.1, NAME.1 becomes NAME.2 ... and what would be NAME.MAX_FILES goes, as
//! Docker's json-file `max-size`/`max-file` (host-setup's src/logs.rs reads them).
//!
//! The current file is the supervisor's own stdout and stderr (host-setup opened it
//! so, 0600): its own messages land in the log too, and a rotation moves them on.
//! A file ends at a newline when the pending bytes have one, so lines stay whole
//! unless one is longer than a file.

use core::ffi::CStr;

use crate::msg::fmt_u64;
use crate::sys::files::{self, O_APPEND, O_CREAT, O_NOFOLLOW};
use crate::sys::{self, Errno, O_CLOEXEC, O_WRONLY};

const O_EXCL: usize = 0o200;

pub struct Log<'a> {
    dir: i32,
    name: &'a [u8],
    size: u64,
    max_size: u64,
    max_files: u64,
}

/// How many of `data`'s bytes go into a file that has `size` of `max` bytes:
/// all if they fit; else up to the last newline that fits; else, in an empty
/// file, as many as fit; else 0 (rotate first).
pub fn chunk(size: u64, max: u64, data: &[u8]) -> usize {
    let room = max.saturating_sub(size).min(data.len() as u64) as usize;
    if room == data.len() {
        return room;
    }
    match data[..room].iter().rposition(|&c| c == b'\n') {
        Some(i) => i + 1,
        None if size == 0 => room,
        None => 0,
    }
}

/// `NAME` or `NAME.K` (K > 0), NUL-terminated, in `buf`; None if too long.
fn file_name<'b>(name: &[u8], k: u64, buf: &'b mut [u8; 256]) -> Option<&'b CStr> {
    let mut d = [0; 20];
    let suffix: &[u8] = if k == 0 { b"" } else { fmt_u64(k, &mut d) };
    let n = name.len() + if k == 0 { 0 } else { 1 + suffix.len() };
    if n + 1 > buf.len() {
        return None;
    }
    buf[..name.len()].copy_from_slice(name);
    if k > 0 {
        buf[name.len()] = b'.';
        buf[name.len() + 1..n].copy_from_slice(suffix);
    }
    buf[n] = 0;
    CStr::from_bytes_with_nul(&buf[..=n]).ok()
}

impl<'a> Log<'a> {
    /// The log whose current file is our fd 1; `dir` the directory it is in.
    pub fn new(dir: i32, name: &'a CStr, max_size: u64, max_files: u64) -> Log<'a> {
        let size = files::size(1).unwrap_or(0);
        Log { dir, name: name.to_bytes(), size, max_size: max_size.max(1), max_files: max_files.max(1) }
    }

    /// Append `data`, rotating as needed. An error (a full disk) loses the bytes
    /// it concerns, never the supervisor's other duties.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), Errno> {
        while !data.is_empty() {
            let n = chunk(self.size, self.max_size, data);
            if n == 0 {
                self.rotate()?;
                continue;
            }
            // Counted even if it fails: a full disk must not make us rotate never.
            self.size += n as u64;
            let written = sys::write_all(1, &data[..n]);
            data = &data[n..];
            written?;
        }
        Ok(())
    }

    /// NAME.K -> NAME.K+1 (the last overwritten), NAME -> NAME.1, a new NAME on fds 1 and 2.
    fn rotate(&mut self) -> Result<(), Errno> {
        let mut buf = [0; 256];
        let current = file_name(self.name, 0, &mut buf).ok_or(Errno::ENAMETOOLONG)?;
        if self.max_files == 1 {
            files::unlinkat(self.dir, current)?;
        }
        for k in (0..self.max_files - 1).rev() {
            let (mut a, mut b) = ([0; 256], [0; 256]);
            let (Some(from), Some(to)) = (file_name(self.name, k, &mut a), file_name(self.name, k + 1, &mut b)) else {
                return Err(Errno::ENAMETOOLONG);
            };
            match files::renameat(self.dir, from, to) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let flags = O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
        let fd = files::openat(self.dir, current, flags, 0o600)?;
        let placed = files::dup2(fd, 1).and_then(|()| files::dup2(fd, 2));
        let _ = sys::close(fd);
        self.size = 0;
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_a_newline_or_the_limit() {
        assert_eq!(chunk(0, 10, b"abc\n"), 4);
        assert_eq!(chunk(8, 10, b"ab\ncd\n"), 0); // "ab\n" does not fit: rotate first
        assert_eq!(chunk(5, 10, b"ab\ncdefgh\n"), 3);
        assert_eq!(chunk(0, 4, b"abcdefgh"), 4); // a line longer than a file
        assert_eq!(chunk(10, 10, b"a"), 0);
    }

    #[test]
    fn rotated_names() {
        let mut buf = [0; 256];
        assert_eq!(file_name(b"console.log", 0, &mut buf).map(CStr::to_bytes), Some(&b"console.log"[..]));
        assert_eq!(file_name(b"console.log", 12, &mut buf).map(CStr::to_bytes), Some(&b"console.log.12"[..]));
        assert!(file_name(&[b'x'; 254], 1, &mut buf).is_none()); // 254 + ".1" + NUL > 256
    }
}
