//! Robustness: bad input gets a clear error and changes nothing; a setup that fails,
//! is interrupted or is killed at any step is undone (now, or by the next `down` or
//! `up`); concurrent commands work; many cycles leak nothing; faults inside one
//! container do not harm the other.

use std::path::Path;
use std::process::{Command, Stdio};

use lab_tests::footprint::{footprint, walk};
use lab_tests::{bin, stdout, text, wait_for, Lab};

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let lab = Lab::new();
    let x = lab.name("x");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["up", "Bad_Name"], 2, "invalid container name \"Bad_Name\": use 1 to 15 lower-case letters"),
        (vec!["up", "much-too-long-name"], 2, "invalid container name"),
        (vec!["up", "../etc"], 2, "invalid container name"),
        (vec!["up", "up"], 2, "it is a host-setup command"),
        (vec!["up", &x, "--address", "300.1.1.1/24"], 2, "not an IPv4 address (e.g. 11.11.11.2/24)"),
        (vec!["up", &x, "--address", "11.11.11.2"], 2, "give it with a prefix length"),
        (vec!["up", &x, "--address", "11.11.11.255/24"], 2, "broadcast address"),
        (vec!["up", &x, "--peer", "other"], 2, "needs an address"),
        (vec!["up", &x, "--address", "11.11.11.2/24", "--peer", "Bad"], 2, "--peer: invalid container name"),
        (vec!["up", &x, "--cpu", "0"], 2, "invalid CPU share \"0\": give a percentage"),
        (vec!["up", &x, "--cpu", "lots"], 2, "invalid CPU share"),
        (vec!["up", &x, "--cpu", "100000"], 2, "invalid CPU share"),
        (vec!["up", &x, "--memory", "12Q"], 2, "invalid memory size \"12Q\": give bytes or a number with K, M or G"),
        (vec!["up", &x, "--memory", "1M"], 2, "too small"),
        (vec!["up", &x, "--iface", "lo"], 2, "invalid interface name"),
        (vec!["up", &x, "--hostname", "-bad-"], 2, "invalid hostname"),
        (vec!["up", &x, "--layer", "/nonexistent/dir"], 2, "--layer /nonexistent/dir: ENOENT"),
        (vec!["up", &x, "--layer", "/etc/passwd"], 2, "not a directory"),
        (vec!["up", &x, "--", ""], 2, "the command after -- is empty"),
        (vec!["up", &x, "--exec-as-pid1"], 2, "--exec-as-pid1 needs a command"),
        (vec!["up", &x, "--bogus"], 2, "unrecognized argument: --bogus (see host-setup --help)"),
        (vec!["--cgroup-parent", "../escape", "up", &x], 2, "invalid cgroup parent"),
        (vec!["--state-dir", "/tmp/a b", "up", &x], 2, "--state-dir /tmp/a b: overlayfs cannot take"),
        (vec!["exec", "NOPE"], 2, "invalid container name"),
        (vec!["exec", &x, "ls"], 3, "is not up: start it with host-setup"),
        (vec!["down"], 2, "down needs a container name"),
        // The shorthand `host-setup NAME` does not take a mistyped command for a name.
        (vec!["stauts"], 2, "unknown command \"stauts\"; did you mean \"status\"? to start a new container with that name: host-setup up stauts"),
        (vec!["network", "rm"], 2, "network rm needs a network name"),
        (vec!["network", "create", "Bad"], 2, "invalid network name \"Bad\""),
        (vec!["network", "create", "web", "--subnet", "8.8.0.0/16"], 2, "use a private range"),
        (vec!["up", &x, "--net", "none", "--address", "10.1.1.1/24"], 2, "--net none has only loopback"),
        (vec!["up", &x, "-p", "80:80"], 2, "-p needs a network"),
        (vec!["up", &x, "--net", "hs0", "-p", "0:80"], 2, "invalid -p \"0:80\""),
        (vec!["up", &x, "--net", "hs0", "--peer", "y"], 2, "--peer is for --net pair"),
        (vec![&x], 2, "to start a new container with that name: host-setup up"),
    ];
    let before = footprint(&lab);
    for (args, code, want) in &cases {
        let o = lab.run(args);
        assert_eq!(o.status.code(), Some(*code), "host-setup {}: {}", args.join(" "), text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "host-setup {}: wanted {want:?} in: {}", args.join(" "), text(&o));
        assert!(!err.trim_end().ends_with('.'), "no trailing period: {err}");
    }
    assert_eq!(footprint(&lab), before, "a rejected command changed the host");
    assert!(!lab.state_dir.join("containers").exists(), "nothing was written to the state dir");
}

