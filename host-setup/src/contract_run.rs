//! What the run options (spec/runopts.rs) add to the launch of one of
//! host-setup's own containers: the main process's environment, and the
//! `--spec-fd` records (contract_spec.rs's encoder, init/src/spec.rs's format)
//! for its volumes, tmpfs, read-only root, user and cwd.
//!
//! Under a user namespace a volume is handed to init as a detached idmapped
//! mount (as the layers are, src/userns/): only the host may idmap a mount of
//! its own filesystems. init gets those fds right after the layers' (fd
//! LOWER_FD+layers+i), named by the MOUNT record's src_fd; the records
//! themselves go on the fd after them. Without one, init binds the host path itself.

use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::spec::runopts::{is_volume, RunSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLaunch {
    /// The main process's whole environment: container_env() with the run's on top.
    pub env: Vec<String>,
    /// The records (empty: init gets no --spec-fd).
    pub records: Vec<u8>,
    /// Where init reads them.
    pub spec_fd: RawFd,
    /// The volumes the host idmaps (under a user namespace), in order: (host path, read-only).
    pub idmapped: Vec<(PathBuf, bool)>,
    /// What it came from, for --explain.
    pub run: RunSpec,
}

/// `base` with `over`'s K=V on top: a key keeps its first place, takes the last value.
pub fn merge_env(base: Vec<String>, over: &[String]) -> Vec<String> {
    let mut out = base;
    for e in over {
        let k = e.split('=').next().unwrap_or("");
        match out.iter_mut().find(|o| o.split('=').next() == Some(k)) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

impl RunLaunch {
    /// `nlayers`: the overlay's lower dirs (their fds come first under a user namespace).
    pub fn new(run: &RunSpec, userns: bool, nlayers: usize) -> RunLaunch {
        let env = merge_env(crate::contract::container_env(), &run.env);
        let mut idmapped = vec![];
        let mut fds = vec![];
        for m in &run.inside.mounts {
            if userns && is_volume(m) {
                fds.push(Some((init::flag::LOWER_FD as usize + nlayers + idmapped.len()) as RawFd));
                idmapped.push((PathBuf::from(&m.source), m.flags & libc::MS_RDONLY != 0));
            } else {
                fds.push(None);
            }
        }
        let spec_fd = match userns {
            true => init::flag::LOWER_FD + (nlayers + idmapped.len()) as RawFd,
            false => crate::contract_spec::SPEC_FD,
        };
        let records = match run.inside == Default::default() {
            true => vec![],
            false => crate::contract_spec::encode_with(&run.inside, &fds),
        };
        RunLaunch { env, records, spec_fd, idmapped, run: run.clone() }
    }
}

#[cfg(test)]
mod tests {
    use init::spec::{self as rec, Reader};

    use super::*;
    use crate::spec::runopts::parse_volume;

    #[test]
    fn env_merges_by_key() {
        let e = merge_env(vec!["PATH=/bin".into(), "HOME=/".into()], &["HOME=/root".into(), "A=1".into()]);
        assert_eq!(e, ["PATH=/bin", "HOME=/root", "A=1"]);
    }

    #[test]
    fn volumes_under_a_userns_come_as_fds_after_the_layers() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        let run =
            RunSpec { inside: crate::spec::Inside { mounts: vec![v], ..Default::default() }, ..Default::default() };
        let l = RunLaunch::new(&run, true, 2);
        assert_eq!(l.idmapped, [(PathBuf::from("/tmp"), true)]);
        assert_eq!(l.spec_fd, init::flag::LOWER_FD + 3);
        let mut r = Reader::new(&l.records).unwrap();
        let mut m = r.next_record().unwrap().unwrap();
        assert_eq!(m.tag, rec::MOUNT);
        let fields: Vec<_> = (0..6).map(|_| m.bytes().unwrap().to_vec()).collect();
        assert_eq!(fields[1], b"/data");
        assert_eq!(m.u64().unwrap(), init::flag::LOWER_FD as u64 + 2, "src_fd: the fd after the two layers");
        let plain = RunLaunch::new(&run, false, 2);
        assert!(plain.idmapped.is_empty());
        assert_eq!(plain.spec_fd, crate::contract_spec::SPEC_FD);
        assert!(RunLaunch::new(&RunSpec::default(), true, 2).records.is_empty());
    }
}
