//! config.json's `process` as what init does before exec: the user, the
//! capability sets, rlimits, no_new_privs, oom_score_adj and the working directory.

use oci_spec::runtime::{Capabilities, Process};

use super::to_spec::number;
use crate::error::Result;
use crate::spec::{Caps, Inside, Rlimit, User};

pub fn fill(p: &Process, inside: &mut Inside) -> Result<()> {
    let cwd = p.cwd().display().to_string();
    if !cwd.starts_with('/') {
        return Err(crate::failed!("config.json: process.cwd: {cwd:?} is not an absolute path"));
    }
    inside.cwd = cwd;
    let u = p.user();
    if u.username().is_some() {
        return Err(crate::failed!("config.json: process.user.username: a Windows field, not for Linux"));
    }
    inside.user = User {
        uid: u.uid(),
        gid: u.gid(),
        umask: u.umask(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
    };
    if let Some(c) = p.capabilities() {
        let mask = |s: &Option<Capabilities>| -> Result<u64> {
            let mut m = 0u64;
            for cap in s.iter().flatten() {
                let name =
                    serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                m |= 1 << number("capability", &name)?;
            }
            Ok(m)
        };
        let (permitted, inheritable) = (mask(c.permitted())?, mask(c.inheritable())?);
        inside.caps = Some(Caps {
            bounding: mask(c.bounding())?,
            effective: mask(c.effective())?,
            permitted,
            inheritable,
            ambient: raisable_ambient(mask(c.ambient())?, permitted, inheritable),
        });
    } else {
        // No capabilities given: the process gets none (runc's reading).
        inside.caps = Some(Caps::default());
    }
    for r in p.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        if r.soft() > r.hard() {
            return Err(crate::failed!(
                "config.json: process.rlimits: {name}: soft {} above hard {}",
                r.soft(),
                r.hard()
            ));
        }
        inside.rlimits.push(Rlimit { resource: number("rlimit", &name)?, soft: r.soft(), hard: r.hard() });
    }
    inside.no_new_privs = p.no_new_privileges().unwrap_or(false);
    inside.oom_score_adj = p.oom_score_adj().map(i64::from);
    for (field, given) in [
        ("apparmorProfile", p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty())),
        ("selinuxLabel", p.selinux_label().as_ref().is_some_and(|s| !s.is_empty())),
        ("ioPriority", p.io_priority().is_some()),
        ("scheduler", p.scheduler().is_some()),
        ("execCPUAffinity", p.exec_cpu_affinity().is_some()),
    ] {
        if given {
            return Err(crate::failed!("config.json: process.{field}: not supported by this runtime"));
        }
    }
    Ok(())
}

/// The ambient capabilities the kernel will raise: PR_CAP_AMBIENT_RAISE gives
/// EPERM for one not both permitted and inheritable. runc's own default spec
/// asks for ambient capabilities with no inheritable set; runc and crun warn
/// and go on, so the engines' specs rely on it: warn, name them, drop them.
fn raisable_ambient(ambient: u64, permitted: u64, inheritable: u64) -> u64 {
    let ok = ambient & permitted & inheritable;
    let dropped: Vec<String> = (0..64)
        .filter(|c| (ambient & !ok) & (1 << c) != 0)
        .map(|c| super::names::CAPS.get(c).map_or_else(|| format!("capability {c}"), |n| format!("CAP_{n}")))
        .collect();
    if !dropped.is_empty() {
        log::warn!(
            "config.json: process.capabilities.ambient: {} not both permitted and inheritable: not raised (as runc and crun)",
            dropped.join(", ")
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::raisable_ambient;

    #[test]
    fn only_permitted_and_inheritable_capabilities_stay_ambient() {
        assert_eq!(raisable_ambient(0b111, 0b011, 0b110), 0b010);
        assert_eq!(raisable_ambient(0, u64::MAX, u64::MAX), 0);
        assert_eq!(raisable_ambient(0b1, 0b1, 0), 0);
    }
}