#[test]
fn preconditions_are_checked_before_anything_changes() {
    let lab = Lab::new();
    // Not root. uid 65534 may not be able to reach target/ (a checkout under root's
    // home or a `mktemp -d` dir is 0700): it runs a world-readable copy.
    let x = lab.name("u");
    let copy = lab_tests::world_readable_copy(&bin("host-setup"));
    let o = {
        use std::os::unix::process::CommandExt;
        let mut c = lab.cmd_of(&copy.path("host-setup"), &["up", &x]);
        c.uid(65534).gid(65534).output().unwrap_or_else(|e| panic!("run {} as uid 65534: {e}", copy.s("host-setup")))
    };
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must run as root"), "{}", text(&o));

    // A name whose netns someone else made.
    let y = lab.name("n");
    let ns = y.to_uppercase();
    let made = Command::new("ip").args(["netns", "add", &ns]).output().unwrap();
    assert!(made.status.success(), "ip netns add {ns}: {}", text(&made));
    struct DelNs(String);
    impl Drop for DelNs {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
        }
    }
    let _del = DelNs(ns.clone());
    let before = footprint(&lab);
    let o = lab.run(&["up", &y]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("network namespace {ns} already exists")),
        "{}",
        text(&o)
    );
    assert!(Path::new(&format!("/run/netns/{ns}")).exists(), "the foreign netns is left alone");
    assert_eq!(footprint(&lab), before);

    // An address another container has.
    let (a, b) = (lab.name("a"), lab.name("b"));
    lab.ok(&["up", &a, "--address", "10.20.0.2/24"]);
    let o = lab.run(&["up", &b, "--address", "10.20.0.2/24"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("address 10.20.0.2 is already used by container {a}")));

    // A name that is up.
    let o = lab.run(&["up", &a]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{a} is already up")), "{}", text(&o));
    lab.ok(&["down", &a]);
}

fn assert_pair_works(lab: &Lab, a: &str) {
    let o = lab.exec(a, &["ping", "-c", "1", "-W", "2", "11.11.11.3"]);
    assert!(o.status.success(), "{}", text(&o));
}

// Faults at every step (fail, kill, interrupt, SIGINT/SIGTERM/SIGHUP): tests/faults.rs.

#[test]
fn a_pair_comes_up_concurrently() {
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    for _ in 0..10 {
        let mut ca = lab.cmd(&["up", &a, "--address", "11.11.11.2/24", "--peer", &b]);
        let mut cb = lab.cmd(&["up", &b, "--address", "11.11.11.3/24", "--peer", &a]);
        let (pa, pb) = (
            ca.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
            cb.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
        );
        let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
        assert!(oa.status.success() && ob.status.success(), "{}\n{}", text(&oa), text(&ob));
        assert_pair_works(&lab, &a);
        let (da, db) = (lab.cmd(&["down", &a]).spawn().unwrap(), lab.cmd(&["down", &b]).spawn().unwrap());
        assert!(da.wait_with_output().unwrap().status.success() && db.wait_with_output().unwrap().status.success());
    }
    assert_eq!(lab.leftovers(&[&a, &b]), Vec::<String>::new());
}

