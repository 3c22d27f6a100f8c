//! The run options that go with images, for every container: `-e/--env`,
//! `--env-file`, `-w/--workdir`, `-u/--user`, `--entrypoint`, `-v/--volume`,
//! `--tmpfs`, `--read-only`, and `--image`'s config defaults under them.
//!
//! Docker's rules, in the order `build` applies them:
//! - the command is Entrypoint + Cmd: a command after `--` replaces Cmd;
//!   `--entrypoint E` replaces Entrypoint and clears Cmd (`--entrypoint ''`: none);
//! - the environment: host-setup's own (PATH, HOME=/, TERM), then the image's Env,
//!   then `--env-file` lines, then `-e` (the later wins; `-e K` takes the host's
//!   value, and is left out when the host has none); HOME from the user's
//!   /etc/passwd entry when nothing set it;
//! - the user: `-u` else the image's User: `UID[:GID]` numbers, or names looked up
//!   in /etc/passwd and /etc/group of the container's own layers (never the
//!   host's); a user found there without a group gets its entry's gid and the
//!   groups that list it (runc's GetExecUser);
//! - `-v`/`--tmpfs`/`--read-only` become MOUNT and ROOT_READONLY records
//!   (init/src/spec.rs) in `Inside`, the same struct an OCI bundle fills.
//!
//! Every value is checked here, before anything on the host is made.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Inside, Layer, Mount, Spec, User};
use crate::error::Result;
use crate::image::config_defaults::{self, ResolvedImage};
use crate::state::Paths;
use crate::usage;

/// The options as typed (main.rs's `up` and `run`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub image: Option<String>,
    pub env: Vec<String>,
    pub env_file: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub volumes: Vec<String>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
}

/// The image a container runs: what `image rm` checks, what status shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageUse {
    /// As the store names it: `docker.io/library/busybox:latest`.
    pub reference: String,
    /// `sha256:...` of its manifest.
    pub manifest: String,
    /// The config's ExposedPorts: `80/tcp`.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

/// What the run options add to a container (Spec::run).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageUse>,
    /// K=V on top of contract::container_env(), in order (the later wins).
    #[serde(default)]
    pub env: Vec<String>,
    /// Mounts (volumes, tmpfs), the user, the cwd, a read-only root.
    #[serde(default)]
    pub inside: Inside,
}

/// Paths a volume or a tmpfs may not cover: the kernel's own filesystems init sets up.
const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The spec of container `name`: Spec::new's, then the run options and the
/// image. `foreground` (`run`): an empty command becomes /bin/sh.
pub fn build(name: &str, opts: &super::Options, o: &RunOptions, paths: &Paths, foreground: bool) -> Result<Spec> {
    let mut opts = opts.clone();
    if foreground && opts.command.is_empty() && o.image.is_none() && o.entrypoint.is_none() {
        opts.command = vec!["/bin/sh".into()];
    }
    let mut spec = Spec::new(name, &opts)?;
    // Everything typed first, then the image (opening the store makes its dir).
    let mut checked = check(o, &|k| std::env::var(k).ok())?;
    let image = o.image.as_deref().map(|r| config_defaults::resolve(paths, r)).transpose()?;
    apply(&mut spec, o, &mut checked, image)?;
    if spec.command.is_empty() && foreground {
        spec.command = vec!["/bin/sh".into()];
    }
    Ok(spec)
}

/// The typed options, checked (no image needed).
#[derive(Debug, Default)]
struct Checked {
    env: Vec<String>,
    mounts: Vec<Mount>,
    workdir: Option<String>,
}

