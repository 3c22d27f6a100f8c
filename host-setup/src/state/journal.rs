//! Each container has a journal: an append-only file of typed records, one JSON
//! object a line. A step appends `{"made":{"netns":"RED"}}` *before* it creates
//! the namespace, so whatever happens next (an error, Ctrl-C, SIGKILL) the journal
//! names everything that may exist, and undoing a record that turns out not to
//! exist is a no-op. Nothing that is not in the journal is ever removed.
//!
//! ```text
//! {"spec":{"spec":{"name":"red","netns":"RED",...},"init":"/usr/local/bin/init"}}
//! {"layer":{"dir":"/var/lib/host-setup/layers/tools-6f1c..."}}
//! {"made":{"dir":"/var/lib/host-setup/containers/red"}}
//! {"made":{"netns":"RED"}}
//! {"made":{"cgroup":"/sys/fs/cgroup/cpu/host-setup/red"}}
//! {"started":{"role":"supervisor","proc":{"pid":4711,"start":123456}}}
//! {"started":{"role":"init","proc":{"pid":4712,"start":123457}}}
//! "ready"
//! {"exited":{"code":0,"oom_kills":0}}
//! ```
//!
//! A torn last line (host-setup killed in the middle of a write) is skipped; any
//! other line that does not parse — an unknown record or field, from another
//! version of host-setup — makes the journal unreadable, with a message that says
//! what to do, rather than half-understood.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Paths, Proc, Role};
use crate::error::{Result, SysContext};
use crate::spec::Spec;

/// The journal format this host-setup writes and reads.
pub const FORMAT: u32 = 2;

/// Something host-setup created, and must remove on `down` (action.rs undoes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    /// The container's directory (upper, work, merge, console.log).
    Dir(PathBuf),
    /// A named network namespace (/run/netns/NAME).
    Netns(String),
    /// A veth pair, by the end inside `netns`.
    Link { netns: String, iface: String },
    /// One cgroup directory of the container.
    Cgroup(PathBuf),
    /// One cgroup directory of the container's supervisor (supervisor_cgroup.rs):
    /// undone like `Cgroup`, but neither joined by `exec` nor read for usage.
    SupervisorCgroup(PathBuf),
    /// Controllers enabled in `dir`'s cgroup.subtree_control (a cgroup not ours:
    /// the hierarchy's root) for the container's cgroup `user`; disabled again when
    /// the last such user goes (cgroup/subtree.rs).
    SubtreeControl { dir: PathBuf, user: PathBuf },
    /// The host ids of the container's user namespace (held while this journal exists).
    Ids(crate::userns::IdMap),
    /// A link in host-setup's own network namespace (inode `ns`): a bridge, or a
    /// veth's host end (its peer goes with it).
    HostLink { iface: String, ns: u64 },
    /// A sysctl of host-setup's own netns (a path under /proc/sys), and the value
    /// it had before, written back on undo.
    Sysctl { key: String, old: String, ns: u64 },
    /// An nf_tables table of our own in host-setup's own netns.
    NftTable { name: String, ns: u64 },
    /// The container's address on a bridge network (a lease file naming it).
    Lease { network: String, container: String },
    /// A filesystem mounted in the host's mount namespace: `--disk`'s tmpfs.
    Mount(PathBuf),
    /// A systemd transient unit (hsrun --systemd-cgroup) and its cgroup dir: the
    /// container's cgroup, stopped with StopUnit (systemd/transient.rs).
    Unit { name: String, dir: PathBuf },
    /// A parent cgroup dir an OCI container's nested cgroupsPath made (it was not
    /// there): removed on undo if empty, kept while another container uses it.
    CgroupAncestor(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// The first record: what the container is, the init binary it runs (`exec`
    /// uses the same), and the journal's format.
    Spec {
        spec: Box<Spec>,
        init: PathBuf,
        format: u32,
    },
    /// A built layer directory in use (for init's lowerdir and for pruning).
    Layer {
        dir: PathBuf,
    },
    Made(Resource),
    Started {
        role: Role,
        proc: Proc,
    },
    /// init reported that the main process runs.
    Ready,
    /// init ended: its exit code (128+N for a signal), and the cgroup's OOM kills.
    Exited {
        code: i32,
        oom_kills: u64,
    },
}