#[test]
fn two_commands_on_one_name_are_serialized() {
    let lab = Lab::new();
    let a = lab.name("a");
    for _ in 0..3 {
        let p1 = lab.cmd(&["up", &a]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let p2 = lab.cmd(&["up", &a]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (o1, o2) = (p1.wait_with_output().unwrap(), p2.wait_with_output().unwrap());
        let codes = [o1.status.code(), o2.status.code()];
        assert!(codes.contains(&Some(0)) && codes.contains(&Some(3)), "{}\n{}", text(&o1), text(&o2));
        let loser = if o1.status.code() == Some(3) { &o1 } else { &o2 };
        assert!(String::from_utf8_lossy(&loser.stderr).contains(&format!("{a} is already up")), "{}", text(loser));
        // up and down at once: whatever order they ran in, the end is consistent.
        let p1 = lab.cmd(&["down", &a]).output();
        let p2 = lab.cmd(&["down", &a]).output();
        assert!(p1.unwrap().status.success() && p2.unwrap().status.success());
    }
    assert_eq!(lab.leftovers(&[&a]), Vec::<String>::new());
}

#[test]
fn many_cycles_leak_nothing() {
    let cycles: usize = std::env::var("HS_LEAK_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    // One cycle first, so that the layer cache exists before the snapshot.
    let cycle = |check_fds: bool| {
        lab.ok(&["up", &a, "--address", "11.11.11.2/24", "--peer", &b]);
        lab.ok(&["up", &b, "--address", "11.11.11.3/24", "--peer", &a]);
        assert_pair_works(&lab, &a);
        if check_fds {
            // The supervisor holds stdio (the log), the journal, the log's directory and
            // pipe, and init's pidfd; init only stdio (pipes).
            let init = lab.init_pid(&a);
            let sup = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
            let ppid: i32 = sup[sup.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap();
            let fds = |pid: i32| std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
            assert_eq!(
                fds(init),
                3,
                "init's fds: {:?}",
                std::fs::read_dir(format!("/proc/{init}/fd")).unwrap().count()
            );
            assert_eq!(fds(ppid), 7, "the supervisor's fds");
        }
        lab.ok(&["down", &a, &b]);
    };
    cycle(true);
    let layers_before = walk(&lab.state_dir.join("layers")).len();
    let before = footprint(&lab);
    for i in 0..cycles {
        cycle(i % 10 == 0);
    }
    assert_eq!(footprint(&lab), before, "after {cycles} cycles");
    assert_eq!(walk(&lab.state_dir.join("layers")).len(), layers_before, "the layer cache did not grow");
}

#[test]
fn faults_inside_a_container_do_not_harm_its_neighbour() {
    let lab = Lab::new();
    let (a, b) = lab.pair();
    // a: its memory hog is OOM-killed; b does not notice. (stress ends as soon as
    // its worker is killed; -t only bounds a slow machine's time to reach 200M.)
    let o = lab.exec(&a, &["stress", "--vm", "1", "--vm-bytes", "250M", "-t", "60"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("got signal 9"), "{}", text(&o));
    let o = lab.exec(&b, &["ping", "-c", "1", "-W", "2", "11.11.11.2"]);
    assert!(o.status.success(), "b still reaches a: {}", text(&o));
    assert!(stdout(&lab.ok(&["status", &a])).contains("oom kills 1"));
    assert!(stdout(&lab.ok(&["status", &b])).contains("oom kills 0"));
    // c: its main process crashes; status says how.
    let c = lab.name("c");
    lab.ok(&["up", &c, "--", "/bin/sh", "-c", "kill -SEGV $$"]);
    wait_for("c to end", || stdout(&lab.run(&["status", &c])).contains("exited (139)").then_some(()));
    assert!(stdout(&lab.ok(&["exec", &b, "--", "hostname"])).contains(&b.to_uppercase()));
    let _ = bin("host-setup");
}
