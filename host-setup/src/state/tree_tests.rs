use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::hooks::{self, At};
use super::*;

fn scratch(tag: &str) -> PathBuf {
    let t = std::env::temp_dir().join(format!("hs-rt-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&t);
    fs::create_dir_all(&t).unwrap();
    t
}

/// t/victim/{a,b,c}/f0..f9, and t/outside/keep0..keep9 standing for the host's files.
fn victim_and_outside(t: &Path) {
    for d in ["a", "b", "c"] {
        fs::create_dir_all(t.join("victim").join(d).join("sub")).unwrap();
        for i in 0..10 {
            fs::write(t.join("victim").join(d).join(format!("f{i}")), "x").unwrap();
        }
    }
    fs::create_dir_all(t.join("outside")).unwrap();
    for i in 0..10 {
        fs::write(t.join("outside").join(format!("keep{i}")), "host").unwrap();
    }
}

fn outside_count(t: &Path) -> usize {
    fs::read_dir(t.join("outside")).map(|r| r.count()).unwrap_or(0)
}

/// Moves `dir` out of the tree to `t/away-N` and puts a symlink to t/outside in its place.
fn swap_for_symlink(t: &Path, dir: &Path, n: usize) {
    fs::rename(dir, t.join(format!("away-{n}"))).unwrap();
    symlink(t.join("outside"), dir).unwrap();
}

#[test]
fn removes_without_following_links_and_is_idempotent() {
    let d = scratch("plain");
    fs::create_dir_all(d.join("a/b")).unwrap();
    fs::write(d.join("a/b/f"), "x").unwrap();
    symlink("/etc", d.join("a/link")).unwrap();
    assert!(remove_tree(&d).unwrap());
    assert!(!d.exists());
    assert!(Path::new("/etc/passwd").exists(), "symlinks are not followed");
    assert!(!remove_tree(&d).unwrap());
}

#[test]
fn a_tree_with_a_mount_in_it_is_refused_whole() {
    let t = scratch("mount");
    fs::create_dir_all(t.join("layer/bin")).unwrap();
    fs::create_dir_all(t.join("outside")).unwrap();
    fs::write(t.join("outside/keep"), "x").unwrap();
    symlink(t.join("outside"), t.join("layer/bin/link")).unwrap();
    symlink(t.join("outside"), t.join("toplink")).unwrap();
    let e = remove_tree_unless_mounted(&t.join("layer"), Some(&[t.join("layer/bin")][..])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("remove {}: {} is mounted; unmount it first", t.join("layer").display(), t.join("layer/bin").display())
    );
    assert!(t.join("layer/bin/link").symlink_metadata().is_ok(), "nothing removed");
    // Otherwise removed, through no symlink: neither one inside nor the entry itself.
    assert!(remove_tree_unless_mounted(&t.join("layer"), Some(&[t.join("outside"), t.join("layerx")][..])).unwrap());
    assert!(remove_tree_unless_mounted(&t.join("toplink"), Some(&[][..])).unwrap());
    let left: Vec<_> = fs::read_dir(&t).unwrap().map(|e| e.unwrap().file_name()).collect();
    let kept = fs::read(t.join("outside/keep"));
    fs::remove_dir_all(&t).unwrap();
    assert_eq!(left, ["outside"]);
    assert_eq!(kept.unwrap(), b"x");
}

#[test]
fn a_directory_swapped_for_a_symlink_before_it_is_opened_is_not_followed() {
    // The race the old path walk lost: the entry was read as a directory, then
    // replaced by a symlink to the host's files before the walk went into it.
    let t = scratch("swap-open");
    victim_and_outside(&t);
    let (tt, mut n) = (t.clone(), 0);
    hooks::set(Some(Box::new(move |at, p| {
        if at == At::Open && p.parent() == Some(&tt.join("victim")) {
            swap_for_symlink(&tt, p, n);
            n += 1;
        }
    })));
    let r = remove_tree_unless_mounted(&t.join("victim"), Some(&[][..]));
    hooks::set(None);
    let (kept, gone) = (outside_count(&t), !t.join("victim").exists());
    fs::remove_dir_all(&t).unwrap();
    assert_eq!(kept, 10, "the host's files behind the symlink are untouched");
    assert!(r.unwrap() && gone, "the tree (and the symlinks put in it) is removed");
}

#[test]
fn a_directory_swapped_for_a_symlink_after_it_is_opened_is_emptied_through_its_fd() {
    // Between the open and the unlinks: they go through the fd, into the moved
    // directory, never through the new symlink; its name is then unlinked.
    let t = scratch("swap-opened");
    victim_and_outside(&t);
    let (tt, mut n) = (t.clone(), 0);
    hooks::set(Some(Box::new(move |at, p| {
        if at == At::Opened && p.parent() == Some(&tt.join("victim")) {
            swap_for_symlink(&tt, p, n);
            n += 1;
        }
    })));
    let r = remove_tree_unless_mounted(&t.join("victim"), Some(&[][..]));
    hooks::set(None);
    let kept = outside_count(&t);
    let moved_left: usize = (0..3).map(|i| fs::read_dir(t.join(format!("away-{i}"))).unwrap().count()).sum();
    let gone = !t.join("victim").exists();
    fs::remove_dir_all(&t).unwrap();
    assert_eq!(kept, 10, "the host's files behind the symlink are untouched");
    assert_eq!(moved_left, 0, "the moved directories were emptied through their fds");
    assert!(r.unwrap() && gone);
}

#[test]
fn a_tree_that_keeps_growing_is_walked_again_then_refused() {
    // A file put back into a directory after it was read: rmdir says ENOTEMPTY,
    // and the whole walk is tried again (the container is dead by then; a local
    // user cannot write there): a tree that never stops changing is an error.
    let t = scratch("grow");
    fs::create_dir_all(t.join("victim/a")).unwrap();
    let tt = t.clone();
    let mut left = 1;
    hooks::set(Some(Box::new(move |at, p| {
        if at == At::Rmdir && p == tt.join("victim") && left > 0 {
            left -= 1;
            fs::write(tt.join("victim/late"), "x").unwrap_or(());
        }
    })));
    let once = remove_tree_unless_mounted(&t.join("victim"), Some(&[][..]));
    let tt = t.clone();
    fs::create_dir_all(t.join("victim/a")).unwrap();
    hooks::set(Some(Box::new(move |at, p| {
        if at == At::Rmdir && p == tt.join("victim") {
            fs::write(tt.join("victim/late"), "x").unwrap_or(());
        }
    })));
    let always = remove_tree_unless_mounted(&t.join("victim"), Some(&[][..]));
    hooks::set(None);
    fs::remove_dir_all(&t).unwrap();
    assert!(once.unwrap());
    let e = always.unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOTEMPTY), "{e}");
    assert!(e.to_string().starts_with(&format!("rmdir {}", t.join("victim").display())), "{e}");
}

