//! runtime-spec's `linux.resources.blockIO` as cgroup files (runc's mapping,
//! libcontainer/cgroups/fs/blkio.go and fs2/io.go):
//! - v1: blkio.weight / blkio.weight_device ("MAJ:MIN W") with CFQ, blkio.bfq.weight /
//!   blkio.bfq.weight_device with BFQ (the kernel has only the files of the block
//!   scheduler in use: none with mq-deadline or none), blkio.leaf_weight(_device) (CFQ
//!   only, gone since 5.0), blkio.throttle.{read,write}_{bps,iops}_device ("MAJ:MIN N",
//!   any kernel with CONFIG_BLK_DEV_THROTTLING; only whole disks, not partitions).
//! - v2: io.weight ("default W", "MAJ:MIN W") or io.bfq.weight, and io.max
//!   ("MAJ:MIN rbps=N wbps=N riops=N wiops=N": keys not given stay as they are).
//!   v2 has no leaf weights.
//!
//! Each write names the files that can take it, in order of preference: the first
//! one the kernel has is written; none is a refusal naming the config's path.

use crate::error::Result;
use crate::spec::{BlockIo, Throttle};

/// `VALUE` into the first of `files` (names in the container's blkio/io dir) that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub files: Vec<&'static str>,
    pub value: String,
    /// The config.json path it comes from (`linux.resources.blockIO.weight`).
    pub what: &'static str,
}

