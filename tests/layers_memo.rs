//! The warm layer check (host-setup/src/layers/memo.rs): a memo of the last full
//! resolution, proved still valid with one statx per thing it looked at, names the
//! cached layer; anything it depended on that changed (a binary renamed over or
//! rewritten in place, a chmod, a new file earlier on the search path) makes a
//! full check, and a new layer where the inputs differ. As root, in the test's own
//! dirs (removed even on failure). The layer is one static binary (a copy of our
//! escape_chroot: no loader, no libraries), so everything the memo witnesses is
//! the test's own (the host's library dirs can change under apt meanwhile).
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use host_setup::layers::{self, Builder};
use lab_tests::TempDir;

/// mtime an hour back: older than the memo's racy margin (a memo is written only
/// when what it depends on has not changed in the last seconds).
fn age(p: &Path) {
    let f = fs::File::open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
}

/// Whether the plan `up` would use came from the memo (it lists no files then).
fn from_memo(b: &Builder, m: &layers::Manifest) -> (bool, std::path::PathBuf) {
    let plan = b.plan_to_use(m).unwrap();
    assert!(plan.cached() || plan.files().count() > 0);
    (plan.files().count() == 0, plan.dir().to_path_buf())
}

#[test]
fn a_memo_holds_until_an_input_changes() {
    lab_tests::require_root();
    let t = TempDir::new("memo");
    let (early, src) = (t.path("early"), t.path("src"));
    fs::create_dir(&early).unwrap();
    fs::create_dir(&src).unwrap();
    let bin = src.join("mytool");
    fs::copy(lab_tests::bin("escape_chroot"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    for p in [&bin, &src, &early] {
        age(p);
    }
    let mut b = Builder::new(t.path("layers"), t.path("none"));
    b.search_path = vec![early.clone(), src.clone()];
    let m = layers::parse("mine", "/bin/mytool  mytool  mytool\n").unwrap();

    let first = b.ensure(&m).unwrap();
    assert!(t.path("layer-memos/mine").is_file(), "the memo is written next to the layers dir");
    assert_eq!(from_memo(&b, &m), (true, first.clone()), "a warm check from the memo");
    // --explain's plan is always full.
    assert!(b.plan(&m).unwrap().files().count() == 1);

    // A package upgrade: a new file renamed over the old (a new inode).
    let new = src.join(".mytool.new");
    let mut bytes = fs::read(&bin).unwrap();
    bytes.extend_from_slice(b"upgraded");
    fs::write(&new, &bytes).unwrap();
    fs::set_permissions(&new, fs::Permissions::from_mode(0o755)).unwrap();
    age(&new); // its mtime is in the fingerprint: aged before it is used
    fs::rename(&new, &bin).unwrap();
    let (memo, dir) = from_memo(&b, &m);
    assert!(!memo && dir != first, "renamed over: a full check and a new layer");
    let second = b.ensure(&m).unwrap();
    assert_eq!(second, dir);
    assert_eq!(fs::read(second.join("bin/mytool")).unwrap(), bytes);
    // Its directory changed seconds ago: no memo trusted yet, the full check says cached.
    assert_eq!(from_memo(&b, &m), (false, second.clone()));
    age(&src);
    assert_eq!(b.ensure(&m).unwrap(), second);
    assert_eq!(from_memo(&b, &m), (true, second.clone()));

    // Rewritten in place, same inode, then its mtime put an hour back again (not
    // the recorded one): the size differs.
    fs::OpenOptions::new().append(true).open(&bin).and_then(|mut f| std::io::Write::write_all(&mut f, b"!")).unwrap();
    age(&bin);
    let (memo, third) = from_memo(&b, &m);
    assert!(!memo && third != second, "rewritten in place: a new layer");
    assert_eq!(b.ensure(&m).unwrap(), third);
    assert_eq!(from_memo(&b, &m), (true, third.clone()));

    // A chmod (mtime unchanged, ctime is not read): a full check, a new layer.
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o700)).unwrap();
    let (memo, fourth) = from_memo(&b, &m);
    assert!(!memo && fourth != third, "chmod: a new layer");
    assert_eq!(b.ensure(&m).unwrap(), fourth);
    assert_eq!(from_memo(&b, &m), (true, fourth.clone()));

    // A new file earlier on the search path: the directory it appeared in changed.
    fs::copy(&bin, early.join("mytool")).unwrap();
    age(&early.join("mytool"));
    let plan = b.plan_to_use(&m).unwrap();
    let found: Vec<_> = plan.files().map(|(f, _)| f.to_path_buf()).collect();
    assert_eq!(found, [early.join("mytool")], "a full check finds the earlier one");
    assert_ne!(plan.dir(), fourth);

    // The layer damaged by hand: the memo's layer is incomplete, a full check rebuilds it.
    fs::remove_file(early.join("mytool")).unwrap();
    age(&early);
    assert_eq!(b.ensure(&m).unwrap(), fourth);
    assert_eq!(from_memo(&b, &m), (true, fourth.clone()));
    fs::remove_file(fourth.join("bin/mytool")).unwrap();
    assert_eq!(from_memo(&b, &m), (false, fourth.clone()), "incomplete: not from the memo");
    assert_eq!(b.ensure(&m).unwrap(), fourth);
    assert!(fourth.join("bin/mytool").is_file(), "built again");
}

#[test]
fn a_memo_is_per_manifest_and_layers_dir() {
    lab_tests::require_root();
    let t = TempDir::new("memokey");
    let src = t.path("src");
    fs::create_dir(&src).unwrap();
    fs::copy(lab_tests::bin("escape_chroot"), src.join("mytool")).unwrap();
    fs::set_permissions(src.join("mytool"), fs::Permissions::from_mode(0o755)).unwrap();
    age(&src.join("mytool"));
    age(&src);
    let mut b = Builder::new(t.path("layers"), t.path("none"));
    b.search_path = vec![src.clone()];
    let m = layers::parse("mine", "/bin/mytool  mytool  mytool\n").unwrap();
    let first = b.ensure(&m).unwrap();
    assert_eq!(from_memo(&b, &m), (true, first.clone()));
    // Another manifest under the same name: not this memo's layer.
    let other = layers::parse("mine", "/bin/mytool  mytool  mytool\n/proc/\n").unwrap();
    let (memo, dir) = from_memo(&b, &other);
    assert!(!memo && dir != first);
    // Another search path: a full check.
    let mut b2 = b.clone();
    b2.search_path = vec![t.path("missing"), src.clone()];
    assert!(!from_memo(&b2, &m).0);
}
