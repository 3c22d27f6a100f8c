//! Step 5: starting CMD. What the child does between fork and execve (own
//! process group, the terminal, signals, fds), the $PATH search, and --exec.

use core::ffi::{c_char, CStr};

use crate::msg::Error;
use crate::ready;
use crate::signals::{self, Inherited};
use crate::sys::{self, Errno};

/// The search path when the environment has no PATH (the shells' default for root).
pub const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// CMD as execve wants it: NULL-terminated argv (argv[0] is the program) and envp.
#[derive(Clone, Copy)]
pub struct Cmd {
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
}

impl Cmd {
    /// argv[0]: the program, as given.
    pub fn name(&self) -> &CStr {
        // SAFETY: argv comes from the initial stack (or a static default) and
        // holds at least one non-NULL C string.
        unsafe { CStr::from_ptr(*self.argv) }
    }
}

/// What `sh` would return: 127 if CMD was not found, 126 if it could not run.
pub fn exec_exit_code(e: Errno) -> i32 {
    if e == Errno::ENOENT {
        127
    } else {
        126
    }
}

/// execvp(3): execve CMD directly if it has a '/', else try each $PATH dir in
/// turn. Returns only on failure, with glibc's choice of errno: EACCES if some
/// candidate existed but could not be run, else ENOENT.
pub fn execvp(cmd: &Cmd) -> Errno {
    let file = cmd.name();
    // SAFETY: Cmd holds NULL-terminated argv and envp arrays of C strings.
    let exec = |path: &CStr| unsafe { sys::execve(path, cmd.argv, cmd.envp) };
    if file.to_bytes().is_empty() {
        return Errno::ENOENT;
    }
    if file.to_bytes().contains(&b'/') {
        return exec(file);
    }
    // SAFETY: as above, envp is a NULL-terminated array of C strings.
    let path = unsafe { sys::getenv(cmd.envp, b"PATH") }.unwrap_or(DEFAULT_PATH);
    search_path(file.to_bytes(), path, exec)
}

/// The $PATH loop of execvp, with the exec step passed in (to unit-test it).
pub fn search_path(file: &[u8], path: &[u8], mut exec: impl FnMut(&CStr) -> Errno) -> Errno {
    let mut buf = [0u8; 4096];
    let mut eacces = false;
    for dir in path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir }; // "" means the cwd
        let len = dir.len() + 1 + file.len();
        if len >= buf.len() {
            continue;
        }
        buf[..dir.len()].copy_from_slice(dir);
        buf[dir.len()] = b'/';
        buf[dir.len() + 1..len].copy_from_slice(file);
        buf[len] = 0;
        let Ok(candidate) = CStr::from_bytes_with_nul(&buf[..=len]) else { continue };
        match exec(candidate) {
            Errno::EACCES => eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            e => return e,
        }
    }
    if eacces {
        Errno::EACCES
    } else {
        Errno::ENOENT
    }
}

/// In the child: lead a new process group and, if stdin is our terminal, make
/// that group the terminal's foreground (as tini's isolate_child). Then Ctrl-C
/// reaches CMD's group, not init, `sh -i` gets job control, and `-g` can signal
/// the whole group. A background process may call tcsetpgrp because SIGTTOU is
/// ignored here (inherited from init); it is set back to what init was started
/// with before exec.
pub fn become_foreground() {
    let _ = sys::setpgid(0, 0);
    match sys::tcsetpgrp(0, sys::getpid()) {
        // ENOTTY: stdin is no terminal, or not our controlling one. Fine. (tini's words)
        Ok(()) | Err(Errno::EBADF) => {}
        Err(Errno::ENOTTY) => crate::msg::debug(&[b"tcsetpgrp failed: no tty (ok to proceed)"]),
        Err(Errno::ENXIO) => crate::msg::debug(&[b"tcsetpgrp failed: no such device (ok to proceed)"]),
        Err(e) => {
            // tini makes this fatal; init goes on without the terminal.
            let mut l = crate::msg::Line::new();
            l.push(b"tcsetpgrp failed: ").errno(e);
            crate::msg::warn(&[l.as_bytes()]);
        }
    }
}

/// Closes every fd from `first` (3, or above the --preserve-fds range) except
/// `keep` (pass -1 for none): inherited fds would let CMD reach host files
/// (/proc/1/fd/N re-opens them).
pub fn close_fds_except(first: i32, keep: i32) {
    if keep >= first {
        close_from_to(first as u32, keep as u32 - 1);
        close_from_to(keep as u32 + 1, u32::MAX);
    } else {
        close_from_to(first as u32, u32::MAX);
    }
}

