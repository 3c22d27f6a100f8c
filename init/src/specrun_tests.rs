use super::*;
use crate::spec::{Field, Writer, NONE};

fn stream(f: impl FnOnce(&mut Writer<&mut dyn FnMut(&[u8])>)) -> &'static [u8] {
    let mut buf = Vec::new();
    {
        let mut out = |b: &[u8]| buf.extend_from_slice(b);
        let mut w = Writer::new(&mut out as &mut dyn FnMut(&[u8]));
        f(&mut w);
        w.end();
    }
    buf.leak()
}

fn items(s: &'static [u8]) -> Vec<Item<'static>> {
    check(s).unwrap().items().collect()
}

#[test]
fn records_decode_to_what_init_does() {
    let s = stream(|w| {
        w.record(
            spec::MOUNT,
            &[
                Field::Bytes(b"/h/data"),
                Field::Bytes(b"/data"),
                Field::Bytes(b""),
                Field::U64((sys::MS_BIND | sys::MS_RDONLY) as u64),
                Field::Bytes(b""),
                Field::U64(NONE),
                Field::U64(NONE),
            ],
        );
        w.record(spec::USER, &[Field::U64(1000), Field::U64(100), Field::U64(NONE), Field::U64(5), Field::U64(6)]);
        w.record(spec::CAPS, &[Field::U64(1), Field::U64(2), Field::U64(3), Field::U64(4), Field::U64(5)]);
        w.record(
            spec::DEVICE,
            &[
                Field::Bytes(b"/dev/fuse"),
                Field::Bytes(b"c"),
                Field::U64(10),
                Field::U64(229),
                Field::U64(0o100666),
                Field::U64(NONE),
                Field::U64(NONE),
            ],
        );
        w.record(
            spec::HOOK,
            &[
                Field::Bytes(b"/bin/h"),
                Field::U64(5),
                Field::U64(2),
                Field::Bytes(b"h"),
                Field::Bytes(b"a"),
                Field::Bytes(b"E=1"),
            ],
        );
        w.record(spec::SYSCTL, &[Field::Bytes(b"net.ipv4.ip_forward"), Field::Bytes(b"1")]);
        w.record(spec::ROOT_PROPAGATION, &[Field::U64((MS_REC | crate::sys::spec::MS_SLAVE) as u64)]);
    });
    let spec = check(s).unwrap();
    assert_eq!(spec.propagation, MS_REC | crate::sys::spec::MS_SLAVE);
    assert!(spec.root_records && !spec.mounts_proc && !spec.no_pivot);
    let it = items(s);
    assert_eq!(it.len(), 7);
    let Item::Mount(m) = &it[0] else { panic!("{:?}", it[0]) };
    assert_eq!((m.source, m.target, m.fstype, m.src_fd), (&b"/h/data"[..], &b"/data"[..], &b""[..], NONE));
    let Item::User(u) = &it[1] else { panic!() };
    let mut g = [0; GIDS_MAX];
    let n = u.gids(&mut g);
    assert_eq!((u.uid, u.gid, u.umask, &g[..n]), (1000, 100, 0o022, &[5, 6][..]));
    let Item::Caps(c) = &it[2] else { panic!() };
    assert_eq!((c.bounding, c.effective, c.permitted, c.inheritable, c.ambient), (1, 2, 3, 4, 5));
    let Item::Device(d) = &it[3] else { panic!() };
    assert_eq!((d.kind, d.major, d.minor, d.mode), (b'c', 10, 229, 0o666));
    let Item::Hook(h) = &it[4] else { panic!() };
    assert_eq!((h.path, h.timeout, h.argc, h.rest.remaining()), (&b"/bin/h"[..], 5, 2, 3));
    assert!(matches!(it[5], Item::Sysctl { key: b"net.ipv4.ip_forward", value: b"1" }));
}

#[test]
fn proc_mount_and_flags_are_noted() {
    let s = stream(|w| {
        let f = |t: &'static [u8]| {
            [
                Field::Bytes(b"proc"),
                Field::Bytes(t),
                Field::Bytes(b"proc"),
                Field::U64(0),
                Field::Bytes(b""),
                Field::U64(0),
                Field::U64(NONE),
            ]
        };
        w.record(spec::MOUNT, &f(b"/proc"));
        w.record(spec::NO_PIVOT, &[]);
        w.record(spec::ROOT_READONLY, &[]);
    });
    let spec = check(s).unwrap();
    assert!(spec.mounts_proc && spec.no_pivot && spec.root_readonly);
    assert_eq!(spec.propagation, MS_PRIVATE | MS_REC, "the default");
    assert!(spec.find(spec::CWD).is_none() && spec.find(spec::NO_PIVOT).is_some());
}

