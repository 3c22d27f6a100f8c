//! The in-container part of a container described in full (spec::Explicit),
//! as the records init reads on `--spec-fd N` (format: init/src/spec.rs, one
//! definition for both sides), and init's command line for it. A unit test
//! decodes what is encoded here with init's own `Reader`.

use std::os::fd::RawFd;

use init::flag;
use init::spec::{self as rec, Field, Writer};

use crate::contract::{InitArgs, READY_FD, SECCOMP_FD};
use crate::spec::{Explicit, Inside};

/// The fd on which init reads the records (`init --spec-fd 6`): after the
/// seccomp filter's; a container described in full has no layers on LOWER_FD.
pub const SPEC_FD: RawFd = SECCOMP_FD + 1;
/// Where spawn.rs puts the socket connected to `--console-socket` (CONSOLE).
pub const CONSOLE_FD: RawFd = SPEC_FD + 1;

/// init's fds in the child between clone and exec: 3 ready, 4 init's image,
/// 5 seccomp, 6 records — all moved up by an OCI caller's `--preserve-fds N`,
/// whose fds 3..3+N the process gets as they are (init --preserve-fds N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fds {
    pub ready: RawFd,
    pub init: RawFd,
    pub seccomp: RawFd,
    pub spec: RawFd,
}

impl Fds {
    pub fn of(a: &InitArgs) -> Fds {
        let n = a.explicit.as_ref().map_or(0, |x| x.preserve_fds);
        Fds { ready: READY_FD + n, init: READY_FD + 1 + n, seccomp: SECCOMP_FD + n, spec: SPEC_FD + n }
    }
}

/// What the launch of a container described in full adds to init's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplicitLaunch {
    /// CLONE_NEW* of the namespaces made at clone (spec::Namespaces::clone_flags).
    pub clone_flags: libc::c_int,
    /// Namespaces joined by path before the clone (nsjoin.rs): (path, CLONE_NEW*).
    pub joins: Vec<(std::path::PathBuf, libc::c_int)>,
    /// The caller's fds 3..3+N the process gets (--preserve-fds N).
    pub preserve_fds: RawFd,
    /// A user namespace joined by path: the child joins it first (userns/join.rs).
    pub join_user: Option<std::path::PathBuf>,
    /// A new cgroup namespace (init --cgroupns).
    pub cgroupns: bool,
    /// The process's environment, exactly.
    pub env: Vec<String>,
    /// The records, encoded.
    pub records: Vec<u8>,
    /// PIVOT_SYNC: the ready fd is a socket init also reads from (spawn.rs).
    pub pivot_sync: bool,
}

impl ExplicitLaunch {
    /// A joined mount namespace need not hold the netns's bind mount (it may
    /// predate it, or not propagate it): then host-setup enters the netns by its
    /// host path before the mount namespace, and init is born in it (spawn.rs).
    pub fn host_enters_netns(&self, netns: &std::path::Path) -> bool {
        !netns.as_os_str().is_empty() && self.joins.iter().any(|(_, f)| *f == libc::CLONE_NEWNS)
    }

    pub fn new(e: &Explicit) -> ExplicitLaunch {
        ExplicitLaunch {
            clone_flags: e.namespaces.clone_flags(),
            joins: e.namespaces.joins(),
            preserve_fds: e.preserve_fds as RawFd,
            join_user: match &e.namespaces.user {
                crate::spec::Ns::Join(p) => Some(p.clone()),
                _ => None,
            },
            cgroupns: e.namespaces.cgroup == crate::spec::Ns::New,
            env: e.env.clone(),
            pivot_sync: e.inside.pivot_sync,
            // The console socket sits right after the records (spawn.rs), which move up
            // with --preserve-fds.
            records: encode(&Inside {
                console_fd: e.terminal.then_some(CONSOLE_FD + e.preserve_fds as RawFd),
                ..e.inside.clone()
            }),
        }
    }
}

