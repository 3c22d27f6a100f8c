//! Building a layer: the files copied into a temporary directory under the
//! layers' lock, synced, and renamed into place; and the same work as the
//! tutorial's shell commands.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use log::{debug, info, warn};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::cache::{in_layer, mount_points, remove_unmounted};
use super::closure::{LayerFile, Resolved, Why, DEFAULT_SEARCH_PATH};
use super::ldso::dedup;
use super::manifest::{Entry, Manifest};
use crate::error::{Error, Result, SysContext};

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

/// An exclusive flock on `<layers_dir>/.lock`, released when dropped.
pub(super) type LayersLock = Flock<File>;

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
            if let Err(e2) = mount_points().and_then(|mounts| remove_unmounted(&tmp, &mounts)) {
                warn!("layer {}: could not remove {}: {e2}", m.name, tmp.display());
            }
            return Err(e);
        }
        fs::rename(&tmp, &dir).sys(|| format!("rename {} to {}", tmp.display(), dir.display()))?;
        fsync_dir(&self.layers_dir)?;
        debug!("layer {}: {} files, {} empty dirs in {}", m.name, r.files.len(), r.dirs.len(), dir.display());
        Ok(dir)
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

    pub(super) fn lock(&self) -> Result<LayersLock> {
        let path = self.layers_dir.join(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .sys(|| format!("open {}", path.display()))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((file, Errno::EWOULDBLOCK)) => file,
            Err((_, e)) => return Err(Error::sys(format!("flock {}", path.display()), e)),
        };
        debug!("layers: waiting for {} (another host-setup is building)", path.display());
        loop {
            file = match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(locked) => return Ok(locked),
                Err((file, Errno::EINTR)) => file,
                Err((_, e)) => return Err(Error::sys(format!("flock {}", path.display()), e)),
            };
        }
    }

    /// Leftovers of builds that died (called with the lock held, so nobody is building).
    fn remove_temps(&self) -> Result<()> {
        let mut mounts = None;
        for entry in fs::read_dir(&self.layers_dir).sys(|| format!("read {}", self.layers_dir.display()))? {
            let entry = entry.sys(|| format!("read {}", self.layers_dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                debug!("layers: removing the leftover {}", entry.path().display());
                let mounts = match &mut mounts {
                    Some(m) => m,
                    None => mounts.insert(mount_points()?),
                };
                remove_unmounted(&entry.path(), mounts)?;
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
    use crate::layers::builtin;

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
