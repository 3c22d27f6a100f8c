//! The run options as `status`, `status --json` and `--explain` show them.

use std::path::Path;

use serde::Serialize;

use super::runopts::{is_volume, ImageUse, RunSpec};

/// `status --json`'s "run": the image and the options, one field each.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub image: Option<ImageUse>,
    pub env: Vec<String>,
    /// "UID:GID" (the main process's).
    pub user: Option<String>,
    pub groups: Vec<u32>,
    pub workdir: Option<String>,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<Tmpfs>,
    pub read_only: bool,
}

#[derive(Debug, Serialize)]
pub struct Volume {
    pub host: String,
    pub dir: String,
    pub read_only: bool,
}

#[derive(Debug, Serialize)]
pub struct Tmpfs {
    pub dir: String,
    pub options: String,
}

fn user_given(r: &RunSpec) -> bool {
    let u = &r.inside.user;
    u.uid != 0 || u.gid != 0 || !u.additional_gids.is_empty()
}

pub fn view(r: &RunSpec) -> RunView {
    let i = &r.inside;
    RunView {
        image: r.image.clone(),
        env: r.env.clone(),
        user: user_given(r).then(|| format!("{}:{}", i.user.uid, i.user.gid)),
        groups: i.user.additional_gids.clone(),
        workdir: (!i.cwd.is_empty()).then(|| i.cwd.clone()),
        volumes: i
            .mounts
            .iter()
            .filter(|m| is_volume(m))
            .map(|m| Volume {
                host: m.source.clone(),
                dir: m.target.clone(),
                read_only: m.flags & libc::MS_RDONLY != 0,
            })
            .collect(),
        tmpfs: i
            .mounts
            .iter()
            .filter(|m| m.fstype == "tmpfs")
            .map(|m| Tmpfs { dir: m.target.clone(), options: options(m) })
            .collect(),
        read_only: i.root_readonly,
    }
}

/// A tmpfs's mount options as mount(8) takes them: `nosuid,nodev,noexec,size=64m`.
fn options(m: &super::Mount) -> String {
    let mut o: Vec<String> = [(libc::MS_RDONLY, "ro"), (libc::MS_NOSUID, "nosuid"), (libc::MS_NODEV, "nodev")]
        .into_iter()
        .chain([(libc::MS_NOEXEC, "noexec")])
        .filter(|(f, _)| m.flags & f != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    o.extend(m.data.split(',').filter(|d| !d.is_empty()).map(String::from));
    o.join(",")
}

/// `status`'s lines: (label, text), only for what is set.
pub fn status_lines(r: &RunSpec) -> Vec<(&'static str, String)> {
    let v = view(r);
    let mut out = vec![];
    if let Some(i) = &v.image {
        let ports = if i.exposed_ports.is_empty() { "none".into() } else { i.exposed_ports.join(" ") };
        out.push(("image", format!("{} ({}), exposed ports {ports}", i.reference, i.manifest)));
    }
    if let Some(u) = &v.user {
        let g: Vec<String> = v.groups.iter().map(u32::to_string).collect();
        let groups = if g.is_empty() { String::new() } else { format!(", groups {}", g.join(",")) };
        out.push(("user", format!("{u}{groups}")));
    }
    if let Some(w) = &v.workdir {
        out.push(("workdir", w.clone()));
    }
    if !v.env.is_empty() {
        out.push(("env", v.env.join(" ")));
    }
    for m in &v.volumes {
        out.push(("volume", format!("{}:{}{}", m.host, m.dir, if m.read_only { ":ro" } else { "" })));
    }
    for t in &v.tmpfs {
        out.push(("tmpfs", format!("{} ({})", t.dir, t.options)));
    }
    if v.read_only {
        out.push(("root", "read-only (the upper dir unused; write to a tmpfs or a volume)".into()));
    }
    out
}

/// `--explain`: the mounts, as mount(8) would make them in the new root
/// (before the pivot); `idmap`: under a user namespace.
pub fn shell_mounts(r: &RunSpec, merge: &Path, idmap: bool) -> Vec<String> {
    let m = merge.display();
    let mut out = vec![];
    let v = view(r);
    for vol in &v.volumes {
        let id = if idmap { "-o X-mount.idmap=/proc/$!/ns/user " } else { "" };
        out.push(format!("  mount --bind {id}{} {m}{}   # -v (mkdir the mount point first)", vol.host, vol.dir));
        if vol.read_only {
            out.push(format!("  mount -o remount,bind,ro {m}{}", vol.dir));
        }
    }
    for t in &v.tmpfs {
        out.push(format!("  mount -t tmpfs -o {} tmpfs {m}{}", t.options, t.dir));
    }
    if v.read_only {
        out.push(format!("  mount -o remount,bind,ro {m}   # --read-only: nothing reaches the upper dir"));
    }
    out
}

/// `--explain`: the main process's cwd, user and environment.
pub fn shell_process(r: &RunSpec, env: &[String]) -> String {
    let v = view(r);
    let mut s = String::from("  ");
    if let Some(w) = &v.workdir {
        s += &format!("cd {w} && ");
    }
    s += "env -i";
    for e in env {
        s += &format!(" {}", shell_quote(e));
    }
    if let Some(u) = &v.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let g: Vec<String> = v.groups.iter().map(u32::to_string).collect();
        let groups = if g.is_empty() { "--clear-groups".to_string() } else { format!("--groups={}", g.join(",")) };
        s += &format!(" setpriv --reuid={uid} --regid={gid} {groups}");
    }
    s + "   # the main process's environment, -w and -u"
}

fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"=/_-.:,+@%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
