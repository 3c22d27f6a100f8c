//! `--userns`: the container's root is a range of unprivileged host ids, and the
//! lab still works — ping both ways, hostname, exec, status, the memory limit and
//! its OOM kill, the CPU quota, down leaving nothing — while the host sees the
//! container's processes under the mapped uids, root inside cannot read a host
//! root's 0600 file, and two containers get disjoint ranges.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_tests::{stdout, text, wait_for, Lab, TempDir};

/// (uid, gid, count, uid_map) of `name` from `status --json`.
fn ids(lab: &Lab, name: &str) -> (u64, u64, u64, String) {
    let o = lab.ok(&["status", "--json", name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let u = &v["containers"][0]["userns"];
    assert!(u.is_object(), "{name} has no userns in status --json: {}", stdout(&o));
    let n = |k: &str| u[k].as_u64().unwrap_or_else(|| panic!("userns.{k}: {u}"));
    (n("uid"), n("gid"), n("count"), u["uid_map"].as_str().unwrap_or_default().to_string())
}

/// The Uid: and Gid: lines' real ids of host pid `pid`.
fn host_ids(pid: i32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let first = |key: &str| -> u64 {
        let l = s.lines().find(|l| l.starts_with(key)).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (first("Uid:"), first("Gid:"))
}

#[test]
fn the_lab_works_in_user_namespaces_with_disjoint_ranges() {
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    lab.ok(&["up", &a, "--userns", "--address", "11.11.11.2/24", "--iface", "veth0", "--peer", &b]);
    lab.ok(&["up", &b, "--userns", "--address", "11.11.11.3/24", "--iface", "veth1", "--peer", &a]);

    // Ping both ways: ICMP datagram sockets, as root inside has no CAP_NET_RAW in
    // the host-owned netns; ping_group_range lets the container's gids open them.
    for (from, to) in [(&a, "11.11.11.3"), (&b, "11.11.11.2")] {
        let o = lab.exec(from, &["ping", "-c", "1", "-W", "2", to]);
        assert!(o.status.success(), "{from} -> {to}: {}", text(&o));
        assert!(stdout(&o).contains("1 received"), "{}", text(&o));
    }
    assert_eq!(stdout(&lab.exec(&a, &["hostname"])).trim(), a.to_uppercase());

    // Two containers, two disjoint ranges of 65536.
    let (ua, ga, ca, map_a) = ids(&lab, &a);
    let (ub, gb, cb, _) = ids(&lab, &b);
    assert_eq!((ca, cb), (65536, 65536));
    assert!(ua + ca <= ub || ub + cb <= ua, "uids overlap: {ua}+{ca} and {ub}+{cb}");
    assert!(ga + ca <= gb || gb + cb <= ga, "gids overlap: {ga}+{ca} and {gb}+{cb}");
    assert!(ua >= 65536 && ga >= 65536, "the range must not hold host system ids: {ua} {ga}");
    assert_eq!(map_a, format!("0 {ua} 65536"), "the kernel's uid_map of init");

    // Inside, root is 0; on the host, init and the command are the mapped ids.
    let inside = stdout(&lab.exec(&a, &["ps", "-o", "uid=,gid=", "-p", "1"]));
    assert_eq!(inside.split_whitespace().collect::<Vec<_>>(), ["0", "0"], "init's ids inside: {inside}");
    let init = lab.init_pid(&a);
    assert_eq!(host_ids(init), (ua, ga), "init's ids as the host sees them");
    let sleeper = lab
        .cmd(&["exec", &a, "--", "stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let worker = wait_for("stress in the container", || {
        lab_tests::descendants_named(sleeper.id() as i32, "stress").into_iter().next()
    });
    assert_eq!(host_ids(worker), (ua, ga), "an exec'd process's ids as the host sees them");
    // SIGTERM, which exec passes on (its pid: our own child).
    unsafe { libc::kill(sleeper.id() as i32, libc::SIGTERM) };
    let _ = sleeper.wait_with_output();

    let s = stdout(&lab.ok(&["status", &a]));
    let want = format!("container ids 0-65535 are host uids {ua}-{}", ua + 65535);
    assert!(s.contains(&want) && s.contains(&format!("uid_map 0 {ua} 65536")), "{s}");
    let explain = stdout(&lab.ok(&["up", &lab.name("x"), "--userns", "--explain"]));
    assert!(explain.contains("unshare --user --map-users=0:"), "{explain}");
    assert!(explain.contains("X-mount.idmap="), "{explain}");

    lab.ok(&["down", &a, &b]);
    let left = lab.leftovers(&[&a, &b]);
    assert!(left.is_empty(), "down left: {left:?}");
}

#[test]
fn root_inside_cannot_read_a_host_roots_file_but_reads_its_image() {
    let lab = Lab::new();
    let (a, c) = (lab.name("r"), lab.name("c"));
    // A layer of ours with a root-owned 0600 file: idmapped, it is the container
    // root's own, so root inside reads it.
    let layer = TempDir::new("userns-layer");
    std::fs::write(layer.path("mine"), "image-secret\n").unwrap();
    std::fs::set_permissions(layer.path("mine"), std::fs::Permissions::from_mode(0o600)).unwrap();
    lab.ok(&["up", &a, "--userns", "--layer", &layer.s("")]);
    lab.ok(&["up", &c, "--no-userns", "--layer", &layer.s("")]);
    let read = |name: &str, file: &str| lab.exec(name, &["sh", "-c", &format!("read -r x < {file} && echo \"$x\"")]);
    let o = read(&a, "/mine");
    assert!(o.status.success() && stdout(&o).contains("image-secret"), "its own image's 0600 file: {}", text(&o));

    // A host root's 0600 file made visible to both (put into each container's
    // upper dir from the host): root inside the user namespace is no one to it.
    for name in [&a, &c] {
        let f = lab.state_dir.join("containers").join(name.as_str()).join("upper/host-secret");
        std::fs::write(&f, "host-secret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let o = read(&a, "/host-secret");
    assert!(!o.status.success(), "root in a user namespace read the host root's file: {}", text(&o));
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
    let owner = stdout(&lab.exec(&a, &["ls", "-ln", "/host-secret"]));
    assert!(owner.contains(" 65534 65534 "), "the host's root shows as nobody inside: {owner}");
    // The control: without a user namespace, root inside is root.
    let o = read(&c, "/host-secret");
    assert!(o.status.success() && stdout(&o).contains("host-secret"), "{}", text(&o));
    // And root inside can still write its own root filesystem (the upper dir is its).
    let o = lab.exec(&a, &["sh", "-c", "echo made > /made && rm -rf /etc && mkdir /etc && ls -lnd /made /etc"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).lines().all(|l| l.contains(" 0 0 ")), "owned by root inside: {}", stdout(&o));
    lab.ok(&["down", &a, &c]);
}

#[test]
fn the_memory_limit_and_the_cpu_quota_hold_in_a_user_namespace() {
    let lab = Lab::new();
    let a = lab.name("m");
    lab.ok(&["up", &a, "--userns"]);
    let o = lab.exec(&a, &["stress", "--vm", "1", "--vm-bytes", "150M", "-t", "2"]);
    assert!(o.status.success(), "150M must fit in 200M: {}", text(&o));
    let o = lab.exec(&a, &["stress", "--vm", "1", "--vm-bytes", "250M", "-t", "60"]);
    assert!(!o.status.success(), "250M must not fit in 200M: {}", text(&o));
    assert!(lab.usage(&a).oom_kills >= 1, "the cgroup counts the OOM kill");

    let hog = lab
        .cmd(&["exec", &a, "--", "stress", "-c", "1", "-t", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("stress to spin", || (lab.usage(&a).cpu_ns > 50_000_000).then_some(()));
    let (u0, t0) = (lab.usage(&a).cpu_ns, Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (lab.usage(&a).cpu_ns - u0) as f64 / t0.elapsed().as_nanos() as f64;
    unsafe { libc::kill(hog.id() as i32, libc::SIGTERM) };
    let _ = hog.wait_with_output();
    assert!(share <= 0.42, "stress -c 1 used {:.1} % of a CPU; the limit is 40 %", share * 100.0);
    assert!(share >= 0.05, "stress -c 1 used only {:.1} % of a CPU: did it run?", share * 100.0);
    lab.ok(&["down", &a]);
    assert!(lab.leftovers(&[&a]).is_empty(), "{:?}", lab.leftovers(&[&a]));
}