impl Record {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("records always serialise")
    }
}

/// A container's journal, read back.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub records: Vec<Record>,
}

impl Journal {
    /// Read `<name>.journal`; None if there is none (the container is not up).
    pub fn read(paths: &Paths, name: &str) -> Result<Option<Journal>> {
        let path = paths.journal(name);
        match fs::read_to_string(&path) {
            Ok(text) => Journal::parse(&text, &path, name).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).sys(|| format!("read {}", path.display())),
        }
    }

    pub fn parse(text: &str, path: &Path, name: &str) -> Result<Journal> {
        if text.starts_with("spec ") {
            return Err(crate::precondition!(
                "{}: a journal of host-setup 0.1 (text records), which this version does not read: take {name} \
                 down with the host-setup that started it, or remove what the file lists (its netns, cgroups and \
                 {}) and then the file",
                path.display(),
                path.with_extension("").display()
            ));
        }
        let mut records = vec![];
        for (i, line) in text.split_inclusive('\n').enumerate() {
            match serde_json::from_str::<Record>(line.trim_end()) {
                Ok(r) => records.push(r),
                // Killed in the middle of a write: the last line has no newline.
                Err(e) if !line.ends_with('\n') => log::debug!("{}: skipping a torn last line ({e})", path.display()),
                Err(e) => {
                    return Err(crate::precondition!(
                        "{} line {}: {e}: written by another version of host-setup? take {name} down with the \
                         version that started it",
                        path.display(),
                        i + 1
                    ))
                }
            }
        }
        if let Some(Record::Spec { format, .. }) = records.first() {
            if *format != FORMAT {
                return Err(crate::precondition!(
                    "{}: journal format {format}, this host-setup reads {FORMAT}: take {name} down with the version \
                     that started it",
                    path.display()
                ));
            }
        }
        Ok(Journal { records })
    }

    pub fn spec(&self) -> Option<Spec> {
        self.records.iter().find_map(|r| match r {
            Record::Spec { spec, .. } => Some(Spec::clone(spec)),
            _ => None,
        })
    }

    /// The init binary the container was started with (`exec` uses the same).
    pub fn init_bin(&self) -> Option<PathBuf> {
        self.records.iter().find_map(|r| match r {
            Record::Spec { init, .. } => Some(init.clone()),
            _ => None,
        })
    }

    pub fn proc(&self, role: Role) -> Option<Proc> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Started { role: r, proc } if *r == role => Some(*proc),
            _ => None,
        })
    }

    pub fn made(&self) -> impl DoubleEndedIterator<Item = &Resource> {
        self.records.iter().filter_map(|r| match r {
            Record::Made(m) => Some(m),
            _ => None,
        })
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.made()
            .filter_map(|r| match r {
                Resource::Cgroup(p) | Resource::Unit { dir: p, .. } => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// The state of one container, in words.
    pub fn state_word(&self) -> String {
        match (self.proc(Role::Init), self.exited()) {
            (Some(p), None) if p.alive() && self.is_ready() => "running".into(),
            (Some(p), None) if p.alive() => "starting".into(),
            (_, Some((code, _))) => format!("exited ({code})"),
            (Some(_), None) => "gone (init ended unrecorded; run down to clean up)".into(),
            (None, None) => "incomplete (setup was interrupted; run down or up again)".into(),
        }
    }

    /// The host ids of the container's user namespace (--userns).
    pub fn ids(&self) -> Option<crate::userns::IdMap> {
        self.made().find_map(|r| match r {
            Resource::Ids(ids) => Some(*ids),
            _ => None,
        })
    }

    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Layer { dir } => Some(dir.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn has_netns(&self) -> bool {
        self.made().any(|r| matches!(r, Resource::Netns(_)))
    }

    pub fn is_ready(&self) -> bool {
        self.records.contains(&Record::Ready)
    }

    pub fn exited(&self) -> Option<(i32, u64)> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Exited { code, oom_kills } => Some((*code, *oom_kills)),
            _ => None,
        })
    }

    /// Replace the journal on disk with `records` (after a teardown that could not
    /// undo everything: what is left, for the next `down`).
    pub fn rewrite(path: &Path, records: &[Record]) -> Result<()> {
        let text: String = records.iter().map(|r| r.to_line() + "\n").collect();
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(super::perms::FILE)
            .open(path)
            .sys(|| format!("open {}", path.display()))?;
        f.write_all(text.as_bytes()).sys(|| format!("write {}", path.display()))
    }
}

