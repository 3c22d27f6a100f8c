//! A layer's manifest (`layers/<name>.manifest`): what goes where in the layer.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// The manifests of the tutorial's two layers, embedded so that the installed
/// static host-setup binary needs nothing from the source tree.
pub const MYROOT_MANIFEST: &str = include_str!("../../../layers/myroot.manifest");
pub const TOOLS_MANIFEST: &str = include_str!("../../../layers/tools.manifest");

/// Names of the built-in layers, bottom first (overlay: `lowerdir=tools:myroot`).
pub const BUILTIN: &[&str] = &["myroot", "tools"];

/// A layer's contents, as written in `layers/<name>.manifest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// One line of a manifest. `dest` is the absolute path inside the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `/bin/ping  ping  iputils-ping`: a host command (a name looked up on the
    /// search path, or an absolute host path), copied with its library closure.
    Host { dest: PathBuf, command: String, package: String },
    /// `/escape_chroot  @escape_chroot`: one of this project's own binaries.
    Own { dest: PathBuf, binary: String },
    /// `/proc/`: an empty directory.
    Dir { dest: PathBuf },
}

impl Entry {
    pub fn dest(&self) -> &Path {
        match self {
            Entry::Host { dest, .. } | Entry::Own { dest, .. } | Entry::Dir { dest } => dest,
        }
    }
}

impl fmt::Display for Entry {
    /// The entry in manifest syntax, without comments or padding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Host { dest, command, package } => {
                write!(f, "{} {command} {package}", dest.display())
            }
            Entry::Own { dest, binary } => write!(f, "{} @{binary}", dest.display()),
            Entry::Dir { dest } => write!(f, "{}/", dest.display()),
        }
    }
}

impl Manifest {
    /// The manifest in canonical form: one entry a line, no comments. This is what
    /// the fingerprint covers, so editing a comment does not rebuild a layer.
    pub fn canonical_text(&self) -> String {
        let mut s = format!("layer {}\n", self.name);
        for e in &self.entries {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s
    }
}

/// The built-in manifest called `name` ("myroot" or "tools").
pub fn builtin(name: &str) -> Option<Manifest> {
    let text = match name {
        "myroot" => MYROOT_MANIFEST,
        "tools" => TOOLS_MANIFEST,
        _ => return None,
    };
    Some(parse(name, text).expect("the built-in manifests are valid (unit-tested)"))
}

/// Parses a manifest (format: see layers/myroot.manifest). Errors name the
/// manifest and the line: `tools.manifest line 4: ...`.
pub fn parse(name: &str, text: &str) -> Result<Manifest> {
    check_layer_name(name)?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut lines: Vec<usize> = Vec::new(); // line number of each entry
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let err = |msg: String| crate::failed!("{name}.manifest line {n}: {msg}");
        // A comment starts at a '#' that begins a field.
        let mut fields: Vec<&str> = Vec::new();
        for f in raw.split_whitespace() {
            if f.starts_with('#') {
                break;
            }
            fields.push(f);
        }
        if fields.is_empty() {
            continue;
        }
        let dest_text = fields[0];
        let is_dir = dest_text.len() > 1 && dest_text.ends_with('/');
        let path_text = if is_dir { &dest_text[..dest_text.len() - 1] } else { dest_text };
        let dest = check_dest(path_text).map_err(|m| err(format!("{dest_text}: {m}")))?;
        let entry = match (is_dir, &fields[1..]) {
            (true, []) => Entry::Dir { dest },
            (true, _) => return Err(err(format!("{dest_text}: a directory entry takes no other field"))),
            (false, []) => {
                return Err(err(format!(
                    "{dest_text}: missing source: expected `<path> <command> <package>`, `<path> @<binary>` or `<dir>/`"
                )))
            }
            (false, [own]) if own.starts_with('@') => {
                let binary = &own[1..];
                if binary.is_empty()
                    || !binary.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                    || binary.starts_with('.')
                {
                    return Err(err(format!("{own}: not a binary name (letters, digits, '_', '.', '-')")));
                }
                Entry::Own { dest, binary: binary.to_string() }
            }
            (false, [own, ..]) if own.starts_with('@') => {
                return Err(err(format!("{own}: an own binary takes no package field")))
            }
            (false, [command]) => return Err(err(format!("{command}: missing the debian package that provides it"))),
            (false, [command, package]) => {
                check_command(command).map_err(|m| err(format!("{command}: {m}")))?;
                check_package(package).map_err(|m| err(format!("{package}: {m}")))?;
                Entry::Host { dest, command: command.to_string(), package: package.to_string() }
            }
            (false, [_, _, extra, ..]) => {
                return Err(err(format!("{extra}: unexpected field (at most 3: <path> <command> <package>)")))
            }
        };
        // No two entries for one path, and no file where another entry needs a directory.
        for (k, other) in entries.iter().enumerate() {
            let (a, b) = (entry.dest(), other.dest());
            if a == b {
                return Err(err(format!("{}: already listed on line {}", a.display(), lines[k])));
            }
            let file_over =
                |file: &Entry, under: &Path| !matches!(file, Entry::Dir { .. }) && under.starts_with(file.dest());
            if file_over(other, a) || file_over(&entry, b) {
                return Err(err(format!(
                    "{} and {} (line {}): one is a file and would have to be a directory",
                    a.display(),
                    b.display(),
                    lines[k]
                )));
            }
        }
        entries.push(entry);
        lines.push(n);
    }
    if entries.is_empty() {
        return Err(crate::failed!("{name}.manifest: no entries"));
    }
    Ok(Manifest { name: name.to_string(), entries })
}

pub(super) fn check_layer_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(crate::failed!("{name:?}: not a layer name (letters, digits, '_', '.', '-')"))
    }
}

