//! What `ps` and /proc/1/cmdline show of init: `init -- CMD ARGS` (or `init`),
//! never the host paths of its setup flags (--rootfs /var/lib/..., --lower ...).
//!
//! /proc/PID/cmdline is read live from the process's memory: the argv strings
//! the kernel laid out contiguously on the initial stack, from argv[0] to the
//! NUL of the last argument (arg_start..arg_end). init rewrites that area in
//! place: "init\0--\0" followed by CMD's own strings, moved left, and NULs up to
//! the end (the kernel then still returns the whole area; `ps` drops trailing
//! NULs). It moves CMD's strings rather than leaving them, and it points CMD's
//! argv entries at their new places, so this can happen *before* the fork: CMD
//! can never catch a half-written or old /proc/1/cmdline, and its own argv is
//! its own copy after fork and gone after execve anyway.
//!
//! comm (/proc/1/comm, the name `ps` shows first) is set to "init" too:
//! executed from a memfd it would be a file descriptor number.

use core::ffi::{c_char, CStr};

use crate::msg;
use crate::sys::{self, PR_SET_NAME};

const FULL: &[u8] = b"init\0--\0";
const SHORT: &[u8] = b"init\0";

/// Rewrites the argv area `area`, where CMD's strings start at `cmd` (None: no
/// CMD in argv). Returns CMD's new offset (how far its strings moved left is
/// `cmd - new`), or None if the area was left as it was (too short to hold
/// even "init", so there is nothing to hide).
pub fn retitle(area: &mut [u8], cmd: Option<usize>) -> Option<usize> {
    let cmd_off = cmd.unwrap_or(area.len());
    let prefix = if cmd.is_some() && cmd_off >= FULL.len() {
        FULL
    } else if cmd_off >= SHORT.len() {
        SHORT
    } else {
        return None;
    };
    let cmd_len = area.len() - cmd_off;
    area.copy_within(cmd_off.., prefix.len());
    area[..prefix.len()].copy_from_slice(prefix);
    area[prefix.len() + cmd_len..].fill(0);
    Some(prefix.len())
}

/// Applies [`retitle`] to the process's real argv (argc strings at `argv`, CMD
/// at index `cmd`) and sets comm. Skipped if the strings are not laid out
/// back to back, as the kernel does (then they are not the cmdline area).
///
/// # Safety
/// `argv` must be the initial stack's argv array of `argc` valid C strings,
/// and no reference to those strings may be used afterwards (they move).
pub unsafe fn set(argv: *mut *const c_char, argc: usize, cmd: Option<usize>) {
    let _ = sys::prctl(PR_SET_NAME, c"init".as_ptr() as usize);
    if argc == 0 {
        return;
    }
    let start = *argv as *mut u8;
    let mut end = start;
    for i in 0..argc {
        let s = *argv.add(i) as *mut u8;
        if s != end {
            msg::debug(&[b"argv is not contiguous: /proc/1/cmdline left as it is"]);
            return;
        }
        end = s.add(CStr::from_ptr(s as *const c_char).to_bytes_with_nul().len());
    }
    let len = end as usize - start as usize;
    let cmd_off = cmd.map(|i| *argv.add(i) as usize - start as usize);
    let area = core::slice::from_raw_parts_mut(start, len);
    if let (Some(i), Some(old), Some(new)) = (cmd, cmd_off, retitle(area, cmd_off)) {
        for j in i..argc {
            *argv.add(j) = (*argv.add(j)).sub(old - new);
        }
    }
    msg::debug(&[b"argv rewritten: /proc/1/cmdline shows init and CMD only"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], cmd: Option<usize>) -> (Vec<u8>, Option<usize>) {
        let mut area: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
        let off = cmd.map(|i| args[..i].iter().map(|a| a.len() + 1).sum());
        let len = area.len();
        let r = retitle(&mut area, off);
        assert_eq!(area.len(), len);
        (area, r)
    }

    fn shown(area: &[u8]) -> String {
        let end = area.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        String::from_utf8_lossy(&area[..end]).replace('\0', " ")
    }

    #[test]
    fn setup_flags_disappear_cmd_stays() {
        let (a, r) = run(&["/var/lib/x/init", "--rootfs", "/var/lib/x/merge", "--", "sleep", "10"], Some(4));
        assert_eq!(shown(&a), "init -- sleep 10");
        assert_eq!(r, Some(8));
        assert!(a.starts_with(b"init\0--\0sleep\x0010\0\0"));
        assert!(a[18..].iter().all(|&b| b == 0));
    }

    #[test]
    fn no_cmd_is_just_init() {
        let (a, r) = run(&["/usr/local/bin/init", "--pause", "--rootfs", "/r"], None);
        assert_eq!(shown(&a), "init");
        assert_eq!(r, Some(5));
    }

    #[test]
    fn short_prefixes() {
        // "init sh": 5 bytes before CMD, room for "init" only.
        let (a, r) = run(&["init", "sh", "-c", "x"], Some(1));
        assert_eq!((shown(&a).as_str(), r), ("init sh -c x", Some(5)));
        // "/init sh": 6 bytes: "init" and CMD moved by one.
        let (a, r) = run(&["/init", "sh"], Some(1));
        assert_eq!((shown(&a).as_str(), r), ("init sh", Some(5)));
        // "/i sh": nothing fits, nothing to hide.
        let (a, r) = run(&["/i", "sh"], Some(1));
        assert_eq!((shown(&a).as_str(), r), ("/i sh", None));
        // "/bin/init -g sh" has room for the full prefix.
        let (a, _) = run(&["/bin/init", "-g", "sh"], Some(2));
        assert_eq!(shown(&a), "init -- sh");
    }

    #[test]
    fn real_argv_pointers_follow_their_strings() {
        let strs = ["/tmp/some/init", "--hostname", "RED", "--", "echo", "a b"];
        let mut area: Vec<u8> = strs.iter().flat_map(|a| a.bytes().chain([0])).collect();
        let base = area.as_mut_ptr();
        let mut argv: Vec<*const c_char> = Vec::new();
        let mut off = 0;
        for s in strs {
            // SAFETY: off stays within area, whose strings are laid out back to back.
            argv.push(unsafe { base.add(off) } as *const c_char);
            off += s.len() + 1;
        }
        argv.push(core::ptr::null());
        // SAFETY: argv points at contiguous NUL-terminated strings in area, as the
        // kernel lays them out, and area is not used through argv afterwards.
        unsafe { set(argv.as_mut_ptr(), strs.len(), Some(4)) };
        // SAFETY: set left every pointer on a NUL-terminated string of area.
        let cmd: Vec<&str> = argv[4..6].iter().map(|&p| unsafe { CStr::from_ptr(p) }.to_str().unwrap()).collect();
        assert_eq!(cmd, ["echo", "a b"]);
        assert_eq!(shown(&area), "init -- echo a b");
    }
}
