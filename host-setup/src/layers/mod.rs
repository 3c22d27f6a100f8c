//! Sections 1 and 2 of the tutorial: the image layers `myroot` and `tools`.
//!
//! The tutorial builds them by hand: `mkdir -p`, `cp -L` of each binary and
//! `ldd` + `cp -L` of every shared library it needs. This module does the same
//! work in-process (no `ldd`, no `cp`): each manifest entry is found on the host,
//! its symlinks are resolved, its ELF file is parsed with goblin (PT_INTERP and
//! DT_NEEDED, recursively, searched the way ld.so searches) and every file is
//! copied to the path where the host found it.
//!
//! A layer is cached: its directory is `<layers_dir>/<name>-<fingerprint>`, where
//! the fingerprint covers the manifest and the (path, size, mtime, inode, mode) of
//! every input file, closure included. An existing directory is used as it is; a
//! new one is built in a temporary directory under an flock and renamed into
//! place, so two host-setup processes (red and blue come up together) never see
//! a half-built layer. [`Builder::prune`] removes the versions nobody uses.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use log::{debug, info, warn};
use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};

/// The manifests of the tutorial's two layers, embedded so that the installed
/// static host-setup binary needs nothing from the source tree.
pub const MYROOT_MANIFEST: &str = include_str!("../../../layers/myroot.manifest");
pub const TOOLS_MANIFEST: &str = include_str!("../../../layers/tools.manifest");

/// Names of the built-in layers, bottom first (overlay: `lowerdir=tools:myroot`).
pub const BUILTIN: &[&str] = &["myroot", "tools"];

/// Where host commands are looked for, in this order (root's usual PATH).
pub const DEFAULT_SEARCH_PATH: &[&str] =
    &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// ld.so's configuration: the directories ldconfig puts into ld.so.cache.
const LD_SO_CONF: &str = "/etc/ld.so.conf";

/// ld.so's trusted directories on x86_64 Debian, searched last.
const DEFAULT_LIB_DIRS: &[&str] =
    &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// What `$LIB` expands to in DT_RPATH/DT_RUNPATH on x86_64 Debian.
const DOLLAR_LIB: &str = "lib/x86_64-linux-gnu";

/// Changes whenever the way a layer is built changes, so old caches are not reused.
const FORMAT: &str = "host-setup layer format 1";

// ---------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------

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

fn check_layer_name(name: &str) -> Result<()> {
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

// ---------------------------------------------------------------------------
// How ld.so searches for a library
// ---------------------------------------------------------------------------

/// The directories ld.so searches after an object's own DT_RPATH/DT_RUNPATH:
/// those of ld.so.cache (read from /etc/ld.so.conf, as ldconfig does; the cache
/// itself is not read, and no layer gets one), then the trusted defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LibSearch {
    pub conf_dirs: Vec<PathBuf>,
    pub default_dirs: Vec<PathBuf>,
}

impl LibSearch {
    /// This host's: /etc/ld.so.conf and x86_64 Debian's trusted directories.
    fn host() -> Result<LibSearch> {
        LibSearch::from_conf(Path::new(LD_SO_CONF))
    }

