//! How ld.so searches for a library: /etc/ld.so.conf (as ldconfig reads it), the
//! trusted directories, DT_RPATH/DT_RUNPATH and their `$ORIGIN`/`$LIB` tokens.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use log::debug;

use crate::error::{Result, SysContext};

/// ld.so's configuration: the directories ldconfig puts into ld.so.cache.
const LD_SO_CONF: &str = "/etc/ld.so.conf";

/// ld.so's trusted directories on x86_64 Debian, searched last.
const DEFAULT_LIB_DIRS: &[&str] =
    &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// What `$LIB` expands to in DT_RPATH/DT_RUNPATH on x86_64 Debian.
const DOLLAR_LIB: &str = "lib/x86_64-linux-gnu";

/// The directories ld.so searches after an object's own DT_RPATH/DT_RUNPATH:
/// those of ld.so.cache (read from /etc/ld.so.conf, as ldconfig does; the cache
/// itself is not read, and no layer gets one), then the trusted defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LibSearch {
    pub conf_dirs: Vec<PathBuf>,
    pub default_dirs: Vec<PathBuf>,
}

impl LibSearch {
    /// This host's: /etc/ld.so.conf and x86_64 Debian's trusted directories.
    pub(super) fn host() -> Result<LibSearch> {
        LibSearch::from_conf(Path::new(LD_SO_CONF))
    }

    /// `conf` and the files it includes; a missing conf file means no directories.
    pub(super) fn from_conf(conf: &Path) -> Result<LibSearch> {
        let mut conf_dirs = Vec::new();
        read_ld_so_conf(conf, 0, &mut conf_dirs)?;
        dedup(&mut conf_dirs);
        debug!("library search: ld.so.conf dirs {}", join_paths(&conf_dirs));
        Ok(LibSearch { conf_dirs, default_dirs: DEFAULT_LIB_DIRS.iter().map(PathBuf::from).collect() })
    }
}

/// ldconfig's syntax: one directory a line (or several, split by blanks, ':' or
/// ','), `include <glob>...` (relative to the including file's directory), `hwcap`
/// lines (obsolete, ignored), '#' comments.
fn read_ld_so_conf(path: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > 16 {
        return Err(crate::failed!("read {}: includes nested too deep", path.display()));
    }
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            debug!("library search: {} does not exist", path.display());
            return Ok(());
        }
        Err(e) => return Err(e).sys(|| format!("read {}", path.display())),
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => {
                for pattern in words {
                    for file in included(path, pattern) {
                        read_ld_so_conf(&file, depth + 1, out)?;
                    }
                }
            }
            Some("hwcap") => {}
            _ => {
                for dir in line.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
                    let dir = dir.trim_end_matches('/');
                    if dir.starts_with('/') {
                        out.push(PathBuf::from(dir));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The files an `include` line of the ld.so.conf at `conf` names, as ldconfig's
/// glob(3) gives them: sorted, relative to `conf`'s directory, `*`, `?` and
/// `[...]` not matching a leading '.', and nothing when nothing matches (or the
/// directory does not exist). A pattern glob cannot parse (an unclosed '[')
/// names one file literally, as glob(3) reads it.
fn included(conf: &Path, pattern: &str) -> Vec<PathBuf> {
    let base = if pattern.starts_with('/') {
        String::new()
    } else {
        format!("{}/", glob::Pattern::escape(&conf.parent().unwrap_or(Path::new("/")).to_string_lossy()))
    };
    let options =
        glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };
    let matches = |p: &str| glob::glob_with(&format!("{base}{p}"), options);
    match matches(pattern).or_else(|_| matches(&glob::Pattern::escape(pattern))) {
        // Unreadable directories are skipped, as glob(3) does without GLOB_ERR.
        Ok(paths) => paths.filter_map(|p| p.ok()).collect(),
        Err(e) => {
            debug!("library search: include {pattern} in {}: {e}", conf.display());
            Vec::new()
        }
    }
}

/// The search-path parts of one loaded object, for [`library_dirs`].
#[derive(Debug, Clone)]
pub(super) struct ObjPaths<'a> {
    /// DT_RPATH entries (already split at ':'), ignored by ld.so when the object has DT_RUNPATH.
    pub rpath: &'a [String],
    /// DT_RUNPATH entries.
    pub runpath: &'a [String],
    /// What `$ORIGIN` means for this object: the directory it was loaded from.
    pub origin: &'a Path,
}

