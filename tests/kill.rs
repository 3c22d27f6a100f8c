//! SIGKILL where `down` and the supervisor cannot clean up after themselves:
//! `down` killed part-way (in its grace period, and just before each thing it
//! removes), and the supervisor killed under a running container. Then `down`, and
//! `up` again, recover with nothing left.

use std::process::{Command, Stdio};

use lab_tests::{bin, stdout, text, wait_for, Lab};

/// The process has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat[stat.rfind(')').unwrap() + 2..].starts_with('Z')
}

fn assert_nothing_left(lab: &Lab, name: &str, pids: &[i32], after: &str) {
    // Only `name`'s: its peer's files stay in the same state dir.
    let mine = format!("/containers/{name}");
    let left: Vec<String> =
        lab.leftovers(&[name]).into_iter().filter(|l| !l.contains("/containers/") || l.contains(&mine)).collect();
    assert_eq!(left, Vec::<String>::new(), "{after}");
    for p in pids {
        assert!(ended(*p), "{after}: process {p} is still there");
    }
}

/// A main process that reports SIGTERM in /got (its root: the upper dir on the
/// host) and carries on, so that `down` has to wait its grace period.
const STUBBORN: &str = "trap 'echo TERM >> /got' TERM; \
                        stress --vm 1 --vm-bytes 4096 --vm-hang 0 -q & echo ready > /ready; \
                        while :; do wait; done";

#[test]
fn down_killed_in_its_grace_period_is_finished_by_the_next_down() {
    let lab = Lab::new();
    let a = lab.name("g");
    lab.ok(&["up", &a, "--address", "10.30.0.2/24", "--", "/bin/sh", "-c", STUBBORN]);
    let upper = lab.state_dir.join("containers").join(&a).join("upper");
    wait_for("the trap to be set", || upper.join("ready").exists().then_some(()));
    let init = lab.init_pid(&a);
    let mut down =
        lab.cmd(&["down", "--timeout", "120", &a]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // The command got SIGTERM: down is in its grace period now.
    wait_for("down to send SIGTERM", || {
        std::fs::read_to_string(upper.join("got")).ok()?.contains("TERM").then_some(())
    });
    assert_eq!(unsafe { libc::kill(down.id() as i32, libc::SIGKILL) }, 0, "kill -KILL {}", down.id());
    let st = down.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGKILL), "{st:?}");
    // Half done: the container still runs.
    assert!(stdout(&lab.ok(&["status", &a])).contains(": running"), "after the killed down");
    let o = lab.ok(&["down", "--timeout", "1", &a]);
    assert!(stdout(&o).contains("down"), "{}", text(&o));
    assert_nothing_left(&lab, &a, &[init], "the second down");
    // And it comes up again as new.
    lab.ok(&["up", &a, "--address", "10.30.0.2/24"]);
    lab.ok(&["down", &a]);
    assert_nothing_left(&lab, &a, &[], "up, down after the recovery");
}

/// `host-setup down NAME` under strace, SIGKILLed on entering the `n`th call of
/// `syscall` (before the call does anything). Some(true) if it was killed there,
/// Some(false) if it ended by itself (it makes fewer such calls).
fn down_killed_at(lab: &Lab, name: &str, syscall: &str, n: usize) -> bool {
    let inject = format!("inject={syscall}:signal=KILL:when={n}");
    let o = Command::new("strace")
        // -f: down removes the container's directory on a thread of its own while
        // it deletes the veth (plan::teardown); strace counts each thread's calls.
        .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("trace={syscall}"), "-e", "signal=none", "-e", &inject])
        .arg(bin("host-setup"))
        .args(["down", "--timeout", "5", name])
        .env("HOST_SETUP_STATE_DIR", &lab.state_dir)
        .env("HOST_SETUP_CGROUP_PARENT", &lab.cgroup_parent)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("strace (apt-get install strace)");
    // strace ends the way its tracee did: killed by the same signal.
    match std::os::unix::process::ExitStatusExt::signal(&o.status) {
        Some(libc::SIGKILL) => true,
        _ => {
            assert!(o.status.success(), "down under strace, {inject}: {}", text(&o));
            false
        }
    }
}

