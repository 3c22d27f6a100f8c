//! Building a layer: its plan worked out once (the closure, the fingerprint,
//! whether it is cached, how each file goes in), then carried out: the plan's
//! files linked, reflinked or copied (place.rs) into a temporary directory under
//! the layers' lock, synced, and renamed into place.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use log::{debug, info, warn};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::cache::{fingerprint_of, in_layer};
use super::closure::{Resolved, DEFAULT_SEARCH_PATH};
use super::manifest::Manifest;
use super::memo;
use super::place::{self, place, Placement};
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

/// What the layers step does for one layer, worked out once by [`Builder::plan`]
/// with this host's real paths: the layer's directory (named by the fingerprint
/// of its inputs), the host files that go into it (each already open: the file
/// that was fingerprinted is the file that is copied) and whether that directory
/// is already there. [`Builder::build`] carries out exactly this value and
/// [`LayerPlan::shell`] prints exactly this value.
#[derive(Debug)]
pub struct LayerPlan {
    pub(super) name: String,
    pub(super) dir: PathBuf,
    pub(super) fingerprint: u64,
    pub(super) content: Resolved,
    pub(super) cached: bool,
    /// How each of `content.files` goes into the layer (link, reflink, copy).
    pub(super) placements: Vec<Placement>,
}

impl LayerPlan {
    /// The layer's name ("tools").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer's directory: `<layers_dir>/<name>-<fingerprint>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the directory was there, complete, when the plan was made (then
    /// [`Builder::build`] has nothing to do).
    pub fn cached(&self) -> bool {
        self.cached
    }

