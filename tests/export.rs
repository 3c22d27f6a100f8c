//! `host-setup export NAME DIR`: a container becomes an OCI bundle, and another
//! runtime (runc 1.1.5, Debian's) runs it with the same result as `host-setup run`:
//! hostname, ids, files, capability sets, no_new_privs, seccomp, limits read back
//! from the kernel. What the container wrote (a file made, one deleted, a
//! directory replaced) is in the bundle; bad input is refused and leaves nothing.
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use lab_tests::{require_root, stdout, text, Lab, TempDir};

/// What each runtime runs; its output must be the same under both.
const CHECK: &str = "hostname; id; ls /bin | wc -l; ls -ln --time-style=+%s /data; \
                     grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status";

/// An mtime of the layer's files, kept by the export.
const MTIME: u64 = 1_000_000_000;

/// A layer with busybox's cat, id, wc, grep and sleep on top of the built-in
/// ones, and /data/a and /data/b: one file, two names (a hard link), mode 0640.
fn busybox_layer() -> TempDir {
    let dir = TempDir::new("export-layer");
    fs::create_dir(dir.path("bin")).unwrap();
    fs::copy("/bin/busybox", dir.path("bin/busybox")).expect("busybox-static is missing");
    for a in ["cat", "id", "wc", "grep", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.path("bin").join(a)).unwrap();
    }
    fs::create_dir(dir.path("data")).unwrap();
    fs::write(dir.path("data/a"), "hello\n").unwrap();
    fs::hard_link(dir.path("data/a"), dir.path("data/b")).unwrap();
    fs::set_permissions(dir.path("data/a"), fs::Permissions::from_mode(0o640)).unwrap();
    let f = fs::File::options().write(true).open(dir.path("data/a")).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME)).unwrap();
    dir
}

/// runc with a state root of this test's own; Drop deletes its containers and the
/// cgroups runc made for them (runc makes the parent in every hierarchy, also
/// those host-setup does not use, and leaves it behind: rmdir, never recursive).
struct Runc {
    root: TempDir,
    parent: String,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Runc {
    fn new(lab: &Lab) -> Runc {
        Runc { root: TempDir::new("runc-root"), parent: lab.cgroup_parent.clone(), ids: Default::default() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.root.0).args(args).stdin(Stdio::null());
        c
    }

    /// `runc run --bundle DIR ID` in the foreground, its cgroups under the lab's parent.
    fn run(&self, bundle: &Path, id: &str) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        set_cgroups_path(bundle, &format!("/{}/{id}", self.parent));
        self.cmd(&["run", "--bundle", bundle.to_str().unwrap(), id]).output().expect("run runc")
    }

    /// Everything of container `id` still on the host: runc's state, cgroups.
    fn leftovers(&self, id: &str) -> Vec<String> {
        let mut left = vec![];
        let list = stdout(&self.cmd(&["list", "-q"]).output().unwrap());
        if list.lines().any(|l| l == id) {
            left.push(format!("runc list: {id}"));
        }
        if self.root.path(id).exists() {
            left.push(self.root.s(id));
        }
        left.extend(cgroup_dirs(&self.parent, id).into_iter().filter(|d| d.exists()).map(|d| d.display().to_string()));
        left
    }
}

/// `<hierarchy>/<parent>/<id>` in every mounted hierarchy (v1 ones, unified, systemd).
fn cgroup_dirs(parent: &str, id: &str) -> Vec<PathBuf> {
    let mut dirs = vec![];
    for e in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            dirs.push(p.join(parent).join(id));
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        dirs.push(Path::new("/sys/fs/cgroup").join(parent).join(id));
    }
    dirs
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["delete", "--force", id]).output();
            for d in cgroup_dirs(&self.parent, id) {
                let _ = fs::remove_dir(&d);
                if let Some(p) = d.parent() {
                    let _ = fs::remove_dir(p);
                }
            }
        }
    }
}

