use super::*;
use crate::image::ImageConfig;

fn host(k: &str) -> Option<String> {
    (k == "FROM_HOST").then(|| "yes".into())
}

fn image(dir: &Path) -> ResolvedImage {
    ResolvedImage {
        reference: "example.com/app:1".into(),
        manifest: crate::image::Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
        dirs_top_first: vec![dir.to_path_buf()],
        config: ImageConfig {
            entrypoint: vec!["/bin/busybox".into()],
            cmd: vec!["sh".into(), "-c".into(), "id".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: Some("/home/app".into()),
            user: Some("1000".into()),
            exposed_ports: vec!["80/tcp".into()],
        },
    }
}

/// A container `green` with `o`, the command `cmd` after --, and the image.
fn spec_with(o: &RunOptions, cmd: &[&str], img: bool) -> Result<Spec> {
    // One dir per call: the tests run in parallel threads.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hs-runopts-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "app:x:1000:\nextra:x:2000:app\n").unwrap();
    let opts = super::super::Options { command: cmd.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    let mut spec = Spec::new("green", &opts)?;
    let mut c = check(o, &host).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })?;
    let r = apply(&mut spec, o, &mut c, img.then(|| image(&dir)));
    std::fs::remove_dir_all(&dir).unwrap();
    r.map(|()| spec)
}

#[test]
fn the_image_gives_the_defaults() {
    let s = spec_with(&RunOptions::default(), &[], true).unwrap();
    assert_eq!(s.command, ["/bin/busybox", "sh", "-c", "id"]);
    assert!(s.layers.iter().all(|l| matches!(l, Layer::Dir(_))), "no built-in layers: {:?}", s.layers);
    let r = s.run.unwrap();
    assert_eq!(r.env, ["PATH=/bin", "A=image", "HOME=/home/app"]);
    assert_eq!((r.inside.user.uid, r.inside.user.gid, r.inside.user.additional_gids.clone()), (1000, 1000, vec![2000]));
    assert_eq!(r.inside.cwd, "/home/app");
    assert_eq!(r.inside.caps.unwrap().effective, 0, "a non-root user gets no effective capabilities");
    assert_eq!(r.image.unwrap().exposed_ports, ["80/tcp"]);
}

#[test]
fn options_override_as_docker_does() {
    let o = RunOptions {
        env: vec!["A=cli".into(), "FROM_HOST".into(), "NOT_ON_HOST".into()],
        workdir: Some("/tmp/".into()),
        user: Some("0:0".into()),
        ..Default::default()
    };
    let s = spec_with(&o, &["pwd"], true).unwrap();
    assert_eq!(s.command, ["/bin/busybox", "pwd"], "a command after -- replaces Cmd only");
    let r = s.run.unwrap();
    assert_eq!(r.env, ["PATH=/bin", "A=image", "A=cli", "FROM_HOST=yes", "HOME=/root"]);
    assert_eq!((r.inside.user.uid, r.inside.cwd.as_str()), (0, "/tmp"));
    assert!(r.inside.caps.is_none(), "root keeps --restrict's set");
    let e = RunOptions { entrypoint: Some("/bin/echo".into()), ..Default::default() };
    assert_eq!(spec_with(&e, &[], true).unwrap().command, ["/bin/echo"], "--entrypoint clears Cmd");
    assert_eq!(spec_with(&e, &["hi"], true).unwrap().command, ["/bin/echo", "hi"]);
    let none = RunOptions { entrypoint: Some(String::new()), ..Default::default() };
    assert_eq!(spec_with(&none, &["ls"], true).unwrap().command, ["ls"]);
    assert!(spec_with(&RunOptions::default(), &[], false).unwrap().run.is_none(), "nothing set: no run part");
}

#[test]
fn volumes_tmpfs_and_read_only() {
    let o = RunOptions {
        volumes: vec!["/tmp:/data:ro".into()],
        tmpfs: vec!["/scratch:size=16m,mode=1777,exec".into()],
        read_only: true,
        ..Default::default()
    };
    let r = spec_with(&o, &["true"], false).unwrap().run.unwrap();
    let m = &r.inside.mounts;
    let targets: Vec<&str> = m.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, ["/data", "/scratch", "/tmp", "/run"]);
    assert_eq!(m[0].flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
    assert_eq!((m[1].flags, m[1].data.as_str()), (libc::MS_NOSUID | libc::MS_NODEV, "size=16m,mode=1777"));
    assert!(r.inside.root_readonly);
    let mine = RunOptions { tmpfs: vec!["/tmp:size=1m".into()], read_only: true, ..Default::default() };
    let r = spec_with(&mine, &["true"], false).unwrap().run.unwrap();
    assert_eq!(r.inside.mounts.iter().filter(|m| m.target == "/tmp").count(), 1, "--tmpfs /tmp wins");
}

#[test]
fn bad_input_is_refused_with_what_is_right() {
    let cases: Vec<(RunOptions, &str)> = vec![
        (RunOptions { volumes: vec!["data:/data".into()], ..Default::default() }, "is not absolute"),
        (RunOptions { volumes: vec!["/nonexistent-hs:/data".into()], ..Default::default() }, "no such file"),
        (RunOptions { volumes: vec!["/tmp:/proc/x".into()], ..Default::default() }, "/proc is the kernel's"),
        (RunOptions { volumes: vec!["/tmp:/sys".into()], ..Default::default() }, "/sys is the kernel's"),
        (RunOptions { volumes: vec!["/tmp:/dev".into()], ..Default::default() }, "/dev is the kernel's"),
        (RunOptions { volumes: vec!["/tmp:data".into()], ..Default::default() }, "not an absolute path"),
        (RunOptions { volumes: vec!["/tmp:/d:rx".into()], ..Default::default() }, "unknown mode"),
        (RunOptions { volumes: vec!["/tmp:/d".into(), "/tmp:/d/".into()], ..Default::default() }, "two mounts on /d"),
        (RunOptions { tmpfs: vec!["/t:size=lots".into()], ..Default::default() }, "unknown option"),
        (RunOptions { workdir: Some("work".into()), ..Default::default() }, "-w work: not an absolute path"),
        (RunOptions { workdir: Some("/a/../b".into()), ..Default::default() }, "no \"..\""),
        (RunOptions { user: Some("nosuch".into()), ..Default::default() }, "unknown user \"nosuch\""),
        (RunOptions { user: Some("70000".into()), ..Default::default() }, "outside the user namespace"),
        (RunOptions { env: vec!["=x".into()], ..Default::default() }, "give NAME=VALUE"),
    ];
    for (o, want) in cases {
        let e = spec_with(&o, &["true"], true).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{o:?}: {e}");
        assert!(e.to_string().contains(want), "{o:?}: {e} (wanted {want:?})");
    }
}

#[test]
fn env_files() {
    assert_eq!(parse_env_file("# c\n\nA=1\n  B=x y\n").unwrap(), ["A=1", "B=x y"]);
    assert_eq!(parse_env_file("A=1\nJUSTKEY\n").unwrap_err(), "line 2: \"JUSTKEY\" is not NAME=VALUE");
}
