//! A layer as the tutorial's shell commands (`mkdir -p`, `cp -L`, the `ldd`
//! closure): for a plan, exactly the files and the directory that
//! [`Builder::build`](super::Builder::build) uses; for docs, a host-independent
//! version.

use std::path::{Path, PathBuf};

use super::build::LayerPlan;
use super::closure::{LayerFile, Why};
use super::ldso::dedup;
use super::manifest::{Entry, Manifest};
use super::place::Placement;

impl LayerPlan {
    /// The tutorial's shell commands for this plan: `mkdir -p` of the layer's
    /// directories, `cp -L` of each entry, then of each library the `ldd` of those
    /// entries finds (`ln -L` where the plan links, `cp -L --reflink=auto` where it
    /// reflinks), for exactly the files [`Builder::build`](super::Builder::build)
    /// copies and into exactly [`LayerPlan::dir`]. As the build, they run only
    /// where that directory is not there: `[ -d DIR ] || { ... }` (so a second
    /// script, blue's after red's, uses the layer the first made). host-setup does
    /// this in-process (in a temporary directory renamed into place), or nothing
    /// when the layer is cached, which the first line says.
    pub fn shell(&self) -> Vec<String> {
        let l = self.dir.display().to_string();
        let what = if self.cached {
            "cached: nothing to do; it holds what these commands make"
        } else {
            "to be built: host-setup does this in-process"
        };
        let mut out = vec![format!("# layer {}: {l} ({what})", self.name)];
        // The build's test (Builder::build): a layer's directory that is there is
        // used as it is. (host-setup also checks each file's size, and renames a
        // complete temporary directory into place, so a half-made one never counts.)
        let mut body = vec![];
        let r = &self.content;
        let mut mkdirs: Vec<PathBuf> = r.dirs.clone();
        mkdirs
            .extend(r.files.iter().filter_map(|f| f.dest.parent()).filter(|p| *p != Path::new("/")).map(PathBuf::from));
        dedup(&mut mkdirs);
        // `mkdir -p` of the deepest ones makes the others; the layer's own directory at least.
        let all = mkdirs.clone();
        mkdirs.retain(|d| !all.iter().any(|o| o != d && o.starts_with(d)));
        let mut words: Vec<String> = mkdirs.iter().map(|d| quote(&format!("{l}{}", d.display()))).collect();
        if words.is_empty() {
            words.push(quote(&l));
        }
        body.push(format!("mkdir -p {}", words.join(" ")));
        // `ln -L`, `cp -L --reflink=auto` or `cp -L`: as the plan puts each file in.
        let cp = |(f, how): &(&LayerFile, Placement)| {
            let (from, to) = (quote(&f.found.display().to_string()), quote(&format!("{l}{}", f.dest.display())));
            format!("{} {from} {to}", how.command())
        };
        let placed = r.files.iter().zip(self.placements.iter().copied());
        type Placed<'a> = Vec<(&'a LayerFile, Placement)>;
        let (entries, closure): (Placed, Placed) = placed.partition(|(f, _)| matches!(f.why, Why::Entry));
        body.extend(entries.iter().map(cp));
        if !closure.is_empty() {
            let exes: Vec<String> = entries
                .iter()
                .filter(|(f, _)| f.src.elf.as_ref().is_some_and(|e| e.interp.is_some()))
                .map(|(f, _)| quote(&f.found.display().to_string()))
                .collect();
            body.push(format!("# the shared libraries (ldd {}):", exes.join(" ")));
            body.extend(closure.iter().map(cp));
        }
        out.push(format!("[ -d {} ] || {{", quote(&l)));
        out.extend(body.into_iter().map(|b| format!("  {b}")));
        out.push("}".into());
        out
    }
}