    /// `conf` and the files it includes; a missing conf file means no directories.
    fn from_conf(conf: &Path) -> Result<LibSearch> {
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
                    let pattern = if pattern.starts_with('/') {
                        pattern.to_string()
                    } else {
                        let base = path.parent().unwrap_or(Path::new("/"));
                        format!("{}/{pattern}", base.display())
                    };
                    for file in glob(&pattern) {
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

/// The paths matching `pattern` (`*`, `?`, `[...]` in any component), sorted, as
/// glob(3) gives them; '*' does not match a leading '.'.
fn glob(pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from(if pattern.starts_with('/') { "/" } else { "." })];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let wild = comp.contains(['*', '?', '[']);
        let mut next = Vec::new();
        for base in &found {
            if !wild {
                next.push(base.join(comp));
                continue;
            }
            let Ok(rd) = fs::read_dir(base) else { continue };
            let mut names: Vec<String> =
                rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
            names.sort();
            for name in names {
                if (!name.starts_with('.') || comp.starts_with('.')) && fnmatch(comp.as_bytes(), name.as_bytes()) {
                    next.push(base.join(name));
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.exists());
    found
}

fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some(b'[') => {
            let Some(&c) = name.first() else { return false };
            let mut i = 1;
            let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < pat.len() && (first || pat[i] != b']') {
                first = false;
                if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
                    matched |= pat[i] <= c && c <= pat[i + 2];
                    i += 3;
                } else {
                    matched |= pat[i] == c;
                    i += 1;
                }
            }
            if i >= pat.len() {
                // No closing ']': a literal '['.
                return c == b'[' && fnmatch(&pat[1..], &name[1..]);
            }
            matched != negate && fnmatch(&pat[i + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && fnmatch(&pat[1..], &name[1..]),
    }
}

/// The search-path parts of one loaded object, for [`library_dirs`].
#[derive(Debug, Clone)]
struct ObjPaths<'a> {
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
fn library_dirs(chain: &[ObjPaths], nodeflib: bool, search: &LibSearch) -> Vec<PathBuf> {
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
fn expand_origin(entry: &str, origin: &Path) -> Option<PathBuf> {
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

fn dedup(v: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
}

// ---------------------------------------------------------------------------
// Resolving a manifest into the files of a layer
// ---------------------------------------------------------------------------

/// Builds layers from manifests, with this host's binaries.
#[derive(Debug, Clone)]
pub struct Builder {
    /// Where layers are kept, e.g. /var/lib/host-setup/layers.
    pub layers_dir: PathBuf,
    /// Where the project's own binaries (`@escape_chroot`) are: next to host-setup.
    pub own_bin_dir: PathBuf,
    /// Where host commands are looked for, in order.
    pub search_path: Vec<PathBuf>,
}

/// One host file, opened once: the fingerprint's stat, the parsing and the copy
/// all see the same inode, even if the host replaces the path meanwhile.
#[derive(Debug)]
struct Source {
    real: PathBuf,
    file: File,
    meta: fs::Metadata,
    elf: Option<ElfInfo>,
    /// The `#!` line of a script.
    shebang: Option<String>,
}

/// What ld.so needs to know about an ELF object.
#[derive(Debug, Default)]
struct ElfInfo {
    /// EI_CLASS, EI_DATA and e_machine: ld.so skips libraries of another kind.
    kind: (u8, u8, u16),
    interp: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    soname: Option<String>,
    nodeflib: bool,
}

/// Why a file is in the layer (for the debug log and `explain`).
#[derive(Debug, Clone)]
enum Why {
    Entry,
    Interp { of: PathBuf },
    Needed { name: String, by: PathBuf },
}

#[derive(Debug)]
struct LayerFile {
    /// Absolute path inside the layer.
    dest: PathBuf,
    /// The host path as found (on PATH, by the library search, PT_INTERP).
    found: PathBuf,
    src: Rc<Source>,
    why: Why,
}

/// Everything that goes into one layer, and its fingerprint.
#[derive(Debug)]
struct Resolved {
    dirs: Vec<PathBuf>,
    files: Vec<LayerFile>,
    fingerprint: u64,
}

/// The identity of one input for the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputKey {
    pub dest: PathBuf,
    pub found: PathBuf,
    pub real: PathBuf,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
}

/// FNV-1a, 64 bits, over length-prefixed fields: the layer cache's key. Not a
/// defence against anyone (whoever can change the inputs is root anyway); it only
/// has to change when an input does.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes())
    }
    fn path(&mut self, p: &Path) {
        self.bytes(p.as_os_str().as_encoded_bytes())
    }
    fn num(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes())
    }
}

/// The fingerprint of a layer: the manifest (canonical text) and every input file.
fn fingerprint(manifest_text: &str, inputs: &[InputKey]) -> u64 {
    let mut h = Fnv::new();
    h.str(FORMAT);
    h.str(manifest_text);
    for k in inputs {
        h.path(&k.dest);
        h.path(&k.found);
        h.path(&k.real);
        for n in [k.size, k.mtime as u64, k.mtime_nsec as u64, k.dev, k.ino, u64::from(k.mode)] {
            h.num(n);
        }
    }
    h.0
}

/// The resolution of one manifest: host files read and parsed once each.
struct Resolver<'a> {
    builder: &'a Builder,
    search: LibSearch,
    /// Host files by real path.
    cache: HashMap<PathBuf, Rc<Source>>,
    files: Vec<LayerFile>,
    by_dest: HashMap<PathBuf, usize>,
    layer: &'a str,
}

/// One object of a process image, as ld.so would load it.
struct Obj {
    found: PathBuf,
    /// The names it is known by (the DT_NEEDED name or PT_INTERP path, and its DT_SONAME).
    names: Vec<String>,
    src: Rc<Source>,
    loader: Option<usize>,
    is_exe: bool,
}

impl<'a> Resolver<'a> {
    /// Reads a host file (following symlinks) unless it has been read already.
    fn load(&mut self, found: &Path) -> Result<Rc<Source>> {
        let real = fs::canonicalize(found).sys(|| format!("resolve {}", found.display()))?;
        if let Some(src) = self.cache.get(&real) {
            return Ok(src.clone());
        }
        let file = File::open(&real).sys(|| format!("open {}", real.display()))?;
        let meta = file.metadata().sys(|| format!("stat {}", real.display()))?;
        if !meta.is_file() {
            return Err(crate::failed!("{}: not a regular file", real.display()));
        }
        let mut head = [0u8; 128];
        let n = read_at_most(&file, &mut head, 0).sys(|| format!("read {}", real.display()))?;
        let head = &head[..n];
        let (elf, shebang) = if head.starts_with(b"\x7fELF") {
            (Some(parse_elf(&file, &real, meta.len())?), None)
        } else if let Some(rest) = head.strip_prefix(b"#!") {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            (None, Some(String::from_utf8_lossy(line).trim().to_string()))
        } else {
            (None, None)
        };
        let src = Rc::new(Source { real: real.clone(), file, meta, elf, shebang });
        self.cache.insert(real, src.clone());
        Ok(src)
    }