fn close_from_to(first: u32, last: u32) {
    if first > last {
        return;
    }
    if sys::close_range(first, last).is_err() {
        // ENOSYS before Linux 5.9: one close(2) per fd up to the open-files limit.
        let end = sys::nofile_limit().unwrap_or(1024).min(last as u64 + 1);
        for fd in first as u64..end {
            let _ = sys::close(fd as i32);
        }
    }
}

/// `--exec`: the tutorial's way. CMD replaces init as PID 1, unsupervised. Then the
/// kernel's PID-1 rule applies to CMD: a signal without a handler in CMD is
/// dropped (so SIGTERM from the host does nothing to `sleep` or `sh`), orphans
/// stay zombies unless CMD happens to wait for them, and a non-interactive
/// `sh -i` exits once it reaps a child it did not start, ending the container.
/// fds 3..3+`preserve` stay CMD's (--preserve-fds).
pub fn exec_as_pid1(cmd: &Cmd, inherited: Inherited, ready_fd: Option<i32>, preserve: i32) -> ! {
    crate::msg::debug(&[b"exec in init's place (no supervision): ", cmd.name().to_bytes()]);
    signals::restore(inherited);
    close_fds_except(3 + preserve, ready_fd.unwrap_or(-1));
    ready::ok_before_exec(ready_fd);
    let e = execvp(cmd);
    ready::fail(ready_fd, &Error::new(e, &[b"exec ", cmd.name().to_bytes(), b" failed"]), exec_exit_code(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs search_path with a fake exec that answers from `table` and records the tries.
    fn search(file: &str, path: &str, table: &[(&str, Errno)]) -> (Errno, Vec<String>) {
        let mut tried = Vec::new();
        let e = search_path(file.as_bytes(), path.as_bytes(), |p| {
            let p = p.to_str().unwrap().to_string();
            let answer = table.iter().find(|(t, _)| *t == p).map_or(Errno::ENOENT, |(_, e)| *e);
            tried.push(p);
            answer
        });
        (e, tried)
    }

    #[test]
    fn path_search_tries_each_dir_in_order() {
        let (e, tried) = search("sh", "/usr/bin:/bin", &[]);
        assert_eq!(e, Errno::ENOENT);
        assert_eq!(tried, ["/usr/bin/sh", "/bin/sh"]);
        let (_, tried) = search("x", ":/a::", &[]);
        assert_eq!(tried, ["./x", "/a/x", "./x", "./x"]);
    }

    #[test]
    fn path_search_errno_choice() {
        // EACCES somewhere wins over later ENOENTs (glibc).
        let (e, tried) = search("t", "/a:/b:/c", &[("/a/t", Errno::EACCES)]);
        assert_eq!((e, tried.len()), (Errno::EACCES, 3));
        // A real error stops the search.
        let (e, tried) = search("t", "/a:/b:/c", &[("/b/t", Errno::ENOEXEC)]);
        assert_eq!((e, tried.len()), (Errno::ENOEXEC, 2));
        // Not-a-directory entries are skipped.
        let (e, tried) = search("t", "/f:/b", &[("/f/t", Errno::ENOTDIR), ("/b/t", Errno::E2BIG)]);
        assert_eq!((e, tried.len()), (Errno::E2BIG, 2));
    }

    #[test]
    fn path_search_skips_overlong_candidates() {
        let long = "d".repeat(5000);
        let (e, tried) = search("t", &format!("/{long}:/b"), &[]);
        assert_eq!(e, Errno::ENOENT);
        assert_eq!(tried, ["/b/t"]);
    }

    #[test]
    fn exec_failures_map_like_sh() {
        assert_eq!(exec_exit_code(Errno::ENOENT), 127);
        assert_eq!(exec_exit_code(Errno::EACCES), 126);
        assert_eq!(exec_exit_code(Errno::ENOEXEC), 126);
        assert_eq!(exec_exit_code(Errno::E2BIG), 126);
    }

    #[test]
    fn cmd_name_is_argv0() {
        let argv = [c"/bin/true".as_ptr(), c"x".as_ptr(), core::ptr::null()];
        let envp = [core::ptr::null()];
        let cmd = Cmd { argv: argv.as_ptr(), envp: envp.as_ptr() };
        assert_eq!(cmd.name(), c"/bin/true");
    }
}