fn refused(s: &'static [u8]) -> String {
    let e = check(s).unwrap_err();
    let mut l = msg::Line::new();
    e.write_to(&mut l);
    String::from_utf8(l.as_bytes().to_vec()).unwrap()
}

#[test]
fn malformed_streams_are_refused() {
    assert!(refused(b"garbage!").contains("bad magic"), "{}", refused(b"garbage!"));
    assert!(refused(b"HSS").contains("truncated"));
    // No END record.
    let mut s = crate::spec::MAGIC.to_vec();
    s.extend_from_slice(&[spec::NO_NEW_PRIVS, 0, 0]);
    assert!(refused(s.leak()).contains("truncated"));
    let unknown = stream(|w| w.record(200, &[]));
    assert!(refused(unknown).contains("an unknown record: unknown record tag"), "{}", refused(unknown));
    let missing = stream(|w| w.record(spec::CWD, &[]));
    assert_eq!(
        refused(missing),
        "--spec-fd: CWD: missing field: EINVAL: invalid argument; host-setup and init disagree on the record format (src/spec.rs)"
    );
    let extra = stream(|w| w.record(spec::CWD, &[Field::Bytes(b"/"), Field::Bytes(b"/x")]));
    assert!(refused(extra).contains("more fields"));
    let nul = stream(|w| w.record(spec::MASK, &[Field::Bytes(b"/a\0b")]));
    assert!(refused(nul).contains("NUL"));
    let short = stream(|w| w.record(spec::RLIMIT, &[Field::U64(7), Field::Bytes(b"x"), Field::U64(1)]));
    assert!(refused(short).contains("not 8 bytes"));
    let bad_dev = stream(|w| {
        w.record(
            spec::DEVICE,
            &[
                Field::Bytes(b"/dev/x"),
                Field::Bytes(b"z"),
                Field::U64(1),
                Field::U64(1),
                Field::U64(0o666),
                Field::U64(0),
                Field::U64(0),
            ],
        )
    });
    assert!(refused(bad_dev).contains("c, b or p"));
    let bad_prop = stream(|w| w.record(spec::ROOT_PROPAGATION, &[Field::U64(MS_REC as u64)]));
    assert!(refused(bad_prop).contains("not a propagation"));
    let hook =
        stream(|w| w.record(spec::HOOK, &[Field::Bytes(b"/h"), Field::U64(0), Field::U64(2), Field::Bytes(b"h")]));
    assert!(refused(hook).contains("argc"));
}

#[test]
fn sysctl_names_become_proc_paths() {
    let mut b = [0u8; PATH_MAX];
    assert_eq!(sysctl_path(b"net.ipv4.ip_forward", &mut b).unwrap().to_bytes(), b"/proc/sys/net/ipv4/ip_forward");
    assert_eq!(sysctl_path(b"kernel.shmmax", &mut b).unwrap().to_bytes(), b"/proc/sys/kernel/shmmax");
    for bad in [&b""[..], b"net/../x", b"net..x", b".net", b"net."] {
        assert!(sysctl_path(bad, &mut b).is_none(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn create_container_hooks_and_the_state_decode() {
    let s = stream(|w| {
        w.record(spec::CREATE_HOOK, &[Field::Bytes(b"/h"), Field::U64(0), Field::U64(1), Field::Bytes(b"h")]);
        w.record(spec::STATE, &[Field::Bytes(b"{"), Field::Bytes(b","), Field::Bytes(b"}")]);
    });
    // They run before the pivot: like MOUNT, they need --rootfs.
    assert!(check(s).unwrap().root_records);
    let i = items(s);
    assert!(matches!(&i[0], Item::Hook(h) if h.path == b"/h" && h.argc == 1 && h.timeout == 0), "{i:?}");
    assert!(matches!(i[1], Item::State { head: b"{", middle: b",", tail: b"}" }), "{i:?}");
    // A STATE without its three pieces is refused whole.
    assert!(check(stream(|w| w.record(spec::STATE, &[Field::Bytes(b"{")]))).is_err());
}