/// The directories ld.so searches, in order, for a DT_NEEDED name of `chain[0]`;
/// `chain[1..]` are the objects that loaded it, up to the executable.
///
/// glibc (elf/dl-load.c, _dl_map_object): if the needing object has no
/// DT_RUNPATH, the DT_RPATH of it and of each of its loaders (an object with a
/// DT_RUNPATH has its DT_RPATH ignored); then LD_LIBRARY_PATH (not used here: a
/// layer must not depend on host-setup's environment); then the object's own
/// DT_RUNPATH; then ld.so.cache and the trusted directories, unless the object is
/// linked with -z nodeflib. `$ORIGIN` and `$LIB` are expanded; an entry with
/// another token, or an empty one (the current directory), is skipped.
pub(super) fn library_dirs(chain: &[ObjPaths], nodeflib: bool, search: &LibSearch) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Some(obj) = chain.first() else {
        return dirs;
    };
    if obj.runpath.is_empty() {
        for o in chain.iter().filter(|o| o.runpath.is_empty()) {
            dirs.extend(o.rpath.iter().filter_map(|e| expand_origin(e, o.origin)));
        }
    }
    dirs.extend(obj.runpath.iter().filter_map(|e| expand_origin(e, obj.origin)));
    if !nodeflib {
        dirs.extend(search.conf_dirs.iter().cloned());
        dirs.extend(search.default_dirs.iter().cloned());
    }
    dedup(&mut dirs);
    dirs
}

