//! A tiny image made by the test from busybox-static, with no registry: one
//! uncompressed layer, written as an OCI image layout tar that also carries
//! Docker's `manifest.json`, so the same tar goes to `ctr image import` (which
//! reads index.json) and to `docker load` (20.10 reads only manifest.json).
//! And the kernel's view of a container: its cgroup files, found from its pid.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `sha256:HEX` and size of a file (sha256sum: the tests need no crypto crate).
fn digest(path: &Path) -> (String, u64) {
    let o = Command::new("sha256sum").arg(path).output().expect("sha256sum (coreutils)");
    assert!(o.status.success(), "sha256sum {}: {}", path.display(), lab_tests::text(&o));
    let hex = lab_tests::stdout(&o).split_whitespace().next().unwrap().to_string();
    (format!("sha256:{hex}"), fs::metadata(path).unwrap().len())
}

/// Moves `file` into `layout/blobs/sha256/HEX` and returns its descriptor parts.
fn blob(layout: &Path, file: &Path) -> (String, u64) {
    let (d, size) = digest(file);
    let to = layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    fs::rename(file, &to).unwrap();
    (d, size)
}

/// The container's root: busybox-static and the directories engines mount on.
pub fn make_rootfs(dir: &Path) {
    crate::dropin::busybox_layer(dir);
    for d in ["proc", "sys", "dev", "etc", "tmp", "run"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
}

/// Writes `work/image.tar` for the image `name` (e.g. `docker.io/library/x:1`)
/// and returns its path. `work` must be empty scratch space.
pub fn build(work: &Path, name: &str) -> PathBuf {
    let rootfs = work.join("rootfs");
    make_rootfs(&rootfs);
    let layout = work.join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();

    let layer = work.join("layer.tar");
    let o = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "tar the layer: {}", lab_tests::text(&o));
    let (layer_d, layer_n) = blob(&layout, &layer);

    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_d]},
    });
    fs::write(work.join("config.json"), config.to_string()).unwrap();
    let (config_d, config_n) = blob(&layout, &work.join("config.json"));

    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config_n},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer_n}],
    });
    fs::write(work.join("manifest"), manifest.to_string()).unwrap();
    let (manifest_d, manifest_n) = blob(&layout, &work.join("manifest"));

    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_d,
            "size": manifest_n,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}],
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let hex = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker = serde_json::json!([{"Config": hex(&config_d), "RepoTags": [name], "Layers": [hex(&layer_d)]}]);
    fs::write(layout.join("manifest.json"), docker.to_string()).unwrap();

    let tar = work.join("image.tar");
    let o = Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&tar).arg(".").output().unwrap();
    assert!(o.status.success(), "tar the image: {}", lab_tests::text(&o));
    tar
}

// ---- the kernel's view ------------------------------------------------------------

/// The file `v1_file` (cgroup v1, in the hierarchy of `controller`) or `v2_file`
/// (cgroup2) of the cgroup `pid` is in, from /proc/PID/cgroup and mountinfo.
pub fn cgroup_file(pid: i32, controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount_of = |fstype: &str, opt: Option<&str>| {
        mi.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            // After " - ": fstype, source, super options (the v1 controllers).
            let f: Vec<&str> = post.split(' ').collect();
            let has_opt = |o: &str| f.get(2).is_some_and(|so| so.split(',').any(|x| x == o));
            (f[0] == fstype && opt.map(has_opt) != Some(false)).then(|| PathBuf::from(pre.split(' ').nth(4).unwrap()))
        })
    };
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == controller) {
            return mount_of("cgroup", Some(controller)).expect("the v1 hierarchy's mount").join(rel).join(v1_file);
        }
        // cgroup2, where the controller is enabled (not this hybrid host's unified).
        if ctrls.is_empty() {
            if let Some(m) = mount_of("cgroup2", None) {
                let f = m.join(rel).join(v2_file);
                if f.exists() {
                    return f;
                }
            }
        }
    }
    panic!("pid {pid}: no cgroup with the {controller} controller in:\n{cg}");
}

/// The memory limit (bytes) and the CPU quota and period (us) of `pid`'s cgroups.
pub fn limits(pid: i32) -> (u64, String) {
    let mem = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max");
    let mem: u64 = fs::read_to_string(&mem).unwrap().trim().parse().unwrap();
    let cpu = cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
    let cpu = if cpu.ends_with("cpu.max") {
        fs::read_to_string(&cpu).unwrap().trim().to_string()
    } else {
        let period = fs::read_to_string(cpu.with_file_name("cpu.cfs_period_us")).unwrap();
        format!("{} {}", fs::read_to_string(&cpu).unwrap().trim(), period.trim())
    };
    (mem, cpu)
}

/// Whether the freezer has stopped `pid`'s cgroup (v1 freezer.state, v2 cgroup.events).
pub fn frozen(pid: i32) -> bool {
    let f = cgroup_file(pid, "freezer", "freezer.state", "cgroup.events");
    let s = fs::read_to_string(&f).unwrap_or_default();
    s.trim() == "FROZEN" || s.lines().any(|l| l == "frozen 1")
}
