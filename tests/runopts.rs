//! `--image` and the run options (-e, --env-file, -w, -u, --entrypoint, -v,
//! --tmpfs, --read-only) end to end, as root: a small OCI image of
//! busybox-static built here and imported with `host-setup image import`, run
//! with and without a user namespace; what the kernel shows inside and on the
//! host is checked (ids, cwd, environment, owners on disk, EROFS, statfs).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};

use lab_tests::{bin, stdout, text, Lab, TempDir};

/// `--image` serving a port on a bridge network (its own file).
#[path = "runopts/web.rs"]
mod web;

const IMAGE: &str = "runopts.test/app:1";
const APPLETS: [&str; 14] =
    ["sh", "id", "env", "pwd", "touch", "stat", "cat", "echo", "sleep", "httpd", "wget", "ls", "mkdir", "true"];

/// An OCI layout of one layer (busybox-static, /etc/passwd with `app` 1000,
/// /etc/group with `extra` 2000 listing app, /www) and a config: Entrypoint
/// busybox, Cmd, Env, WorkingDir, User 1000, ExposedPorts 80/tcp.
pub fn build_image(t: &TempDir) -> String {
    let root = t.path("rootfs");
    for d in ["bin", "etc", "home/app", "www", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
        .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n").unwrap();
    std::fs::write(root.join("www/index.html"), "hello from an image\n").unwrap();
    std::os::unix::fs::chown(root.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let config = serde_json::json!({
        "Entrypoint": ["/bin/busybox"],
        "Cmd": ["sh", "-c", "echo default-cmd; id; pwd; env"],
        "Env": ["PATH=/bin", "GREETING=hello"],
        "WorkingDir": "/home/app",
        "User": "1000",
        "ExposedPorts": {"80/tcp": {}}
    });
    lab_tests::oci_image_fixture::one_layer_layout(t, &root, config)
}

/// A lab with the image imported.
fn lab_with_image(t: &TempDir) -> Lab {
    let lab = Lab::new();
    let layout = build_image(t);
    lab.ok(&["image", "import", &layout, "--name", IMAGE]);
    lab
}

fn run(lab: &Lab, args: &[&str]) -> Output {
    let o = lab.run(args);
    assert!(o.status.success(), "host-setup {}: {}", args.join(" "), text(&o));
    o
}

fn has(out: &str, want: &str) {
    assert!(out.contains(want), "{want:?} not in:\n{out}");
}

#[test]
fn the_image_defaults_are_honoured_and_overridden() {
    let t = TempDir::new("runopts-img");
    let lab = lab_with_image(&t);
    for userns in ["--userns", "--no-userns"] {
        let n = lab.name(if userns == "--userns" { "du" } else { "dn" });
        let out = stdout(&run(&lab, &["run", &n, "--image", IMAGE, userns]));
        for want in ["default-cmd\n", "uid=1000(app) gid=1000(app)", "2000(extra)", "\n/home/app\n", "GREETING=hello"] {
            has(&out, want);
        }
        has(&out, "HOME=/home/app");
        has(&out, "PATH=/bin\n");
    }
    let env_file = t.path("env");
    std::fs::write(&env_file, "# a comment\nFILEVAR=fromfile\n").unwrap();
    let n = lab.name("o");
    let o = lab
        .cmd(&[
            "run",
            &n,
            "--image",
            IMAGE,
            "-e",
            "GREETING=bye",
            "-e",
            "HOSTVAR",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/tmp",
            "-u",
            "0:0",
            "--",
            "sh",
            "-c",
            "id; pwd; env",
        ])
        .env("HOSTVAR", "fromhost")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    for want in ["uid=0(root) gid=0(root)", "\n/tmp\n", "GREETING=bye", "HOSTVAR=fromhost", "FILEVAR=fromfile"] {
        has(&out, want);
    }
    assert!(!out.contains("default-cmd"), "a command after -- replaces Cmd:\n{out}");
    let n = lab.name("u");
    has(&stdout(&run(&lab, &["run", &n, "--image", IMAGE, "-u", "app:root", "--", "id"])), "uid=1000(app) gid=0(root)");
    let n = lab.name("e");
    let out = stdout(&run(&lab, &["run", &n, "--image", IMAGE, "--entrypoint", "/bin/echo"]));
    assert_eq!(out, "\n", "--entrypoint clears Cmd");
    let n = lab.name("f");
    assert_eq!(stdout(&run(&lab, &["run", &n, "--image", IMAGE, "--entrypoint", "/bin/echo", "--", "hi"])), "hi\n");
    assert_eq!(lab.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn volumes_keep_their_host_owners_and_ro_refuses_writes() {
    let t = TempDir::new("runopts-vol");
    let lab = lab_with_image(&t);
    let data = t.path("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vol = format!("{}:/data", data.display());
    for userns in ["--userns", "--no-userns"] {
        let n = lab.name(if userns == "--userns" { "vu" } else { "vn" });
        let file = format!("/data/{userns}");
        let script = format!("stat -c %u:%g /data; echo hi > {file}");
        let out = stdout(&run(&lab, &["run", &n, "--image", IMAGE, userns, "-v", &vol, "--", "sh", "-c", &script]));
        assert_eq!(out, "1000:1000\n", "{userns}: the dir shows its host owner inside");
        let m = std::fs::metadata(data.join(userns)).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000), "{userns}: written inside by 1000, host uid 1000 on disk");
    }
    let n = lab.name("ro");
    let ro = format!("{vol}:ro");
    let o = lab.run(&["run", &n, "--image", IMAGE, "-v", &ro, "--", "sh", "-c", "touch /data/nope"]);
    assert!(!o.status.success(), "{}", text(&o));
    has(&text(&o), "Read-only file system");
    assert!(!data.join("nope").exists());
    assert_eq!(lab.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn read_only_tmpfs_status_explain_and_image_rm() {
    let t = TempDir::new("runopts-ro");
    let lab = lab_with_image(&t);
    let data = t.path("data");
    std::fs::create_dir(&data).unwrap();
    let n = lab.name("r");
    let vol = format!("{}:/data:ro", data.display());
    let args = ["up", &n, "--image", IMAGE, "-u", "0", "--read-only", "--tmpfs", "/scratch:size=1m", "-v", &vol];
    let explain = stdout(&run(&lab, &[&args[..], &["--explain", "--", "sleep", "1000"]].concat()));
    for want in
        ["mount --bind -o X-mount.idmap=/proc/$!/ns/user ", "mount -o remount,bind,ro ", "env -i ", "cd /home/app"]
    {
        has(&explain, want);
    }
    has(&explain, "mount -t tmpfs -o nosuid,nodev,noexec,size=1m tmpfs ");
    assert!(!lab.state_dir.join("containers").join(format!("{n}.journal")).exists(), "--explain made nothing");
    run(&lab, &[&args[..], &["--", "sleep", "1000"]].concat());
    let sh = |s: &str| lab.exec(&n, &["/bin/sh", "-c", s]);
    let o = sh("touch /etc/x");
    assert!(!o.status.success() && text(&o).contains("Read-only file system"), "{}", text(&o));
    assert_eq!(stdout(&sh("touch /tmp/y && echo ok")), "ok\n", "{}", text(&sh("touch /tmp/y")));
    assert_eq!(stdout(&sh("stat -f -c %T /tmp /run /scratch")), "tmpfs\ntmpfs\ntmpfs\n");
    let st = stdout(&run(&lab, &["status", &n]));
    has(&st, "exposed ports 80/tcp");
    has(&st, &format!("image     {IMAGE} (sha256:"));
    has(&st, "root      read-only");
    has(&st, "tmpfs     /scratch (nosuid,nodev,noexec,size=1m)");
    has(&st, &format!("volume    {}:/data:ro", data.display()));
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(&lab, &["status", "--json", &n]))).unwrap();
    let r = &json["containers"][0]["run"];
    assert_eq!(r["image"]["exposed_ports"], serde_json::json!(["80/tcp"]), "{json}");
    assert_eq!(r["read_only"], true);
    let o = lab.run(&["image", "rm", IMAGE]);
    assert!(!o.status.success(), "rm of a used image: {}", text(&o));
    has(&text(&o), &format!("container {n} uses it"));
    run(&lab, &["down", &n]);
    run(&lab, &["image", "rm", IMAGE]);
    assert_eq!(lab.leftovers(&[&n]), Vec::<String>::new());
}

#[test]
fn bad_inputs_are_refused_before_anything_is_made() {
    let t = TempDir::new("runopts-bad");
    let lab = lab_with_image(&t);
    let bad_env = t.path("bad.env");
    std::fs::write(&bad_env, "A=1\nNOEQUALS\n").unwrap();
    let n = lab.name("x");
    let cases: [(&[&str], &str); 9] = [
        (&["--image", IMAGE, "-v", "relative:/data"], "is not absolute"),
        (&["--image", IMAGE, "-v", "/nonexistent-runopts:/data"], "no such file or directory"),
        (&["--image", IMAGE, "-v", "/tmp:/proc"], "/proc is the kernel's"),
        (&["--image", IMAGE, "-v", "/tmp:/sys/x"], "/sys is the kernel's"),
        (&["--image", IMAGE, "-v", "/tmp:/dev"], "/dev is the kernel's"),
        (&["--image", IMAGE, "--env-file", bad_env.to_str().unwrap()], "line 2: \"NOEQUALS\" is not NAME=VALUE"),
        (&["--image", IMAGE, "-u", "nosuch"], "unknown user \"nosuch\""),
        (&["--image", IMAGE, "-w", "relative"], "not an absolute path"),
        (&["--image", "runopts.test/none:1"], "no such image"),
    ];
    for (extra, want) in cases {
        let args = [&["up", n.as_str()][..], extra, &["--", "true"]].concat();
        let o = lab.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        has(&text(&o), want);
        assert_eq!(lab.leftovers(&[&n]), Vec::<String>::new(), "{args:?}");
    }
    // A filesystem that cannot idmap (ramfs): refused under the user namespace, undone.
    let ram = t.path("ram");
    std::fs::create_dir(&ram).unwrap();
    let m = Command::new("mount").args(["-t", "ramfs", "ramfs"]).arg(&ram).output().unwrap();
    assert!(m.status.success(), "{}", text(&m));
    let vol = format!("{}:/data", ram.display());
    let o = lab.run(&["up", &n, "--image", IMAGE, "-v", &vol, "--", "sleep", "100"]);
    let _ = Command::new("umount").arg(&ram).status();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    has(&text(&o), "cannot be idmapped");
    assert_eq!(lab.leftovers(&[&n]), Vec::<String>::new());
}

/// `host-setup ARGS` with the lab's state, in netns `ns` (the stand-in host).
pub fn hs_in(lab: &Lab, ns: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(bin("host-setup"))
        .args(args)
        .env("HOST_SETUP_STATE_DIR", &lab.state_dir)
        .env("HOST_SETUP_CGROUP_PARENT", &lab.cgroup_parent)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