#[test]
fn down_killed_before_each_thing_it_removes_is_recovered_by_down_or_up() {
    let lab = Lab::new();
    let (a, b) = (lab.name("a"), lab.name("b"));
    lab.ok(&["up", &b, "--address", "11.11.11.3/24", "--peer", &a]);
    let up_a = ["up", a.as_str(), "--address", "11.11.11.2/24", "--peer", b.as_str()];
    let mut by_up = false;
    // kill: before init is signalled; rmdir: cgroups, dirs; umount2 and unlink:
    // the netns, files; sendto: the netlink request that deletes the link.
    for syscall in ["kill", "rmdir", "umount2", "unlink", "sendto"] {
        let mut n = 1;
        loop {
            lab.ok(&up_a);
            let init = lab.init_pid(&a);
            if !down_killed_at(&lab, &a, syscall, n) {
                assert!(n > 1, "down makes no {syscall} call at all");
                eprintln!("down killed before each of its {} {syscall} calls, and recovered", n - 1);
                assert_nothing_left(&lab, &a, &[init], &format!("down with {syscall} call {n} never reached"));
                break;
            }
            let at = format!("down killed before {syscall} call {n}");
            by_up = !by_up;
            if by_up {
                let o = lab.run(&up_a);
                if o.status.code() == Some(3) {
                    // Killed before it stopped init: the container is still up, and says so.
                    assert!(String::from_utf8_lossy(&o.stderr).contains("is already up"), "{at}: {}", text(&o));
                } else {
                    assert!(o.status.success(), "{at}, then up: {}", text(&o));
                }
                let o = lab.exec(&a, &["ping", "-c", "1", "-W", "2", "11.11.11.3"]);
                assert!(o.status.success(), "{at}, then up: {}", text(&o));
            }
            lab.ok(&["down", &a]);
            assert_nothing_left(
                &lab,
                &a,
                &[init],
                &format!("{at}, recovered by {}", if by_up { "up" } else { "down" }),
            );
            n += 1;
        }
    }
}

#[test]
fn a_killed_supervisor_is_recovered_by_down_and_by_up() {
    let lab = Lab::new();
    let a = lab.name("s");
    let wait = ["stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0", "-q"];
    let mut up = vec!["up", a.as_str(), "--"];
    up.extend_from_slice(&wait);
    for round in ["down", "up"] {
        lab.ok(&up);
        let init = lab.init_pid(&a);
        let sup = lab.journal_pid(&a, "supervisor").expect("the journal names the supervisor");
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
        let ppid: i32 = stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(ppid, sup, "the journal's supervisor {sup} is init's parent");
        assert_eq!(unsafe { libc::kill(sup, libc::SIGKILL) }, 0, "kill -KILL {sup}");
        wait_for("the supervisor to end", || ended(sup).then_some(()));
        // The container carries on without it.
        let o = lab.exec(&a, &["hostname"]);
        assert_eq!(stdout(&o).trim(), a.to_uppercase(), "{}", text(&o));
        if round == "down" {
            lab.ok(&["down", &a]);
            assert_nothing_left(&lab, &a, &[init, sup], "down after the supervisor was killed");
        } else {
            // Init killed too: nobody journals its end. up recovers by itself.
            assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0, "kill -KILL {init}");
            wait_for("init to end", || ended(init).then_some(()));
            let s = stdout(&lab.ok(&["status", &a]));
            assert!(s.contains("gone"), "{s}");
            lab.ok(&up);
            let o = lab.exec(&a, &["hostname"]);
            assert!(o.status.success(), "{}", text(&o));
            let (init2, sup2) = (lab.init_pid(&a), lab.journal_pid(&a, "supervisor").unwrap());
            lab.ok(&["down", &a]);
            assert_nothing_left(&lab, &a, &[init, sup, init2, sup2], "up, then down, after both were killed");
        }
    }
}