    /// Each file of the layer: the host path it is copied from (as found: on the
    /// search path, by the library search, from PT_INTERP) and its path inside
    /// the layer.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.content.files.iter().map(|f| (f.found.as_path(), f.dest.as_path()))
    }

    /// [`LayerPlan::files`] with how each goes into the layer.
    pub fn placed(&self) -> impl Iterator<Item = (&Path, &Path, Placement)> {
        self.files().zip(self.placements.iter().copied()).map(|((found, dest), how)| (found, dest, how))
    }
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

    /// What building `m` means on this host: every input found and read (the
    /// closure), the fingerprint, and whether that layer is already there.
    /// Nothing is written. Fails as [`Builder::ensure`] does, e.g.
    /// `stress: not found on the host; install the 'stress' package`.
    pub fn plan(&self, m: &Manifest) -> Result<LayerPlan> {
        let content = self.resolve(m)?;
        let fingerprint = fingerprint_of(m, &content.files);
        let dir = self.layer_path(m, fingerprint);
        let cached = dir.is_dir() && self.looks_complete(&content, &dir);
        let to = place::target(&self.layers_dir);
        let placements = content
            .files
            .iter()
            .map(|f| to.as_ref().map_or(Placement::Copy, |to| place::choose(&place::facts(&f.src), to)))
            .collect();
        debug!(
            "layer {}: {} input files, fingerprint {fingerprint:016x}, {} {}",
            m.name,
            content.files.len(),
            if cached { "cached at" } else { "to be built at" },
            dir.display()
        );
        Ok(LayerPlan { name: m.name.clone(), dir, fingerprint, content, cached, placements })
    }

    /// Makes `plan.dir()` exist with exactly the plan's files and returns it (and
    /// writes a full plan's memo, memo.rs): if
    /// it is not there, they are copied into a temporary directory under the
    /// layers' lock, synced and renamed into place. Safe to call from several
    /// processes at once.
    pub fn build(&self, plan: &LayerPlan) -> Result<PathBuf> {
        let (name, dir, r) = (&plan.name, &plan.dir, &plan.content);
        if dir.parent() != Some(self.layers_dir.as_path()) {
            return Err(crate::failed!(
                "layer {name}: {} is not in {}: a plan of another builder",
                dir.display(),
                self.layers_dir.display()
            ));
        }
        if plan.cached && dir.is_dir() {
            // A full plan of a cached layer: the next one can be made from its memo.
            memo::write(self, plan);
            return Ok(dir.clone());
        }
        // Root's alone: layers are opened by host-setup itself (open_tree) or by an
        // init that runs as the host's root; their own dirs inside stay 0755.
        crate::state::perms::ensure_dir(&self.layers_dir, crate::state::perms::PRIVATE_DIR)?;
        let _lock = self.lock()?;
        // Somebody else may have built it while we waited for the lock.
        if dir.is_dir() {
            if self.looks_complete(r, dir) {
                debug!("layer {name}: built meanwhile by another process at {}", dir.display());
                memo::write(self, plan);
                return Ok(dir.clone());
            }
            // A file is missing or has another size: somebody changed the layer by
            // hand (the files are synced before the rename, so a crash cannot).
            // Move it aside (the next build removes it) and build it again.
            warn!("layer {name}: {} is incomplete; building it again", dir.display());
            let broken = self.layers_dir.join(format!(".tmp-broken-{name}-{}", std::process::id()));
            fs::rename(dir, &broken).sys(|| format!("rename {} to {}", dir.display(), broken.display()))?;
        }
        self.remove_temps()?;
        let tmp = self.layers_dir.join(format!(".tmp-{name}-{:016x}-{}", plan.fingerprint, std::process::id()));
        info!("layer {name}: building {}", dir.display());
        if let Err(e) = self.write_layer(plan, &tmp) {
            if let Err(e2) = crate::state::remove_tree(&tmp) {
                warn!("layer {name}: could not remove {}: {e2}", tmp.display());
            }
            return Err(e);
        }
        fs::rename(&tmp, dir).sys(|| format!("rename {} to {}", tmp.display(), dir.display()))?;
        fsync_dir(&self.layers_dir)?;
        memo::write(self, plan);
        debug!("layer {name}: {} files, {} empty dirs in {}", r.files.len(), r.dirs.len(), dir.display());
        Ok(dir.clone())
    }

    /// [`Builder::plan`] for a layer about to be used: where the memo of the last
    /// full plan (memo.rs) is proved still valid, a plan of the cached layer made
    /// from it (~40 statx instead of ~300 calls), with no files listed: for
    /// [`Builder::build`], not for [`LayerPlan::shell`].
    pub fn plan_to_use(&self, m: &Manifest) -> Result<LayerPlan> {
        match memo::check(self, m) {
            Some(plan) => Ok(plan),
            None => self.plan(m),
        }
    }

    /// The layer directory for `m`: the cached one if its inputs have not changed,
    /// otherwise a freshly built one. Safe to call from several processes at once.
    pub fn ensure(&self, m: &Manifest) -> Result<PathBuf> {
        self.build(&self.plan_to_use(m)?)
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
        for entry in fs::read_dir(&self.layers_dir).sys(|| format!("read {}", self.layers_dir.display()))? {
            let entry = entry.sys(|| format!("read {}", self.layers_dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                debug!("layers: removing the leftover {}", entry.path().display());
                crate::state::remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    fn write_layer(&self, plan: &LayerPlan, tmp: &Path) -> Result<()> {
        let r = &plan.content;
        mkdir_0755(tmp)?;
        let mut made = vec![tmp.to_path_buf()];
        for d in &r.dirs {
            mkdir_p(tmp, d, &mut made)?;
        }
        for (f, &how) in r.files.iter().zip(&plan.placements) {
            if let Some(parent) = f.dest.parent() {
                mkdir_p(tmp, parent, &mut made)?;
            }
            let dst = in_layer(tmp, &f.dest);
            place(f, how, &dst)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::parse;

    #[test]
    fn plan_fails_like_ensure_and_writes_nothing() {
        let t = std::env::temp_dir().join(format!("layers-unit-{}-plan", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        fs::create_dir_all(t.join("empty")).unwrap();
        let mut b = Builder::new(t.join("layers"), t.join("empty"));
        b.search_path = vec![t.join("empty")];
        let m = parse("stressonly", "/usr/bin/stress  stress  stress\n").unwrap();
        let e = b.plan(&m).unwrap_err();
        let own = parse("own", "/escape_chroot  @escape_chroot\n").unwrap();
        let e2 = b.plan(&own).unwrap_err();
        let layers_made = t.join("layers").exists();
        fs::remove_dir_all(&t).unwrap();
        assert_eq!(e.to_string(), "stress: not found on the host; install the 'stress' package");
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e2.to_string(),
            format!("escape_chroot: not found in {}; build it with cargo build --release", t.join("empty").display())
        );
        assert!(!layers_made);
    }

    #[test]
    fn a_plan_is_built_only_by_its_own_builder() {
        let t = std::env::temp_dir().join(format!("layers-unit-{}-other", std::process::id()));
        let m = parse("unit", "/bin/sh  sh  dash\n").unwrap();
        let plan = Builder::new(t.join("a"), t.join("own")).plan(&m).unwrap();
        let e = Builder::new(t.join("b"), t.join("own")).build(&plan).unwrap_err();
        assert!(!t.exists());
        assert_eq!(
            e.to_string(),
            format!(
                "layer unit: {} is not in {}: a plan of another builder",
                plan.dir().display(),
                t.join("b").display()
            )
        );
    }

    #[test]
    fn plans_can_go_to_other_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<LayerPlan>();
        send_sync::<Builder>();
    }
}