    /// Adds a file to the layer; the same host path twice is one file.
    fn add(&mut self, dest: PathBuf, found: &Path, src: Rc<Source>, why: Why) -> Result<()> {
        if let Some(&i) = self.by_dest.get(&dest) {
            let other = &self.files[i];
            if other.src.real == src.real {
                return Ok(());
            }
            return Err(crate::failed!(
                "layer {}: {} would be both {} and {}",
                self.layer,
                dest.display(),
                other.src.real.display(),
                src.real.display()
            ));
        }
        match &why {
            Why::Entry => debug!("layer {}: {} <- {}", self.layer, dest.display(), src.real.display()),
            Why::Interp { of } => debug!(
                "layer {}: {} <- {} (dynamic loader of {})",
                self.layer,
                dest.display(),
                src.real.display(),
                of.display()
            ),
            Why::Needed { name, by } => debug!(
                "layer {}: {} <- {} ({name}, needed by {})",
                self.layer,
                dest.display(),
                src.real.display(),
                by.display()
            ),
        }
        self.by_dest.insert(dest.clone(), self.files.len());
        self.files.push(LayerFile { dest, found: found.to_path_buf(), src, why });
        Ok(())
    }

    /// A host command: `name` on the search path (or an absolute path).
    fn find_command(&self, command: &str, package: &str) -> Result<PathBuf> {
        let missing = || crate::precondition!("{command}: not found on the host; install the '{package}' package");
        let candidates: Vec<PathBuf> = if command.starts_with('/') {
            vec![PathBuf::from(command)]
        } else {
            self.builder.search_path.iter().map(|d| d.join(command)).collect()
        };
        for p in candidates {
            match fs::metadata(&p) {
                Ok(m) if m.is_file() && m.mode() & 0o111 != 0 => return Ok(p),
                Ok(_) => debug!("{}: not an executable file, skipped", p.display()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {}
                Err(e) => return Err(e).sys(|| format!("stat {}", p.display())),
            }
        }
        Err(missing())
    }

    /// Adds an executable (or script) and, for an ELF file, everything ld.so
    /// would load with it, breadth first as ld.so does.
    fn add_with_closure(&mut self, dest: PathBuf, found: &Path) -> Result<()> {
        let src = self.load(found)?;
        self.add(dest, found, src.clone(), Why::Entry)?;
        let Some(info) = &src.elf else {
            if let Some(interpreter) = &src.shebang {
                debug!(
                    "layer {}: {} is a script for {interpreter}; it is copied as it is (its interpreter must come from this layer or one below)",
                    self.layer,
                    found.display(),
                );
            }
            return Ok(());
        };
        let mut objs =
            vec![Obj { found: found.to_path_buf(), names: vec![], src: src.clone(), loader: None, is_exe: true }];
        if let Some(interp) = &info.interp {
            let ipath = PathBuf::from(interp);
            let isrc = match fs::metadata(&ipath) {
                Ok(_) => self.load(&ipath)?,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(crate::precondition!(
                        "{interp} (the dynamic loader of {}): not found on the host",
                        found.display()
                    ))
                }
                Err(e) => return Err(e).sys(|| format!("stat {interp}")),
            };
            if isrc.elf.is_none() {
                return Err(crate::failed!("{interp} (the dynamic loader of {}): not an ELF file", found.display()));
            }
            let dest =
                normalize(&ipath).ok_or_else(|| crate::failed!("{interp}: PT_INTERP is not an absolute path"))?;
            self.add(dest, &ipath, isrc.clone(), Why::Interp { of: found.to_path_buf() })?;
            let mut names = vec![interp.clone()];
            names.extend(isrc.elf.as_ref().and_then(|e| e.soname.clone()));
            objs.push(Obj { found: ipath, names, src: isrc, loader: None, is_exe: false });
        }
        let mut i = 0;
        while i < objs.len() {
            let needed = objs[i].src.elf.as_ref().map(|e| e.needed.clone()).unwrap_or_default();
            for name in needed {
                if objs.iter().any(|o| o.names.contains(&name)) {
                    continue;
                }
                let (lfound, lsrc) = self.find_library(&name, &objs, i)?;
                // The same file under another name is loaded once (ld.so compares dev/inode).
                if let Some(o) = objs.iter_mut().find(|o| o.src.real == lsrc.real) {
                    o.names.push(name);
                    continue;
                }
                let dest = normalize(&lfound)
                    .ok_or_else(|| crate::failed!("{name}: found at a relative path {}", lfound.display()))?;
                self.add(dest, &lfound, lsrc.clone(), Why::Needed { name: name.clone(), by: objs[i].found.clone() })?;
                let mut names = vec![name];
                names.extend(lsrc.elf.as_ref().and_then(|e| e.soname.clone()));
                objs.push(Obj { found: lfound, names, src: lsrc, loader: Some(i), is_exe: false });
            }
            i += 1;
        }
        Ok(())
    }