fn check(o: &RunOptions, host_env: &dyn Fn(&str) -> Option<String>) -> Result<Checked> {
    let mut c = Checked::default();
    for f in &o.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| usage!("--env-file {}: {}", f.display(), crate::error::io_text(&e)))?;
        c.env.extend(parse_env_file(&text).map_err(|e| usage!("--env-file {}: {e}", f.display()))?);
    }
    for e in &o.env {
        c.env.extend(parse_env(e, host_env)?);
    }
    if let Some(w) = &o.workdir {
        c.workdir = Some(absolute("-w", w)?);
    }
    for v in &o.volumes {
        c.mounts.push(parse_volume(v)?);
    }
    for t in &o.tmpfs {
        c.mounts.push(parse_tmpfs(t)?);
    }
    if o.read_only {
        // Podman's --read-only-tmpfs: what programs must write stays writable.
        for (dir, mode) in [("/tmp", "1777"), ("/run", "755")] {
            if !c.mounts.iter().any(|m| m.target == dir) {
                c.mounts.push(tmpfs_mount(dir, libc::MS_NOSUID | libc::MS_NODEV, format!("mode={mode}")));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &c.mounts {
        if !seen.insert(m.target.as_str()) {
            return Err(usage!("two mounts on {}: give one -v or --tmpfs per directory", m.target));
        }
    }
    Ok(c)
}

fn apply(spec: &mut Spec, o: &RunOptions, c: &mut Checked, image: Option<ResolvedImage>) -> Result<()> {
    let cfg = image.as_ref().map(|i| i.config.clone()).unwrap_or_default();
    // The image's layers replace the built-in tools and myroot; --layer dirs stay on top.
    if let Some(i) = &image {
        spec.layers.retain(|l| !matches!(l, Layer::Builtin(_)));
        spec.layers.extend(i.dirs_top_first.iter().cloned().map(Layer::Dir));
    }
    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => cfg.entrypoint.clone(),
    };
    let cmd = match (spec.command.is_empty(), &o.entrypoint) {
        (false, _) => spec.command.clone(),
        (true, Some(_)) => vec![],
        (true, None) => cfg.cmd.clone(),
    };
    spec.command = [entrypoint, cmd].concat();

    let mut inside = Inside { mounts: std::mem::take(&mut c.mounts), root_readonly: o.read_only, ..Default::default() };
    let lower: Vec<PathBuf> =
        spec.layers.iter().filter_map(|l| if let Layer::Dir(d) = l { Some(d.clone()) } else { None }).collect();
    let mut env: Vec<String> = cfg.env.clone();
    env.append(&mut c.env);
    if let Some(u) = o.user.as_deref().or(cfg.user.as_deref()) {
        let found = config_defaults::user(&lower, u)?;
        if spec.userns && found.uid >= crate::userns::IDS {
            return Err(usage!(
                "-u {u}: uid {} is outside the user namespace's ids 0-{} (or give --no-userns)",
                found.uid,
                crate::userns::IDS - 1
            ));
        }
        inside.user = User { uid: found.uid, gid: found.gid, umask: None, additional_gids: found.groups };
        if let Some(home) = found.home.filter(|_| !env.iter().any(|e| e.starts_with("HOME="))) {
            env.push(format!("HOME={home}"));
        }
        // Docker's non-root user: the bounding set only, nothing effective.
        if found.uid != 0 && !spec.privileged {
            let b = init::caps::DEFAULT_MASK;
            inside.caps = Some(super::Caps { bounding: b, effective: 0, permitted: 0, inheritable: 0, ambient: 0 });
        }
    }
    inside.cwd = match (&c.workdir, &cfg.working_dir) {
        (Some(w), _) => w.clone(),
        // Docker takes a relative WorkingDir from /.
        (None, Some(w)) => normalize(&format!("/{}", w.trim_start_matches('/'))).unwrap_or_default(),
        (None, None) => String::new(),
    };
    let image_use = image.map(|i| ImageUse {
        reference: i.reference,
        manifest: i.manifest.to_string(),
        exposed_ports: i.config.exposed_ports,
    });
    let run = RunSpec { image: image_use, env, inside };
    spec.run = (run != RunSpec::default()).then(|| Box::new(run));
    Ok(())
}

/// `-e K=V`, or `-e K`: the host's value (nothing if the host has none, as Docker).
pub fn parse_env(e: &str, host_env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let key = e.split('=').next().unwrap_or("");
    if key.is_empty() || key.contains('\0') || e.contains('\0') {
        return Err(usage!("-e {e:?}: give NAME=VALUE or NAME (the host's value)"));
    }
    if e.contains('=') {
        return Ok(Some(e.to_string()));
    }
    Ok(host_env(e).map(|v| format!("{e}={v}")))
}

/// An env file: `K=V` lines; blank lines and `#` comments skipped; a line
/// without `=` is refused (Docker would take the host's value: say it on -e).
pub fn parse_env_file(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.split_once('=') {
            Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => out.push(l.to_string()),
            _ => return Err(format!("line {}: {line:?} is not NAME=VALUE", n + 1)),
        }
    }
    Ok(out)
}

