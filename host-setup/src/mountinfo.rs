//! /proc/self/mountinfo: what is mounted where, for the cgroup v1 mounts and for
//! never deleting a directory that has something mounted in it.

use std::path::PathBuf;

use crate::error::{Result, SysContext};

pub fn read() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").sys(|| "read /proc/self/mountinfo".into())
}

/// The mount points (field 5) of every line.
pub fn mount_points(text: &str) -> Vec<PathBuf> {
    text.lines().filter_map(|l| l.split(' ').nth(4)).map(|m| PathBuf::from(unescape(m))).collect()
}

/// mountinfo writes ' ', '\t', '\n' and '\\' in paths as octal escapes (`\040`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/a\\134b"), "/a\\b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/x\\04"), "/x\\04", "a cut-off escape stays as it is");
    }

    #[test]
    fn mount_points_of_each_line() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n90 80 0:32 / /mnt/a\\040b rw - tmpfs x rw\n";
        assert_eq!(mount_points(text), [PathBuf::from("/sys/fs/cgroup"), PathBuf::from("/mnt/a b")]);
    }
}