    /// Where ld.so would find the DT_NEEDED `name` of `objs[i]`.
    fn find_library(&mut self, name: &str, objs: &[Obj], i: usize) -> Result<(PathBuf, Rc<Source>)> {
        let needer = &objs[i];
        let info = needer.src.elf.as_ref().expect("only ELF objects need libraries");
        let by = needer.found.display();
        if name.contains('/') {
            // A path, not a name: used as it is, no search.
            let p = PathBuf::from(name);
            if !p.is_absolute() {
                return Err(crate::failed!("{name}, needed by {by}: a relative path cannot be resolved"));
            }
            return match self.probe(&p, info.kind)? {
                Some(src) => Ok((p, src)),
                None => Err(crate::precondition!("{name}, needed by {by}: not found on the host")),
            };
        }
        // The object, then its loaders up to the executable.
        let mut origins = Vec::new();
        let mut k = Some(i);
        while let Some(j) = k {
            let o = &objs[j];
            // $ORIGIN: the executable's directory after symlinks (ld.so reads
            // /proc/self/exe); a library's is the directory it was found in.
            let origin = if o.is_exe { o.src.real.parent() } else { o.found.parent() };
            origins.push((j, origin.unwrap_or(Path::new("/")).to_path_buf()));
            k = o.loader;
        }
        let chain: Vec<ObjPaths> = origins
            .iter()
            .map(|(j, origin)| {
                let e = objs[*j].src.elf.as_ref().expect("loaded objects are ELF");
                ObjPaths { rpath: &e.rpath, runpath: &e.runpath, origin }
            })
            .collect();
        let dirs = library_dirs(&chain, info.nodeflib, &self.search);
        for dir in &dirs {
            let cand = dir.join(name);
            if let Some(src) = self.probe(&cand, info.kind)? {
                return Ok((cand, src));
            }
        }
        Err(crate::precondition!(
            "{name}, needed by {by}: not found in {}; install the package that provides it",
            join_paths(&dirs)
        ))
    }

    /// The file at `path` if ld.so would take it: it exists and is an ELF object of
    /// the same class and machine as the one that needs it.
    fn probe(&mut self, path: &Path, kind: (u8, u8, u16)) -> Result<Option<Rc<Source>>> {
        match fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::EACCES)) => {
                return Ok(None)
            }
            Err(e) => return Err(e).sys(|| format!("stat {}", path.display())),
        }
        let src = self.load(path)?;
        match &src.elf {
            Some(e) if e.kind == kind => Ok(Some(src)),
            _ => {
                debug!("library search: {} is not a matching ELF object, skipped", path.display());
                Ok(None)
            }
        }
    }
}