/// An absolute, normalised path inside the layer, not the layer's root itself.
fn check_dest(text: &str) -> std::result::Result<PathBuf, String> {
    let Some(rest) = text.strip_prefix('/') else {
        return Err("not an absolute path".into());
    };
    if rest.is_empty() {
        return Err("the layer's root is not an entry".into());
    }
    for comp in rest.split('/') {
        match comp {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("'{comp}' is not allowed in a layer path")),
            _ => {}
        }
    }
    Ok(PathBuf::from(text))
}

fn check_command(cmd: &str) -> std::result::Result<(), String> {
    if cmd.contains('/') {
        if !cmd.starts_with('/') {
            return Err("a command is a name on PATH or an absolute path".into());
        }
        check_dest(cmd).map(|_| ())
    } else if cmd == "." || cmd == ".." {
        Err("not a command name".into())
    } else {
        Ok(())
    }
}

/// Debian policy: lower-case letters, digits, '+', '-', '.'; at least two
/// characters, starting with a letter or digit.
fn check_package(pkg: &str) -> std::result::Result<(), String> {
    let mut chars = pkg.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok && pkg.len() >= 2 && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)) {
        Ok(())
    } else {
        Err("not a debian package name".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text(r: Result<Manifest>) -> String {
        r.expect_err("should not parse").to_string()
    }

    #[test]
    fn builtin_manifests_parse() {
        let m = builtin("myroot").unwrap();
        assert_eq!(m.name, "myroot");
        let dests: Vec<_> = m.entries.iter().map(|e| e.dest().display().to_string()).collect();
        assert_eq!(dests, ["/bin/ls", "/bin/mkdir", "/bin/mount", "/bin/ps", "/bin/sh", "/escape_chroot", "/proc"]);
        assert_eq!(m.entries[4], Entry::Host { dest: "/bin/sh".into(), command: "sh".into(), package: "dash".into() });
        assert_eq!(m.entries[5], Entry::Own { dest: "/escape_chroot".into(), binary: "escape_chroot".into() });
        assert_eq!(m.entries[6], Entry::Dir { dest: "/proc".into() });
        let t = builtin("tools").unwrap();
        let dests: Vec<_> = t.entries.iter().map(|e| e.dest().display().to_string()).collect();
        assert_eq!(
            dests,
            ["/bin/hostname", "/bin/ping", "/bin/rm", "/bin/umount", "/usr/bin/stress", "/usr/bin/which"]
        );
        assert!(builtin("nope").is_none());
        for name in BUILTIN {
            assert!(builtin(name).is_some());
        }
    }

    #[test]
    fn parse_good_lines_and_comments() {
        let m = parse(
            "x",
            "# a comment\n\n  /bin/a   a  pkg-a   # trailing comment\n/own @tool\n/d/e/\n/abs  /usr/bin/true  coreutils\n",
        )
        .unwrap();
        assert_eq!(
            m.entries,
            vec![
                Entry::Host { dest: "/bin/a".into(), command: "a".into(), package: "pkg-a".into() },
                Entry::Own { dest: "/own".into(), binary: "tool".into() },
                Entry::Dir { dest: "/d/e".into() },
                Entry::Host { dest: "/abs".into(), command: "/usr/bin/true".into(), package: "coreutils".into() },
            ]
        );
        assert_eq!(m.canonical_text(), "layer x\n/bin/a a pkg-a\n/own @tool\n/d/e/\n/abs /usr/bin/true coreutils\n");
        // The canonical text round-trips.
        assert_eq!(parse("x", &m.canonical_text().replacen("layer x\n", "", 1)).unwrap(), m);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases = [
            ("/a a pk\nbin/b b pk\n", "x.manifest line 2: bin/b: not an absolute path"),
            ("\n\n/a\n", "x.manifest line 3: /a: missing source"),
            ("/a a\n", "x.manifest line 1: a: missing the debian package"),
            ("/a a pk q\n", "x.manifest line 1: q: unexpected field"),
            ("/a @b pk\n", "x.manifest line 1: @b: an own binary takes no package field"),
            ("/a @\n", "x.manifest line 1: @: not a binary name"),
            ("/a a Bad_Pkg\n", "x.manifest line 1: Bad_Pkg: not a debian package name"),
            ("/d/ x\n", "x.manifest line 1: /d/: a directory entry takes no other field"),
            ("/a/../b b pk\n", "x.manifest line 1: /a/../b: '..' is not allowed"),
            ("/a//b b pk\n", "x.manifest line 1: /a//b: empty path component"),
            ("/ a pk\n", "x.manifest line 1: /: the layer's root is not an entry"),
            ("/d// \n", "x.manifest line 1: /d//: empty path component"),
            ("/a a pk\n# c\n/a b pk\n", "x.manifest line 3: /a: already listed on line 1"),
            ("/a a pk\n/a/b b pk\n", "x.manifest line 2: /a/b and /a (line 1): one is a file"),
            ("/a a pk\n/a/b/\n", "x.manifest line 2: /a/b and /a (line 1): one is a file"),
            ("/a rel/cmd pk\n", "x.manifest line 1: rel/cmd: a command is a name on PATH or an absolute path"),
            ("# nothing\n", "x.manifest: no entries"),
        ];
        for (text, want) in cases {
            let got = err_text(parse("x", text));
            assert!(got.starts_with(want), "{text:?}: got {got:?}, want {want:?}...");
            assert!(!got.ends_with('.'), "{got}");
        }
        // A directory may hold files of other entries.
        parse("x", "/d/\n/d/f f pk\n").unwrap();
        assert!(err_text(parse("../x", "/a a pk\n")).contains("not a layer name"));
    }
}
