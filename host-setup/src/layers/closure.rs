//! The resolver: a manifest's entries found on the host, with everything ld.so
//! would load for each (PT_INTERP, DT_NEEDED breadth first, searched as ld.so
//! searches), as the list of files that go into the layer.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use log::debug;

use super::build::Builder;
use super::elf::Source;
use super::ldso::{join_paths, library_dirs, LibSearch, ObjPaths};
use super::manifest::{check_layer_name, Entry, Manifest};
use super::memo::Witnesses;
use super::realpath::RealPaths;
use crate::error::{Result, SysContext};

/// Where host commands are looked for, in this order (root's usual PATH).
pub const DEFAULT_SEARCH_PATH: &[&str] =
    &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Why a file is in the layer (for the debug log and the shell commands).
#[derive(Debug, Clone)]
pub(super) enum Why {
    Entry,
    Interp { of: PathBuf },
    Needed { name: String, by: PathBuf },
}

#[derive(Debug)]
pub(super) struct LayerFile {
    /// Absolute path inside the layer.
    pub dest: PathBuf,
    /// The host path as found (on PATH, by the library search, PT_INTERP).
    pub found: PathBuf,
    pub src: Arc<Source>,
    pub why: Why,
}

/// Everything that goes into one layer: its empty directories and its files.
#[derive(Debug)]
pub(super) struct Resolved {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<LayerFile>,
    /// What the resolution looked at, for the memo (none in a plan made from one).
    pub witnesses: Option<Witnesses>,
}

/// The resolution of one manifest: host files read and parsed once each.
struct Resolver<'a> {
    builder: &'a Builder,
    search: LibSearch,
    /// Host files by real path.
    cache: HashMap<PathBuf, Arc<Source>>,
    paths: RealPaths,
    files: Vec<LayerFile>,
    by_dest: HashMap<PathBuf, usize>,
    layer: &'a str,
}

/// One object of a process image, as ld.so would load it.
struct Obj {
    found: PathBuf,
    /// The names it is known by (the DT_NEEDED name or PT_INTERP path, and its DT_SONAME).
    names: Vec<String>,
    src: Arc<Source>,
    loader: Option<usize>,
    is_exe: bool,
}

impl<'a> Resolver<'a> {
    /// Reads a host file (following symlinks) unless it has been read already.
    fn load(&mut self, found: &Path) -> Result<Arc<Source>> {
        let (real, _) = self.paths.locate(found).sys(|| format!("resolve {}", found.display()))?;
        if let Some(src) = self.cache.get(&real) {
            return Ok(src.clone());
        }
        let src = Arc::new(Source::open(real.clone())?);
        self.cache.insert(real, src.clone());
        Ok(src)
    }

    /// Adds a file to the layer; the same host path twice is one file.
    fn add(&mut self, dest: PathBuf, found: &Path, src: Arc<Source>, why: Why) -> Result<()> {
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
    fn find_command(&mut self, command: &str, package: &str) -> Result<PathBuf> {
        let missing = || crate::precondition!("{command}: not found on the host; install the '{package}' package");
        let candidates: Vec<PathBuf> = if command.starts_with('/') {
            vec![PathBuf::from(command)]
        } else {
            self.builder.search_path.iter().map(|d| d.join(command)).collect()
        };
        for p in candidates {
            match self.paths.locate(&p) {
                Ok((_, m)) if m.is_file() && m.mode() & 0o111 != 0 => return Ok(p),
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
            let isrc = match self.paths.locate(&ipath) {
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
    fn find_library(&mut self, name: &str, objs: &[Obj], i: usize) -> Result<(PathBuf, Arc<Source>)> {
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
    fn probe(&mut self, path: &Path, kind: (u8, u8, u16)) -> Result<Option<Arc<Source>>> {
        match self.paths.locate(path) {
            Ok((_, m)) if m.is_file() => {}
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

/// `/a/./b/../c` -> `/a/c` (lexically: where the file lands inside the layer).
pub(super) fn normalize(p: &Path) -> Option<PathBuf> {
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

impl Builder {
    /// Finds and reads every input of `m`.
    pub(super) fn resolve(&self, m: &Manifest) -> Result<Resolved> {
        check_layer_name(&m.name)?;
        let began = std::time::SystemTime::now();
        let mut r = Resolver {
            builder: self,
            search: LibSearch::host()?,
            cache: HashMap::new(),
            paths: RealPaths::default(),
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
                    if !matches!(r.paths.locate(&found), Ok((_, m)) if m.is_file()) {
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
        let (looked_in, found) = r.paths.answers();
        let key = super::memo::key(self, m, &r.search);
        let witnesses = Witnesses::collect(began, key, &looked_in, &found);
        Ok(Resolved { dirs, files: r.files, witnesses: Some(witnesses) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Some("/a/c".into()));
        assert_eq!(normalize(Path::new("a/b")), None);
    }
}