/// Reads what ld.so needs from an ELF file with goblin: the header, the program
/// headers, PT_INTERP, the PT_DYNAMIC entries and their string table. Only those
/// parts are read (pread), not the whole file: a cache hit reads a few KiB per
/// file instead of every byte of libc.
fn parse_elf(file: &File, path: &Path, len: u64) -> Result<ElfInfo> {
    use goblin::container::Ctx;
    use goblin::elf::dynamic::{Dynamic, DF_1_NODEFLIB, DT_RPATH, DT_RUNPATH};
    use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};
    use goblin::strtab::Strtab;

    let bad = |what: &str| crate::failed!("parse ELF {}: {what}", path.display());
    let goblin_err = |e: goblin::error::Error| crate::failed!("parse ELF {}: {e}", path.display());
    // A piece of the file; sizes are bounded so a corrupt file cannot make us allocate much.
    let read = |offset: u64, size: u64, what: &str| -> Result<Vec<u8>> {
        if size > 16 << 20 || !matches!(offset.checked_add(size), Some(end) if end <= len) {
            return Err(bad(&format!("{what} lies outside the file")));
        }
        let mut buf = vec![0u8; size as usize];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)
            .sys(|| format!("read {} ({what})", path.display()))?;
        Ok(buf)
    };

    let head = read(0, len.min(64), "the ELF header")?;
    let header = goblin::elf::Elf::parse_header(&head).map_err(goblin_err)?;
    let ctx = Ctx::new(header.container().map_err(goblin_err)?, header.endianness().map_err(goblin_err)?);
    let phnum = usize::from(header.e_phnum);
    let phdr_bytes = read(header.e_phoff, u64::from(header.e_phentsize) * phnum as u64, "the program headers")?;
    let mut phdrs = ProgramHeader::parse(&phdr_bytes, 0, phnum, ctx).map_err(goblin_err)?;

    let mut info = ElfInfo { kind: (header.e_ident[4], header.e_ident[5], header.e_machine), ..Default::default() };
    if let Some(ph) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let raw = read(ph.p_offset, ph.p_filesz, "PT_INTERP")?;
        let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
        info.interp = Some(String::from_utf8(raw.to_vec()).map_err(|_| bad("PT_INTERP is not UTF-8"))?);
    }
    let Some(dyn_ph) = phdrs.iter_mut().find(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(info); // static: nothing to load
    };
    let dyn_bytes = read(dyn_ph.p_offset, dyn_ph.p_filesz, "PT_DYNAMIC")?;
    // goblin finds the entries at p_offset of the bytes it is given: we give it the
    // segment alone. The other headers still map DT_STRTAB to its file offset.
    dyn_ph.p_offset = 0;
    let Some(dynamic) = Dynamic::parse(&dyn_bytes, &phdrs, ctx).map_err(goblin_err)? else {
        return Ok(info);
    };
    let strtab_bytes = read(dynamic.info.strtab as u64, dynamic.info.strsz as u64, "DT_STRTAB")?;
    let strtab = Strtab::parse(&strtab_bytes, 0, strtab_bytes.len(), 0).map_err(goblin_err)?;
    let string = |offset: u64| -> Result<String> {
        strtab.get_at(offset as usize).map(String::from).ok_or_else(|| bad("a dynamic entry points outside DT_STRTAB"))
    };
    for lib in dynamic.get_libraries(&strtab) {
        info.needed.push(lib.to_string());
    }
    for d in &dynamic.dyns {
        let list = match d.d_tag {
            DT_RPATH => &mut info.rpath,
            DT_RUNPATH => &mut info.runpath,
            _ => continue,
        };
        list.extend(string(d.d_val)?.split(':').filter(|s| !s.is_empty()).map(String::from));
    }
    if dynamic.info.soname != 0 {
        info.soname = Some(string(dynamic.info.soname as u64)?);
    }
    info.nodeflib = dynamic.info.flags_1 & DF_1_NODEFLIB != 0;
    Ok(info)
}

/// pread until `buf` is full or the file ends; the number of bytes read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `/a/./b/../c` -> `/a/c` (lexically: where the file lands inside the layer).
fn normalize(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return None,
        }
    }
    (out != Path::new("/")).then_some(out)
}

fn join_paths(v: &[PathBuf]) -> String {
    v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
}

/// `/a/b` inside the layer at `root`: `root/a/b`.
fn in_layer(root: &Path, dest: &Path) -> PathBuf {
    root.join(dest.strip_prefix("/").unwrap_or(dest))
}

// ---------------------------------------------------------------------------
// Building, caching, pruning
// ---------------------------------------------------------------------------

/// An exclusive flock on `<layers_dir>/.lock`, released when dropped.
struct LayersLock {
    _file: File,
}

impl Builder {
    /// A builder with the default search path.
    pub fn new(layers_dir: impl Into<PathBuf>, own_bin_dir: impl Into<PathBuf>) -> Builder {
        Builder {
            layers_dir: layers_dir.into(),
            own_bin_dir: own_bin_dir.into(),
            search_path: DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect(),
        }
    }

