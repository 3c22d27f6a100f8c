//! runc's systemd cgroupsPath `slice:prefix:name` (libcontainer/specconv and
//! cgroups/systemd): the unit is `prefix-name.scope` in `slice` (empty: system.slice),
//! or, when `name` ends in `.slice`, that slice itself. systemd places a slice by
//! its name: `a-b.slice` is `a.slice/a-b.slice` (each dash a level; `-.slice` is
//! the root), and a scope goes in its slice's directory.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The systemd unit a container's cgroup is, and where that cgroup is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `hsrun-ID.scope` or `NAME.slice`.
    pub name: String,
    /// The slice the scope is started in (a slice unit: its parent slice).
    pub slice: String,
    /// The unit's cgroup, relative to the hierarchy's root: `system.slice/hsrun-ID.scope`.
    pub cgroup: String,
}

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }
}

fn bad(path: &str, why: &str) -> crate::error::Error {
    crate::failed!("config.json: linux.cgroupsPath: {path:?}: {why}")
}

/// `a-b.slice` -> `a.slice/a-b.slice`; `-.slice` -> `` (the root).
pub fn expand_slice(slice: &str) -> Option<String> {
    let base = slice.strip_suffix(".slice").filter(|b| !b.is_empty() && !slice.contains('/'))?;
    if base == "-" {
        return Some(String::new());
    }
    let (mut out, mut prefix) = (vec![], String::new());
    for part in base.split('-') {
        if part.is_empty() {
            return None; // `a--b.slice`, `-a.slice`, `a-.slice`
        }
        out.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Some(out.join("/"))
}

/// systemd's unit name characters: ASCII letters, digits, `:-_.\`.
fn unit_chars_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// The unit of cgroupsPath `path` for container `id` (None: runc's default,
/// `system.slice:hsrun:ID`).
pub fn parse(path: Option<&str>, id: &str) -> Result<Unit> {
    let p = path.unwrap_or("");
    let (slice, prefix, name) = if p.is_empty() {
        ("", "hsrun", id)
    } else {
        match p.split(':').collect::<Vec<_>>()[..] {
            [s, pre, n] => (s, pre, n),
            _ => return Err(bad(p, "with --systemd-cgroup it must be slice:prefix:name (e.g. system.slice:hsrun:ID)")),
        }
    };
    if name.is_empty() {
        return Err(bad(p, "the name (after the second ':') is empty"));
    }
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let slice_dir = expand_slice(slice).ok_or_else(|| {
        bad(p, &format!("{slice:?} is not a slice name (NAME.slice, dashes for its parents, no empty part)"))
    })?;
    if name.ends_with(".slice") {
        // systemd puts a slice where its name says, whatever the slice part is.
        let dir = expand_slice(name).ok_or_else(|| bad(p, &format!("{name:?} is not a slice name")))?;
        let parent = dir.rsplit_once('/').map_or("", |(d, _)| d);
        if parent != slice_dir && !p.starts_with(':') {
            return Err(bad(p, &format!("slice {name} is placed by its name in /{parent}, not in {slice}")));
        }
        let slice = parent.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("-.slice");
        return Ok(Unit { name: name.into(), slice: slice.into(), cgroup: dir });
    }
    let unit = if prefix.is_empty() { format!("{name}.scope") } else { format!("{prefix}-{name}.scope") };
    if !unit_chars_ok(&unit) || unit.len() > 255 {
        return Err(bad(p, &format!("{unit:?} is not a systemd unit name (letters, digits, \":-_.\\\")")));
    }
    let cgroup = if slice_dir.is_empty() { unit.clone() } else { format!("{slice_dir}/{unit}") };
    Ok(Unit { name: unit, slice: slice.into(), cgroup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, slice: &str, cgroup: &str) -> Unit {
        Unit { name: name.into(), slice: slice.into(), cgroup: cgroup.into() }
    }

    #[test]
    fn slices_expand_to_their_parents() {
        assert_eq!(expand_slice("system.slice").unwrap(), "system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        for bad in ["a--b.slice", "-a.slice", "a-.slice", ".slice", "a.scope", "a/b.slice", "system"] {
            assert_eq!(expand_slice(bad), None, "{bad}");
        }
    }

    #[test]
    fn runc_paths() {
        assert_eq!(
            parse(Some("system.slice:hsrun:c1"), "x").unwrap(),
            u("hsrun-c1.scope", "system.slice", "system.slice/hsrun-c1.scope")
        );
        // Empty slice: system.slice; no cgroupsPath at all: system.slice:hsrun:ID.
        assert_eq!(
            parse(Some(":cri:c1"), "x").unwrap(),
            u("cri-c1.scope", "system.slice", "system.slice/cri-c1.scope")
        );
        assert_eq!(parse(None, "id9").unwrap(), u("hsrun-id9.scope", "system.slice", "system.slice/hsrun-id9.scope"));
        // Kubernetes' pod slices: nested.
        assert_eq!(
            parse(Some("kubepods-besteffort-pod12.slice:cri-containerd:abc"), "x").unwrap(),
            u(
                "cri-containerd-abc.scope",
                "kubepods-besteffort-pod12.slice",
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"
            )
        );
        assert_eq!(parse(Some("-.slice:p:n"), "x").unwrap(), u("p-n.scope", "-.slice", "p-n.scope"));
        assert_eq!(parse(Some("system.slice::n"), "x").unwrap().name, "n.scope");
    }

    #[test]
    fn a_slice_name_is_the_unit() {
        assert_eq!(parse(Some(":x:a-b.slice"), "x").unwrap(), u("a-b.slice", "a.slice", "a.slice/a-b.slice"));
        assert_eq!(parse(Some("a.slice:x:a-b.slice"), "x").unwrap(), u("a-b.slice", "a.slice", "a.slice/a-b.slice"));
        assert_eq!(parse(Some(":x:top.slice"), "x").unwrap(), u("top.slice", "-.slice", "top.slice"));
        assert!(parse(Some("system.slice:x:a-b.slice"), "x").is_err(), "systemd would put it in a.slice");
    }

    #[test]
    fn refused() {
        for p in ["/a/b", "a:b", "a:b:c:d", "system.slice:p:", "sys:p:n", "a--b.slice:p:n", "system.slice:p:a/b"] {
            let e = parse(Some(p), "x").unwrap_err().to_string();
            assert!(e.starts_with("config.json: linux.cgroupsPath:"), "{p}: {e}");
        }
    }
}