fn w(files: &[&'static str], value: String, what: &'static str) -> Write {
    Write { files: files.to_vec(), value, what }
}

/// A weight of 0 is "not set" (runc's reading; Docker sends `"weight": 0`).
fn set(v: Option<u16>) -> Option<u16> {
    v.filter(|w| *w != 0)
}

/// Whether the config asks anything of the block I/O controller.
pub fn wanted(b: &BlockIo) -> bool {
    set(b.weight).is_some()
        || set(b.leaf_weight).is_some()
        || !b.weight_device.is_empty()
        || !b.throttle_read_bps.is_empty()
        || !b.throttle_write_bps.is_empty()
        || !b.throttle_read_iops.is_empty()
        || !b.throttle_write_iops.is_empty()
}

const READ_BPS: &str = "linux.resources.blockIO.throttleReadBpsDevice";
const WRITE_BPS: &str = "linux.resources.blockIO.throttleWriteBpsDevice";
const READ_IOPS: &str = "linux.resources.blockIO.throttleReadIOPSDevice";
const WRITE_IOPS: &str = "linux.resources.blockIO.throttleWriteIOPSDevice";

pub fn v1(b: &BlockIo) -> Vec<Write> {
    let mut out = vec![];
    if let Some(x) = set(b.weight) {
        out.push(w(&["blkio.weight", "blkio.bfq.weight"], x.to_string(), "linux.resources.blockIO.weight"));
    }
    if let Some(x) = set(b.leaf_weight) {
        out.push(w(&["blkio.leaf_weight"], x.to_string(), "linux.resources.blockIO.leafWeight"));
    }
    for d in &b.weight_device {
        if let Some(x) = d.weight {
            let v = format!("{}:{} {x}", d.major, d.minor);
            out.push(w(&["blkio.weight_device", "blkio.bfq.weight_device"], v, "linux.resources.blockIO.weightDevice"));
        }
        if let Some(x) = d.leaf_weight {
            let v = format!("{}:{} {x}", d.major, d.minor);
            out.push(w(&["blkio.leaf_weight_device"], v, "linux.resources.blockIO.weightDevice.leafWeight"));
        }
    }
    let lists: [(&[Throttle], &'static str, &'static str); 4] = [
        (&b.throttle_read_bps, "blkio.throttle.read_bps_device", READ_BPS),
        (&b.throttle_write_bps, "blkio.throttle.write_bps_device", WRITE_BPS),
        (&b.throttle_read_iops, "blkio.throttle.read_iops_device", READ_IOPS),
        (&b.throttle_write_iops, "blkio.throttle.write_iops_device", WRITE_IOPS),
    ];
    for (list, file, what) in lists {
        for t in list {
            out.push(Write { files: vec![file], value: format!("{}:{} {}", t.major, t.minor, t.rate), what });
        }
    }
    out
}

pub fn v2(b: &BlockIo) -> Result<Vec<Write>> {
    if set(b.leaf_weight).is_some() || b.weight_device.iter().any(|d| d.leaf_weight.is_some()) {
        return Err(crate::failed!(
            "config.json: linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights (io.weight only)"
        ));
    }
    let mut out = vec![];
    if let Some(x) = set(b.weight) {
        // io.weight takes "default W"; io.bfq.weight takes "W" as well.
        out.push(w(&["io.bfq.weight", "io.weight"], format!("default {x}"), "linux.resources.blockIO.weight"));
    }
    for d in &b.weight_device {
        if let Some(x) = d.weight {
            let v = format!("{}:{} {x}", d.major, d.minor);
            out.push(w(&["io.bfq.weight", "io.weight"], v, "linux.resources.blockIO.weightDevice"));
        }
    }
    // io.max: one line per device, its keys together.
    let mut devs: Vec<(i64, i64, Vec<String>, &'static str)> = vec![];
    let lists: [(&[Throttle], &str, &'static str); 4] = [
        (&b.throttle_read_bps, "rbps", READ_BPS),
        (&b.throttle_write_bps, "wbps", WRITE_BPS),
        (&b.throttle_read_iops, "riops", READ_IOPS),
        (&b.throttle_write_iops, "wiops", WRITE_IOPS),
    ];
    for (list, key, what) in lists {
        for t in list {
            let kv = format!("{key}={}", t.rate);
            match devs.iter_mut().find(|d| d.0 == t.major && d.1 == t.minor) {
                Some(d) => d.2.push(kv),
                None => devs.push((t.major, t.minor, vec![kv], what)),
            }
        }
    }
    for (major, minor, kvs, what) in devs {
        out.push(Write { files: vec!["io.max"], value: format!("{major}:{minor} {}", kvs.join(" ")), what });
    }
    Ok(out)
}

/// The error for a write none of whose files the kernel has.
pub fn missing(what: &str, dir: &std::path::Path, files: &[&str]) -> crate::error::Error {
    let why = if what.contains("weight") || what.contains("Weight") {
        " (weights need the BFQ or CFQ block scheduler: the kernel has only the files of the one in use)"
    } else if what.contains("throttle") {
        " (throttles need CONFIG_BLK_DEV_THROTTLING)"
    } else {
        ""
    };
    crate::failed!("config.json: {what}: the kernel has no {} in {}{why}", files.join(" nor "), dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::WeightDevice;

    fn t(major: i64, minor: i64, rate: u64) -> Throttle {
        Throttle { major, minor, rate }
    }

    #[test]
    fn docker_weight_zero_is_nothing() {
        let b = BlockIo { weight: Some(0), ..Default::default() };
        assert!(!wanted(&b));
        assert!(v1(&b).is_empty());
        assert!(v2(&b).unwrap().is_empty());
    }

    #[test]
    fn v1_files() {
        let b = BlockIo {
            weight: Some(500),
            weight_device: vec![WeightDevice { major: 8, minor: 0, weight: Some(300), leaf_weight: None }],
            throttle_read_bps: vec![t(254, 0, 1048576)],
            throttle_write_iops: vec![t(254, 0, 100)],
            ..Default::default()
        };
        assert!(wanted(&b));
        let got: Vec<(String, String)> = v1(&b).iter().map(|w| (w.files.join("|"), w.value.clone())).collect();
        assert_eq!(
            got,
            [
                ("blkio.weight|blkio.bfq.weight".into(), "500".into()),
                ("blkio.weight_device|blkio.bfq.weight_device".into(), "8:0 300".into()),
                ("blkio.throttle.read_bps_device".into(), "254:0 1048576".into()),
                ("blkio.throttle.write_iops_device".into(), "254:0 100".into()),
            ]
        );
    }

    #[test]
    fn v2_io_max_joins_a_device_keys() {
        let b = BlockIo {
            weight: Some(100),
            throttle_read_bps: vec![t(254, 0, 1000), t(8, 0, 5)],
            throttle_write_bps: vec![t(254, 0, 2000)],
            throttle_read_iops: vec![t(254, 0, 30)],
            throttle_write_iops: vec![t(254, 0, 40)],
            ..Default::default()
        };
        let got: Vec<(String, String)> = v2(&b).unwrap().iter().map(|w| (w.files.join("|"), w.value.clone())).collect();
        assert_eq!(
            got,
            [
                ("io.bfq.weight|io.weight".into(), "default 100".into()),
                ("io.max".into(), "254:0 rbps=1000 wbps=2000 riops=30 wiops=40".into()),
                ("io.max".into(), "8:0 rbps=5".into()),
            ]
        );
        let leaf = BlockIo { leaf_weight: Some(10), ..Default::default() };
        assert!(v2(&leaf).unwrap_err().to_string().contains("blockIO.leafWeight"));
    }
}