    /// The layer directory for `m`: the cached one if its inputs have not changed,
    /// otherwise a freshly built one. Safe to call from several processes at once.
    pub fn ensure(&self, m: &Manifest) -> Result<PathBuf> {
        let r = self.resolve(m)?;
        let dir = self.layer_path(m, r.fingerprint);
        if dir.is_dir() && self.looks_complete(&r, &dir) {
            debug!("layer {}: cached at {}", m.name, dir.display());
            return Ok(dir);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.layers_dir)
            .sys(|| format!("mkdir {}", self.layers_dir.display()))?;
        let _lock = self.lock()?;
        // Somebody else may have built it while we waited for the lock.
        if dir.is_dir() {
            if self.looks_complete(&r, &dir) {
                debug!("layer {}: built meanwhile by another process at {}", m.name, dir.display());
                return Ok(dir);
            }
            // A file is missing or has another size: somebody changed the layer by
            // hand (the files are synced before the rename, so a crash cannot).
            // Move it aside (the next build removes it) and build it again.
            warn!("layer {}: {} is incomplete; building it again", m.name, dir.display());
            let broken = self.layers_dir.join(format!(".tmp-broken-{}-{}", m.name, std::process::id()));
            fs::rename(&dir, &broken).sys(|| format!("rename {} to {}", dir.display(), broken.display()))?;
        }
        self.remove_temps()?;
        let tmp = self.layers_dir.join(format!(".tmp-{}-{:016x}-{}", m.name, r.fingerprint, std::process::id()));
        info!("layer {}: building {}", m.name, dir.display());
        if let Err(e) = self.write_layer(&r, &tmp) {
            if let Err(e2) = remove_tree(&tmp) {
                warn!("layer {}: could not remove {}: {e2}", m.name, tmp.display());
            }
            return Err(e);
        }
        fs::rename(&tmp, &dir).sys(|| format!("rename {} to {}", tmp.display(), dir.display()))?;
        fsync_dir(&self.layers_dir)?;
        debug!("layer {}: {} files, {} empty dirs in {}", m.name, r.files.len(), r.dirs.len(), dir.display());
        Ok(dir)
    }