#[test]
fn another_filesystem_under_the_tree_is_not_entered() {
    // st_dev, per directory: /proc is another filesystem; a symlink to it is
    // just removed, and a directory on it is refused (here the top itself).
    let t = scratch("dev");
    symlink("/proc", t.join("proc")).unwrap();
    assert!(remove_tree_unless_mounted(&t, Some(&[][..])).unwrap());
    let parent_fd = openat(AT_FDCWD, "/", DIR_FLAGS, Mode::empty()).unwrap();
    let e = remove_dir_at(&parent_fd, OsStr::new("proc"), 0, Path::new("/proc")).unwrap_err();
    assert_eq!(e.to_string(), "not removing /proc: another filesystem is mounted there");
}

#[test]
fn a_bind_mount_of_the_same_filesystem_is_found_by_its_mount_id() {
    // The mount-id check remove_tree uses (no mountinfo): a bind mount of a
    // directory of the same filesystem, two levels down, refuses the whole tree.
    let t = scratch("mntid");
    fs::create_dir_all(t.join("tree/a/b")).unwrap();
    fs::create_dir_all(t.join("outside")).unwrap();
    fs::write(t.join("outside/keep"), "x").unwrap();
    fs::write(t.join("tree/a/f"), "x").unwrap();
    let (src, dst) = (t.join("outside"), t.join("tree/a/b"));
    nix::mount::mount(Some(&src), &dst, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).unwrap();
    let refused = remove_tree(&t.join("tree"));
    nix::mount::umount2(&dst, nix::mount::MntFlags::MNT_DETACH).unwrap();
    let kept = (fs::read(t.join("outside/keep")), t.join("tree/a/f").exists());
    // Unmounted, the same tree goes.
    let removed = remove_tree(&t.join("tree"));
    fs::remove_dir_all(&t).unwrap();
    let e = refused.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("remove {}: {} is mounted; unmount it first", t.join("tree").display(), dst.display())
    );
    assert_eq!(kept.0.unwrap(), b"x");
    assert!(kept.1, "nothing of the tree removed");
    assert!(removed.unwrap());
}