/// Appends records to a journal. O_APPEND: the supervisor appends to the same file
/// from another process; each record is one write() of one line.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
}

impl JournalWriter {
    pub fn open(paths: &Paths, name: &str) -> Result<JournalWriter> {
        JournalWriter::at(paths.journal(name))
    }

    /// A journal at `path` (a network's, under networks/NAME/).
    pub fn at(path: PathBuf) -> Result<JournalWriter> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(super::perms::FILE)
            .open(&path)
            .sys(|| format!("open {}", path.display()))?;
        Ok(JournalWriter { file, path })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    pub fn append(&mut self, r: &Record) -> Result<()> {
        let line = r.to_line();
        log::trace!("journal {}: {line}", self.path.display());
        self.file.write_all(format!("{line}\n").as_bytes()).sys(|| format!("write {}", self.path.display()))?;
        crate::fault::recorded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Options;

    fn spec_record(name: &str, opts: &Options) -> Record {
        Record::Spec { spec: Box::new(Spec::new(name, opts).unwrap()), init: "/usr/lib/hs/init".into(), format: FORMAT }
    }

    #[test]
    fn records_round_trip_one_line_each() {
        let recs = [
            spec_record("red", &Options::default()),
            spec_record(
                "green",
                &Options {
                    address: Some("10.1.2.3/16".into()),
                    peer: Some("yellow".into()),
                    layers: vec!["/".into()],
                    memory: Some("1G".into()),
                    command: vec!["sh".into(), "-c".into(), "echo a\tb \\ \n".into()],
                    ..Default::default()
                },
            ),
            spec_record("blue", &Options { seccomp: Some("unconfined".into()), ..Default::default() }),
            Record::Layer { dir: "/var/lib/host-setup/layers/tools-0123".into() },
            Record::Made(Resource::Dir("/a b/c".into())),
            Record::Made(Resource::Netns("RED".into())),
            Record::Made(Resource::Link { netns: "RED".into(), iface: "veth0".into() }),
            Record::Made(Resource::Cgroup("/sys/fs/cgroup/cpu/host-setup/red".into())),
            Record::Made(Resource::HostLink { iface: "hs0".into(), ns: 4026531840 }),
            Record::Made(Resource::Sysctl { key: "net/ipv4/conf/hs0/forwarding".into(), old: "0".into(), ns: 1 }),
            Record::Made(Resource::NftTable { name: "host-setup-hs0".into(), ns: 1 }),
            Record::Made(Resource::Lease { network: "hs0".into(), container: "red".into() }),
            Record::Made(Resource::Mount("/s/containers/red/disk".into())),
            Record::Started { role: Role::Init, proc: Proc { pid: 42, start: 123456 } },
            Record::Started { role: Role::Supervisor, proc: Proc { pid: 41, start: 123455 } },
            Record::Ready,
            Record::Exited { code: 137, oom_kills: 1 },
        ];
        let text: String = recs.iter().map(|r| r.to_line() + "\n").collect();
        assert_eq!(text.lines().count(), recs.len(), "one line each:\n{text}");
        let j = Journal::parse(&text, Path::new("/j"), "red").unwrap();
        assert_eq!(j.records, recs);
        assert_eq!(j.proc(Role::Init), Some(Proc { pid: 42, start: 123456 }));
        assert_eq!(j.init_bin(), Some(PathBuf::from("/usr/lib/hs/init")));
        assert_eq!(j.exited(), Some((137, 1)));
        assert_eq!(j.cgroup_dirs().len(), 1);
    }

    #[test]
    fn the_exited_record_init_writes_as_supervisor_is_ours() {
        // init --wait-child (init/src/waiter.rs) writes this record without serde.
        for (code, oom_kills) in [(0, 0), (137, 1), (-1, u64::MAX)] {
            let mut buf = [0; 96];
            let line = std::str::from_utf8(init::waiter::exited_line(code, oom_kills, &mut buf)).unwrap();
            assert_eq!(line, Record::Exited { code, oom_kills }.to_line() + "\n");
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_anything_else_is_refused() {
        let good = Record::Made(Resource::Netns("RED".into())).to_line();
        let j = Journal::parse(&format!("{good}\n{{\"made\":{{\"net"), Path::new("/j"), "red").unwrap();
        assert_eq!(j.records.len(), 1);
        let e = Journal::parse(&format!("{{\"made\":{{\"bridge\":\"x\"}}}}\n{good}\n"), Path::new("/j"), "red")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/j line 1: unknown variant `bridge`"), "{e}");
        assert!(e.contains("take red down with the version that started it"), "{e}");
        let e = Journal::parse("{\"layer\":{\"dir\":\"/x\",\"extra\":1}}\n", Path::new("/j"), "red").unwrap_err();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn the_seccomp_choice_is_recorded_and_older_specs_read_as_unconfined() {
        use crate::seccomp::Seccomp;
        let line = spec_record("red", &Options::default()).to_line();
        assert!(line.contains("\"seccomp\":\"default\""), "{line}");
        let file = Seccomp::File { path: "/p.json".into(), text: "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}".into() };
        let mut rec = spec_record("red", &Options::default());
        if let Record::Spec { spec, .. } = &mut rec {
            spec.seccomp = file.clone();
        }
        let j = Journal::parse(&(rec.to_line() + "\n"), Path::new("/j"), "red").unwrap();
        assert_eq!(j.spec().unwrap().seccomp, file);
        // Written before the field existed: those containers ran without a filter.
        let old = line.replace(",\"seccomp\":\"default\"", "");
        assert_ne!(old, line);
        let j = Journal::parse(&(old + "\n"), Path::new("/j"), "red").unwrap();
        assert_eq!(j.spec().unwrap().seccomp, Seccomp::Unconfined);
        // Unknown fields are still refused.
        let e = Journal::parse(&(line.replace("\"seccomp\"", "\"seccomp2\"") + "\n"), Path::new("/j"), "red");
        assert!(e.unwrap_err().to_string().contains("unknown field `seccomp2`"));
    }

    #[test]
    fn an_old_text_journal_is_refused_with_what_to_do() {
        let e = Journal::parse("spec name red\nmade netns RED\n", Path::new("/s/containers/red.journal"), "red")
            .unwrap_err();
        assert_eq!(e.exit_code(), 3);
        let e = e.to_string();
        assert!(e.contains("a journal of host-setup 0.1 (text records)"), "{e}");
        assert!(e.contains("take red down with the host-setup that started it"), "{e}");
        let mut spec = spec_record("red", &Options::default());
        if let Record::Spec { format, .. } = &mut spec {
            *format = 9;
        }
        let e = Journal::parse(&(spec.to_line() + "\n"), Path::new("/j"), "red").unwrap_err();
        assert!(e.to_string().contains("journal format 9, this host-setup reads 2"), "{e}");
    }
}