/// Expands `$ORIGIN`/`${ORIGIN}` and `$LIB`/`${LIB}` in one DT_RPATH/DT_RUNPATH
/// entry. None for an empty entry, a relative one or one with another token.
pub(super) fn expand_origin(entry: &str, origin: &Path) -> Option<PathBuf> {
    let origin = origin.to_str()?;
    let mut out = String::new();
    let mut rest = entry;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (token, len) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            (&inner[..end], end + 2)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        match token {
            "ORIGIN" => out.push_str(origin),
            "LIB" => out.push_str(DOLLAR_LIB),
            _ => {
                debug!("library search: skipping {entry:?}: unknown token ${token}");
                return None;
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    if !out.starts_with('/') {
        debug!("library search: skipping {entry:?}: not an absolute directory");
        return None;
    }
    // `/a/./b/` -> `/a/b` (".." stays: ld.so does not resolve it either).
    Some(PathBuf::from(out).components().collect())
}

pub(super) fn dedup(v: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
}

pub(super) fn join_paths(v: &[PathBuf]) -> String {
    v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_expansion() {
        let o = Path::new("/opt/app/bin");
        assert_eq!(expand_origin("$ORIGIN/../lib", o), Some("/opt/app/bin/../lib".into()));
        assert_eq!(expand_origin("${ORIGIN}/lib", o), Some("/opt/app/bin/lib".into()));
        assert_eq!(expand_origin("$ORIGIN", o), Some("/opt/app/bin".into()));
        assert_eq!(expand_origin("/usr/$LIB/x", o), Some("/usr/lib/x86_64-linux-gnu/x".into()));
        assert_eq!(expand_origin("/usr/${LIB}", o), Some("/usr/lib/x86_64-linux-gnu".into()));
        assert_eq!(expand_origin("/usr/lib/", o), Some("/usr/lib".into()));
        assert_eq!(expand_origin("/", o), Some("/".into()));
        assert_eq!(expand_origin("/a/./b", o), Some("/a/b".into()));
        assert_eq!(expand_origin("$PLATFORM/lib", o), None);
        assert_eq!(expand_origin("${ORIGIN/lib", o), None);
        assert_eq!(expand_origin("lib", o), None, "relative: skipped");
        assert_eq!(expand_origin("", o), None);
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn search() -> LibSearch {
        LibSearch {
            conf_dirs: vec!["/conf1".into(), "/conf2".into()],
            default_dirs: vec!["/lib".into(), "/usr/lib".into()],
        }
    }

    fn strs(v: Vec<PathBuf>) -> Vec<String> {
        v.into_iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn library_search_order() {
        let (rp_lib, rp_exe, rp_none) = (s(&["/lib-rpath", "$ORIGIN/rp"]), s(&["/exe-rpath"]), s(&[]));
        let (run_lib, run_exe) = (s(&["$ORIGIN/../run"]), s(&["/exe-runpath"]));
        let lib_origin = Path::new("/opt/l");
        let exe_origin = Path::new("/opt/bin");
        let exe = ObjPaths { rpath: &rp_exe, runpath: &rp_none, origin: exe_origin };

        // No RUNPATH: own RPATH, then the loaders' RPATH, then ld.so.conf, then defaults.
        let lib = ObjPaths { rpath: &rp_lib, runpath: &rp_none, origin: lib_origin };
        assert_eq!(
            strs(library_dirs(&[lib.clone(), exe.clone()], false, &search())),
            ["/lib-rpath", "/opt/l/rp", "/exe-rpath", "/conf1", "/conf2", "/lib", "/usr/lib"]
        );
        // With a RUNPATH, DT_RPATH (its own and the loaders') is ignored.
        let lib = ObjPaths { rpath: &rp_lib, runpath: &run_lib, origin: lib_origin };
        assert_eq!(
            strs(library_dirs(&[lib, exe.clone()], false, &search())),
            ["/opt/l/../run", "/conf1", "/conf2", "/lib", "/usr/lib"]
        );
        // A loader with a RUNPATH passes on no RPATH, and its RUNPATH is not inherited.
        let exe2 = ObjPaths { rpath: &rp_exe, runpath: &run_exe, origin: exe_origin };
        let lib = ObjPaths { rpath: &rp_none, runpath: &rp_none, origin: lib_origin };
        assert_eq!(
            strs(library_dirs(&[lib, exe2.clone()], false, &search())),
            ["/conf1", "/conf2", "/lib", "/usr/lib"]
        );
        // The executable itself: its RUNPATH.
        assert_eq!(
            strs(library_dirs(&[exe2], false, &search())),
            ["/exe-runpath", "/conf1", "/conf2", "/lib", "/usr/lib"]
        );
        // -z nodeflib: neither ld.so.cache nor the defaults.
        assert_eq!(strs(library_dirs(&[exe], true, &search())), ["/exe-rpath"]);
    }

    #[test]
    fn ld_so_conf_with_includes() {
        let dir = std::env::temp_dir().join(format!("layers-unit-{}-conf", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(dir.join("ld.so.conf"), "# top\n/first/\ninclude conf.d/*.conf\nhwcap 0 nosegneg\n/last:/last2\n")
            .unwrap();
        fs::write(dir.join("conf.d/b.conf"), "/b # comment\n").unwrap();
        fs::write(dir.join("conf.d/a.conf"), "/a1\n/a2\n/first\n").unwrap();
        fs::write(dir.join("conf.d/.hidden.conf"), "/hidden\n").unwrap();
        fs::write(dir.join("conf.d/c.txt"), "/c\n").unwrap();
        let ls = LibSearch::from_conf(&dir.join("ld.so.conf")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(strs(ls.conf_dirs), ["/first", "/a1", "/a2", "/b", "/last", "/last2"]);
        assert_eq!(ls.default_dirs[0], Path::new("/lib/x86_64-linux-gnu"));
        assert!(LibSearch::from_conf(Path::new("/nonexistent/ld.so.conf")).unwrap().conf_dirs.is_empty());
    }

    #[test]
    fn ld_so_conf_include_patterns() {
        let dir = std::env::temp_dir().join(format!("layers-unit-{}-globs", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("inc")).unwrap();
        let conf = "include inc/*.conf\ninclude inc/x?.so\ninclude inc/[a-c]x inc/[!a-c]x\ninclude inc/[]]\n\
                    include inc/[lit\ninclude missing/*.conf inc/nothere.conf\n";
        fs::write(dir.join("ld.so.conf"), conf).unwrap();
        for (name, lib_dir) in [
            ("b.conf", "/b"),
            ("a.conf", "/a"),
            ("a.conf~", "/tilde"),
            (".hidden.conf", "/hidden"),
            ("x1.so", "/x1"),
            ("x12.so", "/x12"),
            ("bx", "/bx"),
            ("dx", "/dx"),
            ("]", "/bracket"),
            ("[lit", "/literal"),
        ] {
            fs::write(dir.join("inc").join(name), format!("{lib_dir}\n")).unwrap();
        }
        let ls = LibSearch::from_conf(&dir.join("ld.so.conf")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(strs(ls.conf_dirs), ["/a", "/b", "/x1", "/bx", "/dx", "/bracket", "/literal"]);
    }
}
