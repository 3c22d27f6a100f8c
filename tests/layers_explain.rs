//! `--explain`'s commands for a layer do what the build does, on any layout of
//! the state dir: each file's line is the plan's placement (`ln -L` where it links,
//! `cp -L --reflink=auto` where it reflinks, `cp -L` where it copies:
//! host-setup/src/layers/place.rs decides), the build did exactly that, and the
//! commands, run by hand, make the same tree; run again, they leave it as it is.
//! Every test works in its own temp dir, removed even on failure.
mod layers_common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use host_setup::layers::{self, Placement};
use lab_tests::TempDir;
use layers_common::*;

#[test]
fn explain_gives_shell_commands_that_build_the_same_tree() {
    lab_tests::require_root();
    let t = TempDir::new("layers");
    let b = builder(&t);
    let m = b.ensure(&tools()).unwrap();
    let plan = b.plan(&tools()).unwrap();
    assert_eq!((plan.dir(), plan.cached()), (m.as_path(), true));
    let lines = plan.shell();
    let text = lines.join("\n");
    let l = m.display();
    // Built once, as host-setup does: nothing where the layer's directory is there.
    assert_eq!(lines[1], format!("[ -d {l} ] || {{"), "{text}");
    assert_eq!(lines.last().unwrap(), "}");

    // Each file: the plan's command, and what the build did is what it says (a
    // link is the host's inode, a reflink or a copy is a new one).
    let placed: Vec<(PathBuf, PathBuf, Placement)> =
        plan.placed().map(|(found, dest, how)| (found.to_path_buf(), dest.to_path_buf(), how)).collect();
    for (found, dest, how) in &placed {
        let line = format!("  {} {} {l}{}", how.command(), found.display(), dest.display());
        assert!(lines.contains(&line), "{line}: not in\n{text}");
        let (host, layer) =
            (fs::metadata(found).unwrap(), fs::metadata(m.join(dest.strip_prefix("/").unwrap())).unwrap());
        let same = (host.dev(), host.ino()) == (layer.dev(), layer.ino());
        assert_eq!(same, *how == Placement::Link, "{}: planned {how:?}", dest.display());
    }
    let copies = lines.iter().filter(|l| l.starts_with("  cp ") || l.starts_with("  ln ")).count();
    assert_eq!((copies, placed.len()), (files(&m).len(), files(&m).len()), "one line per file, every file\n{text}");
    // ping has a file capability: never linked, on any layout (tests/layers_link.rs has the rest).
    let how = |d: &str| placed.iter().find(|p| p.1 == Path::new(d)).map(|p| p.2);
    assert!(matches!(how("/bin/ping"), Some(Placement::Reflink | Placement::Copy)), "{text}");
    assert!(how("/lib64/ld-linux-x86-64.so.2").is_some() && how("/lib/x86_64-linux-gnu/libc.so.6").is_some());

    // Run them (into another dir): the same files with the same contents...
    let by_hand = t.path("by-hand");
    let script = format!("set -e\n{}", text.replace(&m.display().to_string(), &by_hand.display().to_string()));
    assert!(sh(&script).status.success());
    assert_eq!(files(&by_hand), files(&m));
    for f in files(&m) {
        assert_eq!(fs::read(by_hand.join(&f)).unwrap(), fs::read(m.join(&f)).unwrap(), "{}", f.display());
    }
    // ...placed as the build placed them: a linked file is the host's inode there too.
    for (found, dest, how) in &placed {
        let (host, made) =
            (fs::metadata(found).unwrap(), fs::metadata(by_hand.join(dest.strip_prefix("/").unwrap())).unwrap());
        let same = (host.dev(), host.ino()) == (made.dev(), made.ino());
        assert_eq!(same, *how == Placement::Link, "{}: by hand, planned {how:?}", dest.display());
    }
    // ...and run again (blue's script after red's), they use that layer as it is:
    // no `ln` over a linked file (EEXIST), no copy over a copy.
    let first = snapshot(&by_hand);
    assert!(sh(&script).status.success(), "run again");
    assert_eq!(snapshot(&by_hand), first);

    // The host-independent version (for docs: `command -v` and an `ldd` loop) too.
    let root = b.ensure(&myroot()).unwrap();
    let generic = t.path("generic");
    let script = layers::explain(&myroot(), &generic)
        .join("\n")
        .replace("target/x86_64-unknown-linux-gnu/release/", &format!("{}/", own_bin_dir().display()));
    assert!(sh(&format!("set -e\n{script}")).status.success());
    assert_eq!(files(&generic), files(&root));
    assert!(generic.join("proc").is_dir());
}
