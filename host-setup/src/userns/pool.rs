//! Where containers' id ranges come from (/etc/subuid and /etc/subgid, or the
//! default pool) and which one a new container gets. Pure: tested without root.

use super::{IdMap, DEFAULT_POOL, IDS, SUBID_USER};
use crate::error::Result;

/// The host ids containers may use: uid and gid ranges (first, count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub uids: Vec<(u32, u32)>,
    pub gids: Vec<(u32, u32)>,
    /// Where they came from, for status and errors.
    pub source: &'static str,
}

impl Pool {
    /// SUBID_USER's lines in /etc/subuid and /etc/subgid, or DEFAULT_POOL if
    /// neither file has one. One file with lines and the other without is an error.
    pub fn load() -> Result<Pool> {
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        Pool::from_files(&read("/etc/subuid"), &read("/etc/subgid"))
    }

    pub fn from_files(subuid: &str, subgid: &str) -> Result<Pool> {
        let (uids, gids) = (ranges(subuid, "/etc/subuid")?, ranges(subgid, "/etc/subgid")?);
        match (uids.is_empty(), gids.is_empty()) {
            (true, true) => Ok(Pool { uids: vec![DEFAULT_POOL], gids: vec![DEFAULT_POOL], source: "default pool" }),
            (false, false) => Ok(Pool { uids, gids, source: "/etc/subuid and /etc/subgid" }),
            (true, false) | (false, true) => Err(crate::precondition!(
                "{SUBID_USER} has lines in only one of /etc/subuid and /etc/subgid: give it both, e.g. \
                 `{SUBID_USER}:1000000000:65536000` in each"
            )),
        }
    }

    /// Slot k's first id in `ranges`: slots are whole IDS-sized pieces of each
    /// range in turn.
    fn slot(ranges: &[(u32, u32)], mut k: u64) -> Option<u32> {
        for &(first, count) in ranges {
            let n = count as u64 / IDS as u64;
            if k < n {
                return u32::try_from(first as u64 + k * IDS as u64).ok();
            }
            k -= n;
        }
        None
    }
}

/// SUBID_USER's ranges in a subuid/subgid file ("name:first:count" lines).
fn ranges(text: &str, file: &str) -> Result<Vec<(u32, u32)>> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let mut f = line.trim().split(':');
        if f.next() != Some(SUBID_USER) {
            continue;
        }
        let num = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u32>().ok());
        match (num(f.next()), num(f.next()), f.next()) {
            (Some(first), Some(count), None) if first as u64 + count as u64 <= u32::MAX as u64 => {
                out.push((first, count))
            }
            _ => {
                return Err(crate::precondition!(
                    "{file} line {}: `{}` is not NAME:FIRST:COUNT within 32-bit ids",
                    i + 1,
                    line.trim()
                ))
            }
        }
    }
    Ok(out)
}

fn overlaps(a: u32, b: u32, count: u32) -> bool {
    (a as u64) < b as u64 + count as u64 && (b as u64) < a as u64 + count as u64
}

/// The lowest slot of `pool` whose uids and gids overlap no map in `used`.
pub fn allocate(pool: &Pool, used: &[IdMap]) -> Result<IdMap> {
    for k in 0.. {
        let (Some(uid), Some(gid)) = (Pool::slot(&pool.uids, k), Pool::slot(&pool.gids, k)) else { break };
        let free =
            used.iter().all(|m| !overlaps(uid, m.uid, m.count.max(IDS)) && !overlaps(gid, m.gid, m.count.max(IDS)));
        if free {
            return Ok(IdMap { uid, gid, count: IDS });
        }
    }
    Err(crate::precondition!(
        "--userns: every range of 65536 ids in the {} is in use ({} containers): take one down, or give {SUBID_USER} \
         a larger range in /etc/subuid and /etc/subgid",
        pool.source,
        used.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pool_without_lines() {
        let p = Pool::from_files("alice:100000:65536\n", "").unwrap();
        assert_eq!(p.uids, vec![DEFAULT_POOL]);
        assert_eq!(p.source, "default pool");
    }

    #[test]
    fn lines_for_our_user_only_and_both_files() {
        let p =
            Pool::from_files("alice:100000:65536\nhost-setup:200000:131072\n", "host-setup:300000:131072\n").unwrap();
        assert_eq!(p.uids, vec![(200000, 131072)]);
        assert_eq!(p.gids, vec![(300000, 131072)]);
        assert!(Pool::from_files("host-setup:200000:65536\n", "").is_err());
        let e = Pool::from_files("host-setup:x:1\n", "host-setup:1:1\n").unwrap_err().to_string();
        assert!(e.contains("/etc/subuid line 1"), "{e}");
        assert!(Pool::from_files("host-setup:4294967295:2\n", "host-setup:1:1\n").is_err());
    }

    #[test]
    fn lowest_free_slot_and_disjoint() {
        let p = Pool::from_files("host-setup:200000:196608\n", "host-setup:300000:196608\n").unwrap();
        let a = allocate(&p, &[]).unwrap();
        assert_eq!(a, IdMap { uid: 200000, gid: 300000, count: IDS });
        let b = allocate(&p, &[a]).unwrap();
        assert_eq!(b, IdMap { uid: 265536, gid: 365536, count: IDS });
        let c = allocate(&p, &[b]).unwrap();
        assert_eq!(c, a, "a freed slot is taken again");
        let d = allocate(&p, &[a, b]).unwrap();
        assert_eq!(d.uid, 331072);
        let e = allocate(&p, &[a, b, d]).unwrap_err().to_string();
        assert!(e.contains("in use (3 containers)"), "{e}");
    }

    #[test]
    fn slots_span_ranges_and_skip_partial_ones() {
        // 100000 ids: one whole slot; the next range gives the second.
        let p =
            Pool::from_files("host-setup:1000:100000\nhost-setup:500000:65536\n", "host-setup:1000:200000\n").unwrap();
        let a = allocate(&p, &[]).unwrap();
        let b = allocate(&p, &[a]).unwrap();
        assert_eq!((a.uid, b.uid), (1000, 500000));
        assert_eq!((a.gid, b.gid), (1000, 66536));
        assert!(allocate(&p, &[a, b]).is_err());
    }

    #[test]
    fn a_map_overlapping_a_slot_partly_blocks_it() {
        let p = Pool::from_files("host-setup:0:262144\n", "host-setup:0:262144\n").unwrap();
        // uids 70000-135535: across slots 1 and 2.
        let odd = IdMap { uid: 70000, gid: 900000, count: IDS };
        assert_eq!(allocate(&p, &[odd]).unwrap().uid, 0);
        let next = allocate(&p, &[IdMap { uid: 0, gid: 0, count: IDS }, odd]).unwrap();
        assert_eq!(next.uid, 196608);
    }
}
