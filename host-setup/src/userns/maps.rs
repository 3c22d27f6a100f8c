//! A user namespace's maps in general terms: any number of ranges for uids and
//! for gids, as an OCI bundle gives them (`linux.uidMappings`/`gidMappings`).
//! The pool hands out one range (`IdMap`, journalled as it always was), which is
//! the one-line case of these; spawn.rs writes either through `write_maps`.

use serde::{Deserialize, Serialize};

use super::IdMap;

/// The most lines the kernel takes in uid_map or gid_map (UID_GID_MAP_MAX_EXTENTS,
/// Linux 4.15; 5 before).
pub const MAX_RANGES: usize = 340;

/// Container ids `inside..inside+count` are host ids `outside..outside+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Every range of the uid map and of the gid map, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMaps {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl From<IdMap> for IdMaps {
    fn from(m: IdMap) -> IdMaps {
        IdMaps {
            uids: vec![IdRange { inside: 0, outside: m.uid, count: m.count }],
            gids: vec![IdRange { inside: 0, outside: m.gid, count: m.count }],
        }
    }
}

/// The text for /proc/PID/uid_map: one "INSIDE OUTSIDE COUNT" line per range
/// (the kernel takes the whole map in one write, and only once).
pub fn map_text(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count)).collect()
}

/// The host id of container id `id`, if mapped.
pub fn host_id(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find(|r| id >= r.inside && (id - r.inside) < r.count).map(|r| r.outside + (id - r.inside))
}

/// What the kernel would refuse (EINVAL on the write, after the namespace
/// exists) said before anything is made: no ranges, too many, an empty one, one
/// past 2^32, two overlapping inside or outside. `what`: the config's name.
pub fn check(what: &str, ranges: &[IdRange]) -> Result<(), String> {
    if ranges.is_empty() {
        return Err(format!("{what}: a user namespace needs at least one range"));
    }
    if ranges.len() > MAX_RANGES {
        return Err(format!("{what}: {} ranges, the kernel takes at most {MAX_RANGES}", ranges.len()));
    }
    let end = |first: u32, count: u32| first as u64 + count as u64;
    for (i, r) in ranges.iter().enumerate() {
        if r.count == 0 {
            return Err(format!("{what}[{i}]: size 0"));
        }
        // The kernel's own limit: neither end may pass 2^32 - 1 (u32::MAX is "no id").
        if end(r.inside, r.count) > u32::MAX as u64 || end(r.outside, r.count) > u32::MAX as u64 {
            return Err(format!(
                "{what}[{i}]: containerID {} hostID {} size {} runs past the last id",
                r.inside, r.outside, r.count
            ));
        }
        for (j, o) in ranges[..i].iter().enumerate() {
            let overlap = |a: u32, b: u32| (a as u64) < end(b, o.count) && (b as u64) < end(a, r.count);
            if overlap(r.inside, o.inside) || overlap(r.outside, o.outside) {
                return Err(format!("{what}[{i}]: overlaps {what}[{j}] (the kernel refuses overlapping ranges)"));
            }
        }
    }
    Ok(())
}

impl IdMaps {
    /// The host uid and gid of the namespace's root (container ids 0), if both are mapped.
    pub fn root(&self) -> Option<(u32, u32)> {
        Some((host_id(&self.uids, 0)?, host_id(&self.gids, 0)?))
    }

    /// "container uids 0-999 are host uids 1000-1999, 1000-1999 are 5000-5999; gids ..."
    pub fn describe(&self) -> String {
        let one = |r: &IdRange| {
            let last = |f: u32| f as u64 + r.count as u64 - 1;
            format!("{}-{} -> {}-{}", r.inside, last(r.inside), r.outside, last(r.outside))
        };
        let all = |v: &[IdRange]| v.iter().map(one).collect::<Vec<_>>().join(", ");
        format!("uids {}; gids {}", all(&self.uids), all(&self.gids))
    }

    /// unshare's options for the same maps (--map-users takes one range each).
    pub fn unshare_options(&self) -> String {
        let mut s = "--user".to_string();
        for r in &self.uids {
            s.push_str(&format!(" --map-users={}:{}:{}", r.inside, r.outside, r.count));
        }
        for r in &self.gids {
            s.push_str(&format!(" --map-groups={}:{}:{}", r.inside, r.outside, r.count));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange { inside, outside, count }
    }

    #[test]
    fn the_pools_range_is_one_line() {
        let m: IdMaps = IdMap { uid: 1_000_000_000, gid: 1_000_065_536, count: 65536 }.into();
        assert_eq!(map_text(&m.uids), "0 1000000000 65536\n");
        assert_eq!(map_text(&m.gids), "0 1000065536 65536\n");
        assert_eq!(m.root(), Some((1_000_000_000, 1_000_065_536)));
        assert_eq!(m.unshare_options(), "--user --map-users=0:1000000000:65536 --map-groups=0:1000065536:65536");
    }

    #[test]
    fn several_ranges() {
        let m = IdMaps { uids: vec![r(0, 100000, 1000), r(1000, 300000, 10)], gids: vec![r(5, 7, 1), r(0, 9, 5)] };
        assert_eq!(map_text(&m.uids), "0 100000 1000\n1000 300000 10\n");
        assert_eq!(host_id(&m.uids, 1005), Some(300005));
        assert_eq!(host_id(&m.uids, 1010), None);
        assert_eq!(m.root(), Some((100000, 9)));
        assert_eq!(
            m.describe(),
            "uids 0-999 -> 100000-100999, 1000-1009 -> 300000-300009; gids 5-5 -> 7-7, 0-4 -> 9-13"
        );
        assert!(check("linux.uidMappings", &m.uids).is_ok());
        assert!(check("linux.gidMappings", &m.gids).is_ok());
    }

    #[test]
    fn what_the_kernel_refuses() {
        let e = |v: &[IdRange]| check("linux.uidMappings", v).unwrap_err();
        assert!(e(&[]).contains("at least one range"));
        assert!(e(&[r(0, 1000, 0)]).starts_with("linux.uidMappings[0]: size 0"));
        assert!(e(&[r(0, u32::MAX - 5, 10)]).contains("runs past the last id"));
        assert!(e(&[r(0, 1000, 10), r(5, 5000, 10)]).contains("[1]: overlaps linux.uidMappings[0]"));
        assert!(e(&[r(0, 1000, 10), r(100, 1009, 10)]).contains("overlaps"));
        assert!(check("x", &[r(0, 1000, 10), r(10, 1010, 10)]).is_ok());
        assert!(e(&vec![r(0, 0, 1); MAX_RANGES + 1]).contains("at most 340"));
    }
}