/// An absolute path inside the container, normalized ("/a/b", no "..").
fn absolute(opt: &str, p: &str) -> Result<String> {
    if !p.starts_with('/') {
        return Err(usage!("{opt} {p}: not an absolute path inside the container (e.g. /data)"));
    }
    normalize(p).ok_or_else(|| usage!("{opt} {p}: no \"..\" in a container path"))
}

fn normalize(p: &str) -> Option<String> {
    let mut parts = vec![];
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// A container path a mount may cover: not "/", not /proc, /sys, /dev or below.
fn mount_target(opt: &str, p: &str) -> Result<String> {
    let t = absolute(opt, p)?;
    if t == "/" {
        return Err(usage!("{opt} {p}: cannot mount over the root (see --read-only)"));
    }
    if let Some(k) = KERNEL_DIRS.iter().find(|k| t == **k || t.starts_with(&format!("{k}/"))) {
        return Err(usage!("{opt} {p}: {k} is the kernel's, set up by init; pick another directory"));
    }
    Ok(t)
}

/// `-v HOSTDIR:DIR[:ro|:rw]`: a bind mount of an existing absolute host path.
pub fn parse_volume(v: &str) -> Result<Mount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts[..] {
        [s, d] => (s, d, "rw"),
        [s, d, m] => (s, d, m),
        _ => return Err(usage!("-v {v}: give HOSTDIR:DIR or HOSTDIR:DIR:ro")),
    };
    if !src.starts_with('/') {
        return Err(usage!("-v {v}: the host path {src:?} is not absolute (named volumes are not supported)"));
    }
    let source = std::fs::canonicalize(src).map_err(|e| usage!("-v {v}: {src}: {}", crate::error::io_text(&e)))?;
    let target = mount_target("-v", dst)?;
    let ro = match mode {
        "ro" => libc::MS_RDONLY,
        "rw" => 0,
        m => return Err(usage!("-v {v}: unknown mode {m:?} (ro or rw)")),
    };
    Ok(Mount {
        source: source.display().to_string(),
        target,
        fstype: String::new(),
        flags: libc::MS_BIND | libc::MS_REC | ro,
        data: String::new(),
        propagation: 0,
    })
}

fn tmpfs_mount(target: &str, flags: u64, data: String) -> Mount {
    Mount { source: "tmpfs".into(), target: target.into(), fstype: "tmpfs".into(), flags, data, propagation: 0 }
}

/// `--tmpfs DIR[:OPTS]`: Docker's defaults (nosuid, nodev, noexec); OPTS among
/// size=N[k|m|g|%], mode=OCTAL, ro, rw, exec, noexec, suid, nosuid, dev, nodev.
pub fn parse_tmpfs(t: &str) -> Result<Mount> {
    let (dir, opts) = t.split_once(':').unwrap_or((t, ""));
    let target = mount_target("--tmpfs", dir)?;
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mut data = vec![];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "exec" => flags &= !libc::MS_NOEXEC,
            "noexec" => flags |= libc::MS_NOEXEC,
            "suid" => flags &= !libc::MS_NOSUID,
            "nosuid" => flags |= libc::MS_NOSUID,
            "dev" => flags &= !libc::MS_NODEV,
            "nodev" => flags |= libc::MS_NODEV,
            _ if o.strip_prefix("size=").is_some_and(valid_size) => data.push(o.to_string()),
            _ if o.strip_prefix("mode=").is_some_and(|m| !m.is_empty() && u32::from_str_radix(m, 8).is_ok()) => {
                data.push(o.to_string())
            }
            _ => {
                return Err(usage!(
                    "--tmpfs {t}: unknown option {o:?} (size=64m, mode=1777, ro, rw, exec, noexec, suid, nosuid, dev, nodev)"
                ))
            }
        }
    }
    Ok(tmpfs_mount(&target, flags, data.join(",")))
}

/// tmpfs's size=: a number with k, m, g (either case) or %.
fn valid_size(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(&s[digits..], "" | "k" | "K" | "m" | "M" | "g" | "G" | "%")
}

/// A bind mount (a volume) rather than a filesystem of its own.
pub fn is_volume(m: &Mount) -> bool {
    m.flags & libc::MS_BIND != 0 && m.fstype.is_empty()
}

#[cfg(test)]
#[path = "runopts_tests.rs"]
mod tests;