/// `s` as one shell word: as it is when that is safe, single-quoted otherwise.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The tutorial-style shell commands equivalent to building `m` into
/// `layer_dir`, without looking at this host (for docs; [`LayerPlan::shell`]
/// gives this host's version): `mkdir -p`, `cp -L`, and the `ldd` closure loop.
pub fn explain(m: &Manifest, layer_dir: &Path) -> Vec<String> {
    let l = layer_dir.display().to_string();
    let mut out = vec![format!("# layer {}: {l}", m.name)];
    let mut mk: Vec<String> = Vec::new();
    for e in &m.entries {
        let d = match e {
            Entry::Dir { dest } => Some(dest.as_path()),
            _ => e.dest().parent().filter(|p| *p != Path::new("/")),
        };
        if let Some(d) = d {
            let s = format!("{l}{}", d.display());
            if !mk.contains(&s) {
                mk.push(s);
            }
        }
    }
    if !mk.is_empty() {
        out.push(format!("mkdir -p {}", mk.join(" ")));
    }
    let mut copied = Vec::new();
    for e in &m.entries {
        match e {
            Entry::Host { dest, command, .. } => {
                let src =
                    if command.starts_with('/') { command.clone() } else { format!("\"$(command -v {command})\"") };
                out.push(format!("cp -L {src} {l}{}", dest.display()));
                copied.push(format!("{l}{}", dest.display()));
            }
            Entry::Own { dest, binary } => {
                out.push(format!("cp -L target/x86_64-unknown-linux-gnu/release/{binary} {l}{}", dest.display()));
                copied.push(format!("{l}{}", dest.display()));
            }
            Entry::Dir { .. } => {}
        }
    }
    if !copied.is_empty() {
        out.push("# the shared libraries each binary needs, where ld.so finds them:".into());
        // One ldd per file: given several, ldd prints each file's name as a header.
        out.push(format!(
            "for lib in $(for f in {}; do ldd \"$f\"; done 2>/dev/null | grep -o '/[^ ]*' | sort -u); do mkdir -p \"{l}$(dirname \"$lib\")\" && cp -L \"$lib\" \"{l}$lib\"; done",
            copied.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use super::*;
    use crate::layers::{builtin, parse, Builder};

    #[test]
    fn generic_explain() {
        let lines = explain(&builtin("tools").unwrap(), Path::new("/tmp/tools"));
        assert_eq!(lines[1], "mkdir -p /tmp/tools/bin /tmp/tools/usr/bin");
        assert_eq!(lines[2], "cp -L \"$(command -v hostname)\" /tmp/tools/bin/hostname");
        assert!(lines.last().unwrap().starts_with("for lib in $(for f in /tmp/tools/bin/hostname "));
        let lines = explain(&builtin("myroot").unwrap(), Path::new("/tmp/myroot"));
        assert!(lines.contains(&"mkdir -p /tmp/myroot/bin /tmp/myroot/proc".to_string()));
        assert!(lines.contains(
            &"cp -L target/x86_64-unknown-linux-gnu/release/escape_chroot /tmp/myroot/escape_chroot".to_string()
        ));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("/var/lib/x-1/a.so.6"), "/var/lib/x-1/a.so.6");
        assert_eq!(quote("/a b/it's"), "'/a b/it'\\''s'");
        assert_eq!(quote(""), "''");
    }

    /// Everything under `root`: relative path -> a file's size and a hash of its
    /// bytes (None for a directory).
    fn tree(root: &Path) -> BTreeMap<PathBuf, Option<(usize, u64)>> {
        let digest = |bytes: Vec<u8>| {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&bytes, &mut h);
            (bytes.len(), std::hash::Hasher::finish(&h))
        };
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                assert!(m.is_dir() || m.is_file(), "{}: only files and directories", p.display());
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    m.is_file().then(|| digest(fs::read(&p).unwrap())),
                );
                if m.is_dir() {
                    stack.push(p);
                }
            }
        }
        out
    }

    /// Each path under `root` with its inode and mtime: what copying over a file,
    /// or linking it again, would change.
    fn stamps(root: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        use std::os::unix::fs::MetadataExt;
        let mut out = vec![];
        for p in tree(root).into_keys() {
            let m = fs::symlink_metadata(root.join(&p)).unwrap();
            out.push((p, m.ino(), m.modified().unwrap()));
        }
        out
    }

    /// What `shell()` prints is what `build()` does: run as a script it makes the
    /// same tree as build() (from host commands only: a unit test has no
    /// escape_chroot to hand; no root needed).
    #[test]
    fn shell_names_every_file_of_the_plan_and_makes_what_build_makes() {
        let t = std::env::temp_dir().join(format!("layers-unit-{}-shell", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let m = parse("unit", "/bin/sh  sh  dash\n/usr/bin/env  env  coreutils\n/proc/\n").unwrap();
        // A layers dir that needs quoting, for the script.
        let by_hand = Builder::new(t.join("it's layers"), t.join("own"));
        let plan = by_hand.plan(&m).unwrap();
        assert!(!t.exists(), "plan() writes nothing");
        assert!(!plan.cached());
        let dir = plan.dir().display().to_string();
        let lines = plan.shell();
        assert_eq!(lines[0], format!("# layer unit: {dir} (to be built: host-setup does this in-process)"));
        assert_eq!(lines[1], format!("[ -d {} ] || {{", quote(&dir)));
        assert_eq!(lines.last().unwrap(), "}");
        assert!(
            lines[2].starts_with("  mkdir -p ") && lines[2].contains(&quote(&format!("{dir}/proc"))),
            "{}",
            lines[2]
        );
        let files: Vec<(&Path, &Path)> = plan.files().collect();
        assert!(files.len() >= 4, "sh, env, their loader and libc: {files:?}");
        for (found, dest, how) in plan.placed() {
            let (from, to) = (quote(&found.display().to_string()), quote(&format!("{dir}{}", dest.display())));
            let cp = format!("  {} {from} {to}", how.command());
            assert!(lines.contains(&cp), "{cp}: not in {lines:#?}");
        }
        let n = lines.iter().map(|l| l.trim_start()).filter(|l| l.starts_with("cp ") || l.starts_with("ln ")).count();
        assert_eq!(n, files.len(), "no other copy");

        // Run as a script, the commands make the layer's directory...
        let script = format!("set -e\n{}\n", lines.join("\n"));
        let run = || std::process::Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let out = run();
        assert!(out.status.success(), "{script}{}", String::from_utf8_lossy(&out.stderr));
        // ...and, run again (blue's script after red's), use it as it is: no
        // `ln` over a linked file (EEXIST), nothing rewritten.
        let first = stamps(plan.dir());
        let out = run();
        assert!(out.status.success(), "again: {script}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stamps(plan.dir()), first);
        // ...with what build() puts there (another builder: the same plan, another layers dir).
        let built = Builder::new(t.join("built"), t.join("own"));
        let plan2 = built.plan(&m).unwrap();
        assert_eq!(plan2.dir().file_name(), plan.dir().file_name(), "the same fingerprint");
        let made = built.build(&plan2).unwrap();
        assert_eq!(made, plan2.dir());
        let (by_script, by_build) = (tree(plan.dir()), tree(&made));
        // And build() copies exactly the plan's files: every file it made is one of them.
        let planned: Vec<PathBuf> = files.iter().map(|(_, d)| d.strip_prefix("/").unwrap().to_path_buf()).collect();
        let made_files: Vec<&PathBuf> = by_build.iter().filter(|(_, c)| c.is_some()).map(|(p, _)| p).collect();
        // A hand-made layer with the right files counts as built.
        let again = by_hand.plan(&m).unwrap();
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(by_script, by_build);
        assert_eq!(made_files.len(), planned.len());
        assert!(planned.iter().all(|p| made_files.contains(&p)), "{planned:?} {made_files:?}");
        assert_eq!(by_build.get(Path::new("proc")), Some(&None), "an empty /proc");
        assert!(again.cached());
        assert_eq!(
            again.shell()[0],
            format!("# layer unit: {dir} (cached: nothing to do; it holds what these commands make)")
        );
        assert_eq!(again.shell()[1..], lines[1..]);
    }
}