    /// Removes every version of every layer in `layers_dir` (and leftovers of
    /// interrupted builds) except the directories in `keep`: pass the layers that
    /// running containers use and the ones just returned by [`Builder::ensure`].
    /// A directory with something mounted in it is never removed.
    pub fn prune(&self, keep: &[PathBuf]) -> Result<()> {
        if !self.layers_dir.is_dir() {
            return Ok(());
        }
        let keep: Vec<PathBuf> = keep.iter().map(|k| fs::canonicalize(k).unwrap_or_else(|_| k.clone())).collect();
        let _lock = self.lock()?;
        let base = fs::canonicalize(&self.layers_dir).sys(|| format!("resolve {}", self.layers_dir.display()))?;
        let mounts = crate::mountinfo::mount_points(&crate::mountinfo::read()?);
        for entry in fs::read_dir(&base).sys(|| format!("read {}", base.display()))? {
            let entry = entry.sys(|| format!("read {}", base.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(is_layer_dir_name(name) || name.starts_with(".tmp-")) {
                continue;
            }
            let path = base.join(name);
            if keep.contains(&path) {
                debug!("prune: keeping {}", path.display());
                continue;
            }
            if let Some(m) = mounts.iter().find(|m| m.starts_with(&path)) {
                return Err(crate::precondition!(
                    "remove old layer {}: {} is mounted; unmount it first",
                    path.display(),
                    m.display()
                ));
            }
            info!("prune: removing {}", path.display());
            remove_tree(&path)?;
        }
        Ok(())
    }

    /// The tutorial-style shell commands that build what [`Builder::ensure`] builds
    /// for `m` on this host, with the host paths resolved (for `--explain`).
    pub fn explain(&self, m: &Manifest) -> Result<Vec<String>> {
        let r = self.resolve(m)?;
        let dir = self.layer_path(m, r.fingerprint);
        let l = dir.display().to_string();
        let mut out = vec![format!("# layer {}: {} (what host-setup does in-process)", m.name, l)];
        let mut mkdirs: Vec<PathBuf> = r.dirs.clone();
        for f in &r.files {
            if let Some(p) = f.dest.parent() {
                if p != Path::new("/") {
                    mkdirs.push(p.to_path_buf());
                }
            }
        }
        dedup(&mut mkdirs);
        let all = mkdirs.clone();
        mkdirs.retain(|d| !all.iter().any(|o| o != d && o.starts_with(d)));
        let ml: Vec<String> = mkdirs.iter().map(|d| format!("{l}{}", d.display())).collect();
        out.push(format!("mkdir -p {}", ml.join(" ")));
        let (entries, closure): (Vec<&LayerFile>, Vec<&LayerFile>) =
            r.files.iter().partition(|f| matches!(f.why, Why::Entry));
        for f in &entries {
            out.push(format!("cp -L {} {l}{}", f.found.display(), f.dest.display()));
        }
        if !closure.is_empty() {
            let exes: Vec<String> = entries
                .iter()
                .filter(|f| f.src.elf.as_ref().is_some_and(|e| e.interp.is_some()))
                .map(|f| f.found.display().to_string())
                .collect();
            out.push(format!("# the shared libraries (ldd {}):", exes.join(" ")));
            for f in &closure {
                out.push(format!("cp -L {} {l}{}", f.found.display(), f.dest.display()));
            }
        }
        Ok(out)
    }

    /// The directory [`Builder::ensure`] would return for `m` on this host, without
    /// building anything (for `--explain`).
    pub fn dir_for(&self, m: &Manifest) -> Result<PathBuf> {
        Ok(self.layer_path(m, self.resolve(m)?.fingerprint))
    }

    fn layer_path(&self, m: &Manifest, fingerprint: u64) -> PathBuf {
        self.layers_dir.join(format!("{}-{:016x}", m.name, fingerprint))
    }

    /// Finds and reads every input of `m` and computes the fingerprint.
    fn resolve(&self, m: &Manifest) -> Result<Resolved> {
        check_layer_name(&m.name)?;
        let mut r = Resolver {
            builder: self,
            search: LibSearch::host()?,
            cache: HashMap::new(),
            files: Vec::new(),
            by_dest: HashMap::new(),
            layer: &m.name,
        };
        let mut dirs = Vec::new();
        for e in &m.entries {
            match e {
                Entry::Host { dest, command, package } => {
                    let found = r.find_command(command, package)?;
                    debug!("layer {}: {command} is {}", m.name, found.display());
                    r.add_with_closure(dest.clone(), &found)?;
                }
                Entry::Own { dest, binary } => {
                    let found = self.own_bin_dir.join(binary);
                    if !found.is_file() {
                        return Err(crate::precondition!(
                            "{binary}: not found in {}; build it with cargo build --release",
                            self.own_bin_dir.display()
                        ));
                    }
                    r.add_with_closure(dest.clone(), &found)?;
                }
                Entry::Dir { dest } => dirs.push(dest.clone()),
            }
        }
        let keys: Vec<InputKey> = r
            .files
            .iter()
            .map(|f| InputKey {
                dest: f.dest.clone(),
                found: f.found.clone(),
                real: f.src.real.clone(),
                size: f.src.meta.size(),
                mtime: f.src.meta.mtime(),
                mtime_nsec: f.src.meta.mtime_nsec(),
                dev: f.src.meta.dev(),
                ino: f.src.meta.ino(),
                mode: f.src.meta.mode(),
            })
            .collect();
        let fingerprint = fingerprint(&m.canonical_text(), &keys);
        debug!("layer {}: {} input files, fingerprint {fingerprint:016x}", m.name, keys.len());
        Ok(Resolved { dirs, files: r.files, fingerprint })
    }

    /// A cheap check of a cached layer: every file there with the right size.
    fn looks_complete(&self, r: &Resolved, dir: &Path) -> bool {
        let files_ok = r.files.iter().all(|f| {
            fs::symlink_metadata(in_layer(dir, &f.dest)).is_ok_and(|m| m.is_file() && m.len() == f.src.meta.len())
        });
        files_ok && r.dirs.iter().all(|d| in_layer(dir, d).is_dir())
    }

    fn lock(&self) -> Result<LayersLock> {
        let path = self.layers_dir.join(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .sys(|| format!("open {}", path.display()))?;
        let fd = file.as_raw_fd();
        // SAFETY: flock on an fd we own; it is released when the file is closed.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = Errno::last();
            if e != Errno::EWOULDBLOCK {
                return Err(Error::sys(format!("flock {}", path.display()), e));
            }
            debug!("layers: waiting for {} (another host-setup is building)", path.display());
            loop {
                // SAFETY: as above.
                if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
                    break;
                }
                let e = Errno::last();
                if e != Errno::EINTR {
                    return Err(Error::sys(format!("flock {}", path.display()), e));
                }
            }
        }
        Ok(LayersLock { _file: file })
    }

    /// Leftovers of builds that died (called with the lock held, so nobody is building).
    fn remove_temps(&self) -> Result<()> {
        for entry in fs::read_dir(&self.layers_dir).sys(|| format!("read {}", self.layers_dir.display()))? {
            let entry = entry.sys(|| format!("read {}", self.layers_dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                debug!("layers: removing the leftover {}", entry.path().display());
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    fn write_layer(&self, r: &Resolved, tmp: &Path) -> Result<()> {
        mkdir_0755(tmp)?;
        let mut made = vec![tmp.to_path_buf()];
        for d in &r.dirs {
            mkdir_p(tmp, d, &mut made)?;
        }
        for f in &r.files {
            if let Some(parent) = f.dest.parent() {
                mkdir_p(tmp, parent, &mut made)?;
            }
            let dst = in_layer(tmp, &f.dest);
            let real = f.src.real.display();
            debug!("copy {real} to {}", dst.display());
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&dst)
                .sys(|| format!("create {}", dst.display()))?;
            // From the fd opened during resolution: the inode the fingerprint describes.
            let mut from = &f.src.file;
            from.seek(SeekFrom::Start(0)).sys(|| format!("copy {real} to {}", dst.display()))?;
            let n = std::io::copy(&mut from, &mut out).sys(|| format!("copy {real} to {}", dst.display()))?;
            if n != f.src.meta.len() {
                return Err(crate::failed!(
                    "copy {real} to {}: {real} changed while being copied ({n} bytes, not {})",
                    dst.display(),
                    f.src.meta.len()
                ));
            }
            // The permission bits, without setuid/setgid/sticky (as `cp -L` does).
            let mode = f.src.meta.mode() & 0o777;
            out.set_permissions(fs::Permissions::from_mode(mode))
                .sys(|| format!("chmod {mode:o} {}", dst.display()))?;
            // Durable before the rename makes the layer visible: a cached layer is
            // never checked against its inputs again.
            out.sync_all().sys(|| format!("fsync {}", dst.display()))?;
        }
        for d in made.iter().rev() {
            fsync_dir(d)?;
        }
        Ok(())
    }
}

/// `<name>-<16 hex>`.
fn is_layer_dir_name(name: &str) -> bool {
    match name.rsplit_once('-') {
        Some((layer, hex)) => {
            check_layer_name(layer).is_ok() && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

fn mkdir_0755(p: &Path) -> Result<()> {
    fs::create_dir(p).sys(|| format!("mkdir {}", p.display()))?;
    // Explicitly, whatever the umask.
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).sys(|| format!("chmod 755 {}", p.display()))
}

/// Creates `root/rel` and its parents (mode 0755), recording the new ones.
fn mkdir_p(root: &Path, rel: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        if let Component::Normal(n) = c {
            p.push(n);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => return Err(Error::sys(format!("mkdir {}", p.display()), Errno::EEXIST)),
                Err(_) => {
                    mkdir_0755(&p)?;
                    made.push(p.clone());
                }
            }
        }
    }
    Ok(())
}

fn fsync_dir(p: &Path) -> Result<()> {
    File::open(p).and_then(|f| f.sync_all()).sys(|| format!("fsync {}", p.display()))
}

/// `rm -rf`, in-process; does not follow symlinks.
fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).sys(|| format!("remove {}", p.display())),
    }
}

/// The tutorial-style shell commands equivalent to building `m` into
/// `layer_dir`, without looking at this host (for docs; `Builder::explain` gives
/// the resolved version): `mkdir -p`, `cp -L`, and the `ldd` closure loop.
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