/// config.json's linux.cgroupsPath set to `path` (the test's own cgroup parent).
fn set_cgroups_path(bundle: &Path, path: &str) {
    let file = bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    c["linux"]["cgroupsPath"] = path.into();
    fs::write(&file, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

fn config(bundle: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap()
}

/// Up NAME (`--net none`, the busybox layer, `extra`), export it with CHECK as its
/// command, runc run the bundle and `host-setup run` the same container: same
/// output. Returns (runc's stdout, the bundle dir's guard, the bundle).
fn same_under_runc(lab: &Lab, runc: &Runc, layer: &TempDir, extra: &[&str]) -> (String, TempDir, PathBuf) {
    let (name, twin) = (lab.name("x"), lab.name("r"));
    let host = format!("H{}", lab.tag());
    let mut up = vec!["up", &name, "--net", "none", "--hostname", &host, "--layer", layer.0.to_str().unwrap()];
    up.extend_from_slice(extra);
    lab.ok(&up);
    let out = TempDir::new("export-out");
    let bundle = out.path("bundle");
    let b = bundle.to_str().unwrap();
    let o = lab.ok(&["export", &name, b, "--", "/bin/sh", "-c", CHECK]);
    assert!(stdout(&o).contains("config.json and rootfs"), "{}", text(&o));
    let id = format!("hs-export-{}", lab.tag());
    let r = runc.run(&bundle, &id);
    assert!(r.status.success(), "runc run: {}", text(&r));
    let mut run = up.clone();
    run[0] = "run";
    run[1] = &twin;
    run.extend(["--", "/bin/sh", "-c", CHECK]);
    let h = lab.ok(&run);
    assert_eq!(stdout(&r), stdout(&h), "runc run of the bundle against host-setup run");
    assert!(runc.leftovers(&id).is_empty(), "after runc run: {:?}", runc.leftovers(&id));
    (stdout(&r), out, bundle)
}

/// `hsrun --root ROOT run --bundle DIR ID` (the project's own OCI runtime) in the
/// foreground, its cgroups under the lab's parent; nothing of it may stay.
fn hsrun_run(lab: &Lab, bundle: &Path, id: &str) -> Output {
    let root = TempDir::new("hsrun-root");
    set_cgroups_path(bundle, &format!("/{}/{id}", lab.cgroup_parent));
    let o = Command::new(lab_tests::bin("hsrun"))
        .arg("--root")
        .arg(&root.0)
        .args(["run", "--bundle", bundle.to_str().unwrap(), id])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run hsrun");
    let mut left: Vec<String> =
        walk(&root.0).into_iter().filter(|p| p != &root.path("containers")).map(|p| p.display().to_string()).collect();
    left.extend(
        cgroup_dirs(&lab.cgroup_parent, id).into_iter().filter(|d| d.exists()).map(|d| d.display().to_string()),
    );
    assert!(left.is_empty(), "after hsrun run: {left:?}");
    o
}

/// Every path under `dir`, not `dir` itself.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn runc_runs_the_exported_container_as_host_setup_runs_it() {
    require_root();
    let lab = Lab::new();
    let runc = Runc::new(&lab);
    let layer = busybox_layer();
    let (out, _dir, bundle) = same_under_runc(&lab, &runc, &layer, &["--no-userns"]);
    // Our own runtime runs the same bundle with the same result.
    let h = hsrun_run(&lab, &bundle, &format!("hs-export-h{}", lab.tag()));
    assert!(h.status.success(), "hsrun run: {}", text(&h));
    assert_eq!(stdout(&h), out, "hsrun run of the bundle against runc run");
    for want in [
        format!("H{}\n", lab.tag()),
        "uid=0 gid=0".to_string(),
        "-rw-r----- 2 0 0 6 1000000000 a".to_string(),
        "CapBnd:\t00000000a80425fb".to_string(),
        "CapInh:\t0000000000000000".to_string(),
        "NoNewPrivs:\t1".to_string(),
        "Seccomp:\t2".to_string(),
    ] {
        assert!(out.contains(&want), "{want:?} not in the output:\n{out}");
    }
    let c = config(&bundle);
    assert_eq!(c["ociVersion"], "1.0.2");
    assert!(c["linux"]["uidMappings"].is_null(), "no user namespace: {}", c["linux"]);
    let ns: Vec<&str> =
        c["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
    assert_eq!(c["linux"]["maskedPaths"].as_array().unwrap().len(), 8, "{}", c["linux"]["maskedPaths"]);
    assert_eq!(c["linux"]["readonlyPaths"][4], "/proc/sys");
    // The limits, read back from the kernel while runc runs the bundle detached.
    let id = format!("hs-export-d{}", lab.tag());
    let b = bundle.to_str().unwrap();
    let mut c = config(&bundle);
    c["process"]["args"] = serde_json::json!(["sleep", "60"]);
    fs::write(bundle.join("config.json"), c.to_string()).unwrap();
    runc.ids.borrow_mut().push(id.clone());
    set_cgroups_path(&bundle, &format!("/{}/{id}", runc.parent));
    let d = runc.cmd(&["run", "--detach", "--bundle", b, &id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(d.unwrap().success(), "runc run --detach");
    let read = |ctl: &str, file: &str| {
        let p = Path::new("/sys/fs/cgroup").join(ctl).join(&runc.parent).join(&id).join(file);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // v2: one directory; the device allow list is an eBPF program there, with
        // no file to read back (cgroup.rs tests ours on the kernel).
        assert_eq!(read("", "memory.max"), (200u64 << 20).to_string());
        assert_eq!(read("", "memory.swap.max"), "0");
        assert_eq!(read("", "cpu.max"), "40000 100000");
        assert_eq!(read("", "pids.max"), "512");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes"), (200u64 << 20).to_string());
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "40000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids", "pids.max"), "512");
        assert!(read("devices", "devices.list").contains("c 136:* rwm"), "the device allow list");
    }
    let k = runc.cmd(&["delete", "--force", &id]).output().unwrap();
    assert!(k.status.success(), "runc delete --force: {}", text(&k));
    assert!(runc.leftovers(&id).is_empty(), "after runc delete: {:?}", runc.leftovers(&id));
}

#[test]
fn a_user_namespaced_container_exports_its_ids() {
    require_root();
    let lab = Lab::new();
    let runc = Runc::new(&lab);
    let layer = busybox_layer();
    let (out, _dir, bundle) = same_under_runc(&lab, &runc, &layer, &["--userns"]);
    assert!(out.contains("-rw-r----- 2 0 0 6 1000000000 a"), "root's files are root's inside:\n{out}");
    let c = config(&bundle);
    let map = &c["linux"]["uidMappings"][0];
    assert_eq!((map["containerID"].as_u64(), map["size"].as_u64()), (Some(0), Some(65536)), "{map}");
    let base = map["hostID"].as_u64().unwrap() as u32;
    assert!(base >= 65536, "a range of unprivileged host ids: {map}");
    assert_eq!(c["linux"]["namespaces"][6]["type"], "user");
    // The lower layers' ids shifted into that range (the upper's are host ids already).
    let m = fs::metadata(bundle.join("rootfs/data/a")).unwrap();
    assert_eq!((m.uid(), m.gid()), (base, c["linux"]["gidMappings"][0]["hostID"].as_u64().unwrap() as u32));
}

#[test]
fn what_the_container_wrote_is_in_the_bundle() {
    require_root();
    let lab = Lab::new();
    let layer = busybox_layer();
    let name = lab.name("w");
    lab.ok(&["up", &name, "--net", "none", "--no-userns", "--layer", layer.0.to_str().unwrap()]);
    // A file made, one deleted (a whiteout), a directory replaced (opaque), a file changed.
    let o = lab.exec(
        &name,
        &[
            "sh",
            "-c",
            "set -e; echo new > /new; rm -r /data; mkdir /data; echo z > /data/z; echo changed > /bin/mkdir; rm /bin/rm",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = TempDir::new("export-upper");
    let rootfs = out.path("b/rootfs");
    lab.ok(&["export", &name, &out.s("b")]);
    assert_eq!(fs::read_to_string(rootfs.join("new")).unwrap(), "new\n");
    assert!(!rootfs.join("bin/rm").exists() && !rootfs.join("bin/rm").is_symlink(), "the deleted file is gone");
    assert!(rootfs.join("bin/ls").exists(), "the rest of the lower layer is there");
    let data: Vec<_> = fs::read_dir(rootfs.join("data")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(data, ["z"], "the replaced dir shows nothing of the layer's");
    assert_eq!(fs::read_to_string(rootfs.join("bin/mkdir")).unwrap(), "changed\n", "the upper's copy wins");
    let c = config(&out.path("b"));
    assert_eq!(c["process"]["args"], serde_json::json!(["/bin/sh"]), "no command: the shell");
}

#[test]
fn hard_links_modes_and_times_are_kept() {
    require_root();
    let lab = Lab::new();
    let layer = busybox_layer();
    let name = lab.name("h");
    lab.ok(&["up", &name, "--net", "none", "--no-userns", "--layer", layer.0.to_str().unwrap(), "--", "sleep", "60"]);
    let out = TempDir::new("export-links");
    lab.ok(&["export", &name, &out.s("b")]);
    let (a, b) =
        (fs::metadata(out.path("b/rootfs/data/a")).unwrap(), fs::metadata(out.path("b/rootfs/data/b")).unwrap());
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one inode, two names");
    assert_eq!((a.mode() & 0o7777, a.mtime() as u64), (0o640, MTIME));
    assert!(fs::symlink_metadata(out.path("b/rootfs/bin/cat")).unwrap().is_symlink());
    assert_eq!(config(&out.path("b"))["process"]["args"], serde_json::json!(["sleep", "60"]));
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    require_root();
    let lab = Lab::new();
    let name = lab.name("n");
    let out = TempDir::new("export-bad");
    // An unknown container: refused, DIR not made.
    let o = lab.run(&["export", &name, &out.s("b")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains(&format!("export: no container {name} in")), "{}", text(&o));
    assert!(!out.path("b").exists(), "nothing made");
    lab.ok(&["up", &name, "--net", "none"]);
    // A DIR that is not empty: refused, left as it was.
    fs::create_dir(out.path("full")).unwrap();
    fs::write(out.path("full/keep"), "mine").unwrap();
    let o = lab.run(&["export", &name, &out.s("full")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("exists and is not empty"), "{}", text(&o));
    let left: Vec<_> = fs::read_dir(out.path("full")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["keep"]);
    // A file as DIR.
    let o = lab.run(&["export", &name, &out.s("full/keep")]);
    assert!(text(&o).contains("exists and is not a directory"), "{}", text(&o));
    // No space left in the middle of the copy: what was written is removed.
    let small = out.path("small");
    fs::create_dir(&small).unwrap();
    let _m = Tmpfs::mount(&small, "size=256k");
    let o = lab.run(&["export", &name, &format!("{}/b", small.display())]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("export: copy") && text(&o).contains("no space left on device"), "{}", text(&o));
    assert_eq!(fs::read_dir(&small).unwrap().count(), 0, "the partial bundle is removed");
    // An empty DIR is taken.
    fs::create_dir(out.path("empty")).unwrap();
    lab.ok(&["export", &name, &out.s("empty")]);
    assert!(out.path("empty/config.json").exists() && out.path("empty/rootfs/bin/sh").exists());
}

/// A small tmpfs on `dir` for the length of a test (the mount tool: a test's
/// check, not product code).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Tmpfs {
        let o = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(dir).output().unwrap();
        assert!(o.status.success(), "mount tmpfs: {}", text(&o));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// An OCI layout of one layer: the busybox layer plus /image-only (a file no
/// host layer has) and a config whose Cmd cats it (built as tests/runopts.rs does).
fn busybox_image(t: &TempDir) -> String {
    let root = busybox_layer();
    fs::write(root.path("image-only"), "from the image's layer\n").unwrap();
    std::os::unix::fs::symlink("busybox", root.path("bin/sh")).unwrap();
    let config = serde_json::json!({"Cmd": ["/bin/cat", "/image-only"], "Env": ["PATH=/bin"]});
    lab_tests::oci_image_fixture::one_layer_layout(t, &root.0, config)
}

#[test]
fn hsrun_runs_the_bundle_of_an_imported_image() {
    require_root();
    let lab = Lab::new();
    let t = TempDir::new("export-image");
    let image = format!("export.test/img{}:1", lab.tag());
    lab.ok(&["image", "import", &busybox_image(&t), "--name", &image]);
    let name = lab.name("i");
    lab.ok(&["up", &name, "--image", &image, "--net", "none", "--no-userns"]);
    let bundle = t.path("bundle");
    lab.ok(&["export", &name, bundle.to_str().unwrap()]);
    assert_eq!(config(&bundle)["process"]["args"], serde_json::json!(["/bin/cat", "/image-only"]), "the image's Cmd");
    // hsrun_run asserts that nothing of hsrun (state, cgroups) stays.
    let h = hsrun_run(&lab, &bundle, &format!("hs-export-i{}", lab.tag()));
    assert!(h.status.success(), "hsrun run: {}", text(&h));
    assert_eq!(stdout(&h), "from the image's layer\n", "{}", text(&h));
    lab.ok(&["down", &name]);
    assert_eq!(lab.leftovers(&[&name]), Vec::<String>::new());
}
