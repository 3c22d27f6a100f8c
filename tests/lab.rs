//! The tutorial's checks, on the real kernel: a pair of containers set up by
//! host-setup the way RED and BLUE are (under test-unique names), and what the
//! tutorial looks at — ping both ways, hostname, ps, ls /, the chroot escape, the
//! CPU share, the OOM kill — then `down` leaving nothing behind.

use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use lab_tests::{bin, stdout, text, wait_for, Lab};

#[test]
fn pair_pings_both_ways_in_either_order_and_sees_only_itself() {
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    // b first this time: the pair is made by whichever comes up second.
    let o = lab.ok(&["up", &b, "--address", "11.11.11.3/24", "--iface", "veth1", "--peer", &a]);
    assert!(stdout(&o).contains("once"), "b announces the link for later: {}", text(&o));
    lab.ok(&["up", &a, "--address", "11.11.11.2/24", "--iface", "veth0", "--peer", &b]);

    for (from, to) in [(&a, "11.11.11.3"), (&b, "11.11.11.2")] {
        let o = lab.exec(from, &["ping", "-c", "3", "-W", "2", to]);
        assert!(o.status.success(), "ping {to} from {from}: {}", text(&o));
        assert!(stdout(&o).contains("3 received"), "{}", text(&o));
    }

    let o = lab.exec(&a, &["hostname"]);
    assert_eq!(stdout(&o).trim(), a.to_uppercase(), "{}", text(&o));

    // Only the container's own processes, and PID 1 is init.
    let o = lab.exec(&a, &["ps", "-e", "-o", "pid=,comm="]);
    assert!(o.status.success(), "{}", text(&o));
    let procs: Vec<(u32, String)> = stdout(&o)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.to_string()))
        })
        .collect();
    assert_eq!(procs.first(), Some(&(1, "init".to_string())), "{procs:?}");
    assert!(procs.len() <= 3, "only init, ps (and maybe a transient) expected: {procs:?}");
    assert!(procs.iter().all(|(_, c)| c == "init" || c == "ps"), "{procs:?}");

    // The merged layers, and no put_old.
    let o = lab.exec(&a, &["ls", "/"]);
    let root: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
    for want in ["bin", "escape_chroot", "lib", "lib64", "proc", "usr"] {
        assert!(root.iter().any(|r| r == want), "ls / lacks {want}: {root:?}");
    }
    assert!(!root.iter().any(|r| r == "put_old"), "put_old must be gone: {root:?}");
    // tools over myroot: a binary from each layer runs.
    for cmd in [&["which", "stress"][..], &["mkdir", "/made-here"][..]] {
        let o = lab.exec(&a, cmd);
        assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    }

    let o = lab.ok(&["status"]);
    let s = stdout(&o);
    assert!(s.contains(&format!("{a}: running")) && s.contains(&format!("{b}: running")), "{s}");
    assert!(s.contains("11.11.11.2/24 on veth0") && s.contains("link up"), "{s}");
    assert!(s.contains("cpu 40%") && s.contains("memory 200M"), "{s}");
}

#[test]
fn chroot_escape_works_in_a_chroot_but_not_in_the_container() {
    let lab = Lab::new();
    let a = lab.name("e");
    lab.ok(&["up", &a]);
    let o = lab.exec(&a, &["/escape_chroot"]);
    let out = stdout(&o);
    assert!(out.contains("CONTAINED"), "{}", text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Control: the same program in a plain chroot on the host gets out.
    let layer = std::fs::read_dir(lab.state_dir.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("myroot-"))
        .expect("the myroot layer");
    let o = std::process::Command::new("chroot").arg(&layer).arg("/escape_chroot").output().unwrap();
    assert!(stdout(&o).contains("ESCAPED"), "{}", text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn cpu_share_is_held_at_40_percent() {
    let lab = Lab::new();
    let a = lab.name("c");
    lab.ok(&["up", &a]);
    let mut hog = lab
        .cmd(&["exec", &a, "--", "stress", "-c", "1", "-t", "6"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Start measuring once the hog runs (its cgroup's CPU time grows), not after a
    // guessed delay: exec and stress's fork can take long on a loaded machine.
    let idle = lab.usage(&a).cpu_ns;
    wait_for("stress -c 1 to spin", || (lab.usage(&a).cpu_ns >= idle + 20_000_000).then_some(()));
    let (u0, t0) = (lab.usage(&a).cpu_ns, Instant::now());
    // A share is a rate: it is measured over a window of time, by nature.
    sleep(Duration::from_secs(3));
    let (u1, t1) = (lab.usage(&a).cpu_ns, Instant::now());
    let share = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    let _ = hog.kill();
    let _ = hog.wait();
    assert!(share <= 0.42, "stress -c 1 used {:.1} % of a CPU; the limit is 40 %", share * 100.0);
    assert!(share >= 0.10, "stress -c 1 used only {:.1} % of a CPU: did it run?", share * 100.0);
}

#[test]
fn memory_limit_passes_150m_and_oom_kills_250m() {
    let lab = Lab::new();
    let a = lab.name("m");
    lab.ok(&["up", &a]);
    let o = lab.exec(&a, &["stress", "--vm", "1", "--vm-bytes", "150M", "-t", "2"]);
    assert!(o.status.success(), "150M must fit in 200M: {}", text(&o));
    assert_eq!(lab.usage(&a).oom_kills, 0);

    let o = lab.exec(&a, &["stress", "--vm", "1", "--vm-bytes", "250M", "-t", "60"]);
    assert!(!o.status.success(), "250M must not fit in 200M: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("got signal 9"), "the worker is killed with SIGKILL: {}", text(&o));
    assert!(lab.usage(&a).oom_kills >= 1, "the cgroup counts the OOM kill");
    let s = stdout(&lab.ok(&["status", &a]));
    assert!(s.contains("oom kills 1") || s.contains("oom kills 2"), "{s}");
}

#[test]
fn down_leaves_nothing_behind() {
    let lab = Lab::new();
    let (a, b) = lab.pair();
    let pids = [lab.init_pid(&a), lab.init_pid(&b)];
    lab.ok(&["down", &a]);
    // b lost its link with a's namespace; its own end went with it.
    let o = std::process::Command::new("ip")
        .args(["-n", &b.to_uppercase(), "-o", "link", "show", "veth1"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "veth1 must be gone with its peer: {}", text(&o));
    lab.ok(&["down", &b]);
    assert_eq!(lab.leftovers(&[&a, &b]), Vec::<String>::new());
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "init {pid} still exists");
    }
    // Idempotent: down of something absent succeeds and says so.
    let o = lab.ok(&["down", &a]);
    assert!(stdout(&o).contains("not up"), "{}", text(&o));
}

#[test]
fn run_is_foreground_and_removes_everything() {
    let lab = Lab::new();
    let a = lab.name("r");
    let o = lab.run(&["run", &a, "--", "/bin/sh", "-c", "hostname; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(stdout(&o).trim(), a.to_uppercase());
    assert_eq!(lab.leftovers(&[&a]), Vec::<String>::new());
}

#[test]
fn binaries_are_static() {
    for b in ["host-setup", "init", "escape_chroot"] {
        let o = std::process::Command::new("file").arg("-L").arg(bin(b)).output().unwrap();
        let s = stdout(&o);
        assert!(s.contains("statically linked") || s.contains("static-pie linked"), "{b}: {s}");
    }
}