    fn key(dest: &str, size: u64, mtime: i64, ino: u64) -> InputKey {
        InputKey {
            dest: dest.into(),
            found: format!("/usr{dest}").into(),
            real: format!("/usr{dest}").into(),
            size,
            mtime,
            mtime_nsec: 0,
            dev: 2049,
            ino,
            mode: 0o100755,
        }
    }

    #[test]
    fn fingerprint_changes_with_every_input() {
        let keys = vec![key("/bin/ls", 100, 1000, 7), key("/lib/libc.so.6", 2000, 1000, 8)];
        let base = fingerprint("layer x\n/bin/ls ls coreutils\n", &keys);
        assert_eq!(base, fingerprint("layer x\n/bin/ls ls coreutils\n", &keys.clone()), "deterministic");
        let mut variants = vec![fingerprint("layer x\n/bin/ls ls coreutils2\n", &keys)];
        let changes: [fn(&mut InputKey); 8] = [
            |k| k.size += 1,
            |k| k.mtime += 1,
            |k| k.mtime_nsec += 1,
            |k| k.ino += 1,
            |k| k.dev += 1,
            |k| k.mode = 0o100700,
            |k| k.found = "/bin/other".into(),
            |k| k.dest = "/bin/other".into(),
        ];
        for change in changes {
            let mut k = keys.clone();
            change(&mut k[1]);
            variants.push(fingerprint("layer x\n/bin/ls ls coreutils\n", &k));
        }
        variants.push(fingerprint("layer x\n/bin/ls ls coreutils\n", &keys[..1]));
        for v in &variants {
            assert_ne!(*v, base);
        }
        let mut sorted = variants.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), variants.len(), "all different");
    }

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
    fn fnmatch_basics() {
        assert!(fnmatch(b"*.conf", b"libc.conf"));
        assert!(!fnmatch(b"*.conf", b"libc.conf~"));
        assert!(fnmatch(b"x?.so", b"x1.so"));
        assert!(fnmatch(b"[a-c]x", b"bx"));
        assert!(!fnmatch(b"[!a-c]x", b"bx"));
        assert!(fnmatch(b"[]]", b"]"));
    }

    #[test]
    fn helpers() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Some("/a/c".into()));
        assert_eq!(normalize(Path::new("a/b")), None);
        assert!(is_layer_dir_name("tools-0123456789abcdef"));
        assert!(!is_layer_dir_name("tools-0123"));
        assert!(!is_layer_dir_name(".lock"));
        assert_eq!(in_layer(Path::new("/L"), Path::new("/bin/ls")), Path::new("/L/bin/ls"));
    }

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
}
