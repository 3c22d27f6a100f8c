use std::ffi::{CStr, CString};

use init::args::{parse, Parsed};

use super::*;

fn args(cmd: &[&str]) -> InitArgs {
    InitArgs {
        init_bin: "/usr/lib/host-setup/init".into(),
        image_empty: "/var/lib/host-setup/containers/red/image".into(),
        cgroup_dirs: vec!["/sys/fs/cgroup/cpu/host-setup/red".into(), "/sys/fs/cgroup/memory/host-setup/red".into()],
        born_in_cgroup: false,
        netns: "/run/netns/RED".into(),
        rootfs: "/s/containers/red/merge".into(),
        lower: vec!["/s/layers/tools-1".into(), "/s/layers/myroot-2".into()],
        upper: "/s/containers/red/upper".into(),
        work: "/s/containers/red/work".into(),
        hostname: "RED".into(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        pid1: Default::default(),
        contain: true,
        seccomp: Seccomp::Default,
        userns: None,
        explicit: None,
        run: None,
    }
}

/// Parse `argv` with init's own parser, and hand its options to `check`.
fn with_init_parser(argv: &[String], check: impl FnOnce(&init::args::Opts, &[&CStr])) {
    let owned: Vec<CString> = argv.iter().map(|a| CString::new(a.as_str()).unwrap()).collect();
    let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
    match parse(refs.iter().copied()) {
        Ok(Parsed::Run(o)) => check(&o, &refs),
        other => panic!("init does not take {argv:?}: {other:?}"),
    }
}

fn text(c: Option<&CStr>) -> Option<&str> {
    c.map(|c| c.to_str().unwrap())
}

#[test]
fn init_parses_what_host_setup_builds() {
    let a = args(&["/bin/sh", "-c", "echo hi"]);
    with_init_parser(&a.argv(), |o, argv| {
        let cgroups: Vec<&str> = o.cgroups().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(cgroups, ["/sys/fs/cgroup/cpu/host-setup/red", "/sys/fs/cgroup/memory/host-setup/red"]);
        assert_eq!(text(o.netns), Some("/run/netns/RED"));
        assert_eq!(text(o.lower), Some("/s/layers/tools-1:/s/layers/myroot-2"));
        assert_eq!(text(o.upper), Some("/s/containers/red/upper"));
        assert_eq!(text(o.work), Some("/s/containers/red/work"));
        assert_eq!(text(o.rootfs), Some("/s/containers/red/merge"));
        assert_eq!(text(o.hostname), Some("RED"));
        assert_eq!(o.ready_fd, Some(READY_FD));
        assert_eq!(o.seccomp_fd, Some(SECCOMP_FD));
        assert!(o.cgroupns && o.dev && o.mask_proc && o.restrict);
        assert!(!o.pause && !o.exec && !o.pgroup);
        let cmd: Vec<&str> = argv[o.cmd.unwrap()..].iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(cmd, ["/bin/sh", "-c", "echo hi"]);
    });
    with_init_parser(&args(&[]).argv(), |o, _| assert!(o.pause && o.cmd.is_none()));
    let group = InitArgs { pid1: Pid1::SuperviseGroup, ..args(&["sh"]) };
    with_init_parser(&group.argv(), |o, _| assert!(o.pgroup && !o.exec));
    let exec = InitArgs { pid1: Pid1::Exec, contain: false, ..args(&["sh"]) };
    with_init_parser(&exec.argv(), |o, _| assert!(o.exec && !o.restrict && !o.dev && o.seccomp_fd.is_none()));
    let unconfined = InitArgs { seccomp: Seccomp::Unconfined, ..args(&["sh"]) };
    with_init_parser(&unconfined.argv(), |o, _| assert!(o.restrict && o.seccomp_fd.is_none()));
    // Born in its cgroup (v2, clone3): nothing to join, the namespace still made.
    let born = InitArgs { born_in_cgroup: true, ..args(&["sh"]) };
    with_init_parser(&born.argv(), |o, _| assert!(o.cgroups().next().is_none() && o.cgroupns));
    // A shell cannot clone3 into a cgroup: the script joins it instead.
    assert!(born.shell().join("\n").contains("echo 0 > /sys/fs/cgroup/cpu/host-setup/red/cgroup.procs"));
    // A command that looks like an option stays the command.
    with_init_parser(&args(&["--pause"]).argv(), |o, argv| {
        assert!(!o.pause);
        assert_eq!(argv[o.cmd.unwrap()].to_str().unwrap(), "--pause");
    });
    // --userns: the host joins the cgroups and the netns; init attaches the layers.
    let ids = crate::userns::IdMap { uid: 1_000_000_000, gid: 1_000_000_000, count: 65536 }.into();
    let points = vec![PathBuf::from("/s/containers/red/lower/0"), PathBuf::from("/s/containers/red/lower/1")];
    let userns = InitArgs { userns: Some(Userns { ids, mount_points: points }), ..args(&["sh"]) };
    with_init_parser(&userns.argv(), |o, _| {
        assert!(o.userns && o.cgroups().next().is_none() && o.netns.is_none() && o.cgroupns);
        assert_eq!(text(o.lower), Some("/s/containers/red/lower/0:/s/containers/red/lower/1"));
    });
    let shell = userns.shell().join("\n");
    assert!(shell.contains("unshare --user --map-users=0:1000000000:65536 --map-groups=0:1000000000:65536"), "{shell}");
    assert!(shell.contains("X-mount.idmap=/proc/$!/ns/user /s/layers/myroot-2 /s/containers/red/lower/1"), "{shell}");
    assert!(shell.contains("echo 0 > /sys/fs/cgroup/cpu/host-setup/red/tasks (a file the host opened)"), "{shell}");
    assert!(shell.contains(",userxattr "), "{shell}");
    for seccomp in [true, false] {
        with_init_parser(&exec_argv(&["ps".into(), "-ef".into()], seccomp), |o, argv| {
            assert!(o.restrict && o.exec && o.rootfs.is_none());
            assert_eq!(o.seccomp_fd, seccomp.then_some(SECCOMP_FD));
            assert_eq!(argv[o.cmd.unwrap()].to_str().unwrap(), "ps");
        });
    }
}

#[test]
fn shell_follows_the_tutorial() {
    let e = args(&[]).shell().join("\n");
    assert!(e.contains("unshare -m -u -i -p -f nsenter --net=/run/netns/RED sh -e 3>$ready/fifo <<'EOF' &"));
    assert!(e.contains("\n  exec /proc/self/fd/9 --cgroupns --restrict --ready-fd 3 --pause\nEOF\n"), "{e}");
    assert!(e.contains("lowerdir=/s/layers/tools-1:/s/layers/myroot-2,upperdir="));
    assert!(e.contains("pivot_root . .; umount -l ."));
    assert!(e.contains("# not here: seccomp, default (Docker's default profile"));
    let file = InitArgs { seccomp: Seccomp::File { path: "/p.json".into(), text: "{}".into() }, ..args(&[]) };
    assert!(file.shell().join("\n").contains("seccomp, profile /p.json"));
    let none = InitArgs { seccomp: Seccomp::Unconfined, ..args(&[]) }.shell().join("\n");
    assert!(!none.contains("seccomp"));
}

#[test]
fn ready_reports() {
    use nix::errno::Errno;
    assert!(parse_ready("ok\n").is_ok());
    // init's errors come out exactly as host-setup's own, errno included.
    let e = parse_ready("error\t22\tpivot_root(/m, put_old)\t\"/\" is shared\n").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    let own = Error::sys("pivot_root(/m, put_old)", Errno::EINVAL).hint("\"/\" is shared");
    assert_eq!(e.to_string(), own.to_string());
    assert_eq!(e.to_string(), "pivot_root(/m, put_old): EINVAL: invalid argument; \"/\" is shared");
    // The same line, written by host-setup's side, reads back the same.
    let back = parse_ready(&error_line(&own)).unwrap_err();
    assert_eq!((back.errno(), back.to_string()), (own.errno(), own.to_string()));
    let e = parse_ready("ok\nerror\t2\texec /bin/nope\t\n").unwrap_err();
    assert_eq!(
        (e.errno(), e.to_string().as_str()),
        (Some(Errno::ENOENT), "exec /bin/nope: ENOENT: no such file or directory")
    );
    let e = parse_ready("error\t0\tsomething failed\ta hint\n").unwrap_err();
    assert_eq!((e.errno(), e.to_string().as_str()), (None, "something failed; a hint"));
    let e = parse_ready(&error_line(&crate::failed!("a\tb\nc"))).unwrap_err();
    assert_eq!(e.to_string(), "a b c");
    assert_eq!(parse_ready("").unwrap_err().to_string(), "init exited before it was ready");
}

#[test]
fn container_env_is_clean() {
    let env = container_env();
    assert!(env[0].starts_with("PATH=/usr/local/sbin:"));
    assert!(env.iter().all(|e| !e.starts_with("USER=") && !e.starts_with("SSH_")));
}