fn b(s: &str) -> Field<'_> {
    Field::Bytes(s.as_bytes())
}

/// `inside` as records, in the order of init/src/spec.rs's table.
pub fn encode(i: &Inside) -> Vec<u8> {
    encode_with(i, &[])
}

/// The same, `src_fds[n]` the fd of the detached mount MOUNT record n attaches
/// (an idmapped volume, contract_run.rs); None or absent: none.
pub fn encode_with(i: &Inside, src_fds: &[Option<RawFd>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(|bytes: &[u8]| out.extend_from_slice(bytes));
    if let Some(p) = i.root_propagation {
        w.record(rec::ROOT_PROPAGATION, &[Field::U64(p)]);
    }
    for (n, m) in i.mounts.iter().enumerate() {
        let src_fd = src_fds.get(n).copied().flatten().map_or(rec::NONE, |fd| fd as u64);
        let f = [
            b(&m.source),
            b(&m.target),
            b(&m.fstype),
            Field::U64(m.flags),
            b(&m.data),
            Field::U64(m.propagation),
            Field::U64(src_fd),
        ];
        w.record(rec::MOUNT, &f);
    }
    for d in &i.devices {
        let f = [
            b(&d.path),
            Field::U64(d.kind as u64),
            Field::U64(d.major),
            Field::U64(d.minor),
            Field::U64(d.mode as u64),
            Field::U64(d.uid as u64),
            Field::U64(d.gid as u64),
        ];
        w.record(rec::DEVICE, &f);
    }
    for (target, link) in &i.symlinks {
        w.record(rec::SYMLINK, &[b(target), b(link)]);
    }
    if i.root_readonly {
        w.record(rec::ROOT_READONLY, &[]);
    }
    if i.no_pivot {
        w.record(rec::NO_PIVOT, &[]);
    }
    if i.pivot_sync {
        w.record(rec::PIVOT_SYNC, &[]);
    }
    if let Some(fd) = i.console_fd {
        w.record(rec::CONSOLE, &[Field::U64(fd as u64)]);
    }
    for p in &i.masked {
        w.record(rec::MASK, &[b(p)]);
    }
    for p in &i.readonly {
        w.record(rec::READONLY, &[b(p)]);
    }
    for (k, v) in &i.sysctl {
        w.record(rec::SYSCTL, &[b(k), b(v)]);
    }
    if let Some(d) = &i.domainname {
        w.record(rec::DOMAINNAME, &[b(d)]);
    }
    for r in &i.rlimits {
        w.record(rec::RLIMIT, &[Field::U64(r.resource as u64), Field::U64(r.soft), Field::U64(r.hard)]);
    }
    if let Some(v) = i.oom_score_adj {
        w.record(rec::OOM_SCORE_ADJ, &[Field::U64(v as u64)]);
    }
    let u = &i.user;
    let mut f =
        vec![Field::U64(u.uid as u64), Field::U64(u.gid as u64), Field::U64(u.umask.map_or(rec::NONE, u64::from))];
    f.extend(u.additional_gids.iter().map(|g| Field::U64(*g as u64)));
    w.record(rec::USER, &f);
    if let Some(c) = &i.caps {
        let f = [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient].map(Field::U64);
        w.record(rec::CAPS, &f);
    }
    if i.no_new_privs {
        w.record(rec::NO_NEW_PRIVS, &[]);
    }
    if !i.cwd.is_empty() {
        w.record(rec::CWD, &[b(&i.cwd)]);
    }
    let fifo = i.start_fifo.as_ref().map(|p| p.display().to_string());
    if let Some(p) = &fifo {
        w.record(rec::START_FIFO, &[b(p)]);
    }
    for (tag, hooks) in [(rec::HOOK, &i.hooks), (rec::CREATE_HOOK, &i.create_hooks)] {
        for h in hooks {
            let mut f = vec![b(&h.path), Field::U64(h.timeout.unwrap_or(0)), Field::U64(h.args.len() as u64)];
            f.extend(h.args.iter().map(|a| b(a)));
            f.extend(h.env.iter().map(|e| b(e)));
            w.record(tag, &f);
        }
    }
    if let Some([head, middle, tail]) = &i.hook_state {
        w.record(rec::STATE, &[b(head), b(middle), b(tail)]);
    }
    w.end();
    out
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// init's argv for a container described in full: its cgroups, netns and root,
/// the records on SPEC_FD, then `--exec -- ARGS` (the process is PID 1, as with runc).
pub fn argv(a: &InitArgs, x: &ExplicitLaunch) -> Vec<String> {
    let mut v = vec![s(&a.init_bin)];
    let mut opt = |name: &str, value: String| v.extend([name.to_string(), value]);
    // In a new user namespace init is root there only: it may neither open the
    // host root's cgroup files nor setns into the host's netns. spawn.rs joins
    // both for it (the child writes "0" to files the host opened; it is born in
    // the netns).
    let host_joins = a.userns.is_some() || x.join_user.is_some();
    for d in a.cgroup_dirs.iter().filter(|_| !a.born_in_cgroup && !host_joins) {
        opt(flag::CGROUP, s(d));
    }
    if !a.netns.as_os_str().is_empty() && !x.host_enters_netns(&a.netns) && !host_joins {
        opt(flag::NETNS, s(&a.netns));
    }
    opt(flag::ROOTFS, s(&a.rootfs));
    if !a.hostname.is_empty() {
        opt(flag::HOSTNAME, a.hostname.clone());
    }
    let fds = Fds::of(a);
    opt(flag::READY_FD, fds.ready.to_string());
    if a.filtered() {
        opt(flag::SECCOMP_FD, fds.seccomp.to_string());
    }
    opt(flag::SPEC_FD, fds.spec.to_string());
    if x.preserve_fds > 0 {
        opt(flag::PRESERVE_FDS, x.preserve_fds.to_string());
    }
    if x.cgroupns {
        v.push(flag::CGROUPNS.into());
    }
    v.extend([flag::EXEC.to_string(), flag::END.to_string()]);
    v.extend(a.command.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use init::spec::Reader;

    use super::*;
    use crate::spec::{Caps, Hook, Mount, Rlimit, User};

    #[test]
    fn init_reads_what_is_encoded() {
        let i = Inside {
            root_propagation: Some(libc::MS_SLAVE | libc::MS_REC),
            mounts: vec![Mount {
                source: "proc".into(),
                target: "/proc".into(),
                fstype: "proc".into(),
                flags: libc::MS_NOSUID,
                data: String::new(),
                propagation: 0,
            }],
            masked: vec!["/proc/kcore".into()],
            sysctl: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
            rlimits: vec![Rlimit { resource: 7, soft: 100, hard: 200 }],
            user: User { uid: 1000, gid: 1001, umask: None, additional_gids: vec![5, 6] },
            caps: Some(Caps { bounding: 1, effective: 2, permitted: 3, inheritable: 4, ambient: 5 }),
            cwd: "/tmp".into(),
            start_fifo: Some("/run/hsrun/containers/x/exec.fifo".into()),
            hooks: vec![Hook {
                path: "/bin/true".into(),
                args: vec!["true".into(), "a".into()],
                env: vec!["A=1".into()],
                timeout: Some(3),
            }],
            ..Default::default()
        };
        let bytes = encode(&i);
        let mut r = Reader::new(&bytes).unwrap();
        let mut tags = vec![];
        while let Some(mut rec) = r.next_record().unwrap() {
            tags.push(rec.tag);
            match rec.tag {
                rec::ROOT_PROPAGATION => assert_eq!(rec.u64().unwrap(), libc::MS_SLAVE | libc::MS_REC),
                rec::MOUNT => {
                    assert_eq!(rec.remaining(), 7);
                    assert_eq!(rec.bytes().unwrap(), b"proc");
                    assert_eq!(rec.bytes().unwrap(), b"/proc");
                    assert_eq!(rec.bytes().unwrap(), b"proc");
                    assert_eq!(rec.u64().unwrap(), libc::MS_NOSUID);
                    assert_eq!(rec.bytes().unwrap(), b"");
                    assert_eq!(rec.u64().unwrap(), 0);
                    assert_eq!(rec.u64().unwrap(), rec::NONE);
                }
                rec::MASK => assert_eq!(rec.bytes().unwrap(), b"/proc/kcore"),
                rec::SYSCTL => {
                    assert_eq!((rec.bytes().unwrap(), rec.bytes().unwrap()), (&b"net.ipv4.ip_forward"[..], &b"1"[..]))
                }
                rec::RLIMIT => assert_eq!([rec.u64().unwrap(), rec.u64().unwrap(), rec.u64().unwrap()], [7, 100, 200]),
                rec::USER => {
                    let v: Vec<u64> = (0..rec.remaining()).map(|_| rec.u64().unwrap()).collect();
                    assert_eq!(v, [1000, 1001, rec::NONE, 5, 6]);
                }
                rec::CAPS => {
                    let v: Vec<u64> = (0..5).map(|_| rec.u64().unwrap()).collect();
                    assert_eq!(v, [1, 2, 3, 4, 5]);
                }
                rec::CWD => assert_eq!(rec.bytes().unwrap(), b"/tmp"),
                rec::START_FIFO => assert_eq!(rec.bytes().unwrap(), b"/run/hsrun/containers/x/exec.fifo"),
                rec::HOOK => {
                    assert_eq!(rec.bytes().unwrap(), b"/bin/true");
                    assert_eq!((rec.u64().unwrap(), rec.u64().unwrap()), (3, 2));
                    assert_eq!((rec.bytes().unwrap(), rec.bytes().unwrap()), (&b"true"[..], &b"a"[..]));
                    assert_eq!(rec.bytes().unwrap(), b"A=1");
                    assert_eq!(rec.remaining(), 0);
                }
                t => panic!("unexpected record {t}"),
            }
        }
        // The table's order: the wait for start after everything but the startContainer hooks.
        assert_eq!(
            tags,
            [
                rec::ROOT_PROPAGATION,
                rec::MOUNT,
                rec::MASK,
                rec::SYSCTL,
                rec::RLIMIT,
                rec::USER,
                rec::CAPS,
                rec::CWD,
                rec::START_FIFO,
                rec::HOOK
            ]
        );
    }

    #[test]
    fn init_gets_the_create_container_hooks_and_the_state() {
        use init::records::{decode, Item};
        let hook = |p: &str| Hook { path: p.into(), args: vec!["h".into()], env: vec![], timeout: None };
        let i = Inside {
            hooks: vec![hook("/start")],
            create_hooks: vec![hook("/create1"), hook("/create2")],
            hook_state: Some(["{\"status\":\"".into(), "\",\"pid\":".into(), "}".into()]),
            ..Default::default()
        };
        let bytes = encode(&i);
        let mut r = Reader::new(&bytes).unwrap();
        let mut got = vec![];
        while let Some(rec) = r.next_record().unwrap() {
            let tag = rec.tag;
            match decode(rec).unwrap() {
                Item::Hook(h) => got.push(format!("{tag}:{}", String::from_utf8_lossy(h.path))),
                Item::State { head, middle, tail } => {
                    // What init writes: head, the status, middle, its pid, tail.
                    let json = [head, b"creating", middle, b"42", tail].concat();
                    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
                    assert_eq!(v, serde_json::json!({"status": "creating", "pid": 42}));
                    got.push("state".into());
                }
                _ => {}
            }
        }
        let (h, c) = (rec::HOOK, rec::CREATE_HOOK);
        assert_eq!(got, [format!("{h}:/start"), format!("{c}:/create1"), format!("{c}:/create2"), "state".into()]);
    }
}
