//! config.json's user namespace: `linux.uidMappings` and `gidMappings` (any
//! number of ranges, written by host-setup, a privileged writer, before init goes
//! on: spawn.rs, the same hand-off as `--userns`), or one joined by `path`
//! (whose maps are already written: the config's, if any, are not applied).
//!
//! The bundle's root is used as it is, not idmapped (runc's rule: the bundle is
//! prepared for the mapping); its files show inside through the maps.

use oci_spec::runtime::{LinuxIdMapping, Spec as OciSpec};

use crate::error::Result;
use crate::spec::{Namespaces, Ns};
use crate::userns::{check_ranges, host_id, IdMaps, IdRange};

fn bad(what: &str, why: impl std::fmt::Display) -> crate::error::Error {
    crate::failed!("config.json: {what}: {why}")
}

/// The maps of a new user namespace (None: no new one), checked as the kernel
/// would check them, and so that init (the namespace's root until it becomes
/// the process's user) and the process's user are mapped.
pub fn id_maps(oci: &OciSpec, ns: &Namespaces) -> Result<Option<IdMaps>> {
    let linux = oci.linux().clone().unwrap_or_default();
    let ranges = |v: &Option<Vec<LinuxIdMapping>>| -> Vec<IdRange> {
        v.iter()
            .flatten()
            .map(|m| IdRange { inside: m.container_id(), outside: m.host_id(), count: m.size() })
            .collect()
    };
    let (uids, gids) = (ranges(linux.uid_mappings()), ranges(linux.gid_mappings()));
    match &ns.user {
        Ns::Host if !uids.is_empty() || !gids.is_empty() => {
            let what = if uids.is_empty() { "linux.gidMappings" } else { "linux.uidMappings" };
            return Err(bad(what, "given without a user namespace (add {\"type\": \"user\"} to linux.namespaces)"));
        }
        Ns::Host | Ns::Join(_) => return Ok(None),
        Ns::New => {}
    }
    check_ranges("linux.uidMappings", &uids).map_err(|e| bad_maps(&e))?;
    check_ranges("linux.gidMappings", &gids).map_err(|e| bad_maps(&e))?;
    for (what, v) in [("linux.uidMappings", &uids), ("linux.gidMappings", &gids)] {
        if host_id(v, 0).is_none() {
            return Err(bad(what, "container id 0 is not mapped: the runtime sets the container up as its root"));
        }
    }
    if let Some(u) = oci.process().as_ref().map(|p| p.user()) {
        if host_id(&uids, u.uid()).is_none() {
            return Err(bad("process.user.uid", format!("{} is not mapped by linux.uidMappings", u.uid())));
        }
        let gids_used = std::iter::once(u.gid()).chain(u.additional_gids().iter().flatten().copied());
        for g in gids_used {
            if host_id(&gids, g).is_none() {
                return Err(bad("process.user", format!("gid {g} is not mapped by linux.gidMappings")));
            }
        }
    }
    Ok(Some(IdMaps { uids, gids }))
}

fn bad_maps(e: &str) -> crate::error::Error {
    crate::failed!("config.json: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> OciSpec {
        let base = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],
            "user":{"uid":0,"gid":0}},"linux":"#;
        serde_json::from_str(&format!("{base}{json}}}")).unwrap()
    }

    fn ns(user: Ns) -> Namespaces {
        Namespaces { user, ..Default::default() }
    }

    #[test]
    fn several_ranges_are_taken() {
        let s = spec(
            r#"{"uidMappings":[{"containerID":0,"hostID":100000,"size":1000},{"containerID":1000,"hostID":200000,"size":10}],
                "gidMappings":[{"containerID":0,"hostID":100000,"size":1000}]}"#,
        );
        let m = id_maps(&s, &ns(Ns::New)).unwrap().unwrap();
        assert_eq!(m.uids.len(), 2);
        assert_eq!(m.uids[1], IdRange { inside: 1000, outside: 200000, count: 10 });
        assert_eq!(m.root(), Some((100000, 100000)));
        // Joined by path: the namespace has its maps already.
        assert_eq!(id_maps(&s, &ns(Ns::Join("/proc/1/ns/user".into()))).unwrap(), None);
    }

    #[test]
    fn bad_maps_name_the_field() {
        let e = |json: &str, user: Ns| id_maps(&spec(json), &ns(user)).unwrap_err().to_string();
        let one = r#"{"containerID":0,"hostID":1000,"size":10}"#;
        assert!(e(&format!(r#"{{"uidMappings":[{one}]}}"#), Ns::Host).contains("linux.uidMappings: given without"));
        assert!(
            e(&format!(r#"{{"gidMappings":[{one}]}}"#), Ns::New).contains("linux.uidMappings: a user namespace needs")
        );
        let overlap =
            format!(r#"{{"uidMappings":[{one},{{"containerID":5,"hostID":9000,"size":10}}],"gidMappings":[{one}]}}"#);
        assert!(e(&overlap, Ns::New).contains("linux.uidMappings[1]: overlaps"));
        let no_root =
            format!(r#"{{"uidMappings":[{{"containerID":1,"hostID":1000,"size":10}}],"gidMappings":[{one}]}}"#);
        assert!(e(&no_root, Ns::New).contains("linux.uidMappings: container id 0 is not mapped"));
    }
}
