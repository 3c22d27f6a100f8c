//! No host fd ever crosses into a container, and a container's output is a log,
//! not a host file it holds (docs/containment.md, "Stdio and logs").
//!
//! With stdin, stdout and stderr redirected to host files (in a 0700 directory,
//! 0600 and 0644), `exec` and `run` hand the container pipes of host-setup's: a
//! process inside that opens /proc/PID/fd/N of every process it sees gets pipes,
//! never those files (default container and --no-userns). From the host, the fds of
//! init, the main process and an exec'd process are exactly 0-2, pipes. The log:
//! a flood stays within --log-max-size x --log-max-files; `logs --tail` and
//! `logs -f` (across rotation) show the right lines; the log file is root's 0600
//! and nowhere inside the container. Exit codes and stdin round trips as before.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_tests::{stdout, text, wait_for, Lab, TempDir};

/// A child of ours killed and reaped on drop (when an assertion fails first).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A layer of busybox-static with the applets these tests use.
fn busybox(dir: &TempDir) -> String {
    let bb = ["/usr/bin/busybox", "/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).expect("busybox");
    let bin = dir.path("bb/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(bb, bin.join("busybox")).unwrap();
    for a in ["sh", "cat", "echo", "sleep", "ls", "readlink", "seq", "yes", "head", "find", "true", "wc"] {
        std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
    }
    dir.s("bb")
}

/// A 0700 directory with stdin (0600, "secret-in"), stdout (0644) and stderr (0600) files.
struct Redirects {
    dir: PathBuf,
}

impl Redirects {
    fn new(tmp: &TempDir, tag: &str) -> Redirects {
        let dir = tmp.path(tag);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let file = |name: &str, mode: u32| {
            fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(dir.join(name)).unwrap()
        };
        file("in", 0o600).write_all(b"secret-in\n").unwrap();
        file("out", 0o644);
        file("err", 0o600);
        Redirects { dir }
    }

    fn apply(&self, c: &mut Command) {
        let w = |n: &str| fs::OpenOptions::new().append(true).open(self.dir.join(n)).unwrap();
        c.stdin(File::open(self.dir.join("in")).unwrap()).stdout(w("out")).stderr(w("err"));
    }

    fn read(&self, n: &str) -> String {
        fs::read_to_string(self.dir.join(n)).unwrap()
    }
}

/// For every fd of every process it sees: `FD <path> <link> <opened>`, where
/// opened is rw or r if an open through the magic link worked (O_RDWR first: it
/// never blocks on a pipe with no writer), empty if not. Then what it read on stdin.
const PROBE: &str = r#"for f in /proc/[0-9]*/fd/*; do
  l=$(readlink $f 2>/dev/null) || l=unreadable
  o=
  if (exec 9<>$f) 2>/dev/null; then o=rw
  else case "$l" in pipe:*) ;; *) (exec 9<$f) 2>/dev/null && o=r ;; esac
  fi
  echo "FD $f $l $o"
done
read line; echo "STDIN $line"; echo PROBE-DONE"#;

/// The probe's lines: nothing that opened is anything but a pipe, no link names
/// a host path of ours, and the probe did see pipes (and, as the host's root with
/// --no-userns, open them; with a user namespace it cannot even open our pipes:
/// their inodes are host root's, 0600, and that uid is not mapped).
fn check_probe(out: &str, host_dir: &Path, what: &str, no_userns: bool) {
    assert!(out.contains("PROBE-DONE"), "{what}: the probe did not finish:\n{out}");
    let host = host_dir.to_str().unwrap();
    let fds: Vec<&str> = out.lines().filter(|l| l.starts_with("FD ")).collect();
    let (mut pipes, mut seen) = (0, 0);
    for l in &fds {
        let parts: Vec<&str> = l.split_whitespace().collect();
        let (link, opened) = (parts[2], parts.get(3).copied().unwrap_or(""));
        assert!(!l.contains(host), "{what}: a host file is visible inside: {l}\n{out}");
        seen += link.starts_with("pipe:") as usize;
        if !opened.is_empty() {
            let ours = link.starts_with("pipe:") || link == "/dev/null";
            assert!(ours, "{what}: {l}: opened something that is not one of our pipes\n{out}");
            pipes += link.starts_with("pipe:") as usize;
        }
    }
    assert!(seen >= 3, "{what}: the probe saw no pipes of its own, so it proves nothing:\n{out}");
    assert!(!no_userns || pipes >= 3, "{what}: the probe opened no pipes, so it proves nothing:\n{out}");
    assert!(out.contains("STDIN secret-in"), "{what}: stdin did not come through:\n{out}");
}

#[test]
fn exec_and_run_with_redirected_stdio_hand_over_pipes_not_host_files() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostfd");
    let bb = busybox(&tmp);
    for (i, userns) in ["--userns", "--no-userns"].into_iter().enumerate() {
        let name = lab.name(&format!("e{i}"));
        lab.ok(&["up", &name, "--net", "none", userns, "--layer", &bb, "--", "sleep", "1000"]);
        let r = Redirects::new(&tmp, &format!("exec{i}"));
        let mut c = lab.cmd(&["exec", &name, "--", "sh", "-c", PROBE]);
        r.apply(&mut c);
        let st = c.status().unwrap();
        assert!(st.success(), "exec {userns}: {st}: {}", r.read("err"));
        check_probe(&r.read("out"), &tmp.0, &format!("exec in a {userns} container"), i == 1);

        let r = Redirects::new(&tmp, &format!("run{i}"));
        let run = lab.name(&format!("r{i}"));
        let mut c = lab.cmd(&["run", &run, "--net", "none", userns, "--layer", &bb, "--", "sh", "-c", PROBE]);
        r.apply(&mut c);
        let st = c.status().unwrap();
        assert!(st.success(), "run {userns}: {st}: {}", r.read("err"));
        check_probe(&r.read("out"), &tmp.0, &format!("run of a {userns} container"), i == 1);
    }
}

/// fd number -> link target of host pid `pid`.
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            (n, fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default())
        })
        .collect();
    v.sort();
    v
}

fn assert_only_our_pipes(pid: i32, who: &str) {
    let fds = fds_of(pid);
    let nums: Vec<i32> = fds.iter().map(|f| f.0).collect();
    assert_eq!(nums, [0, 1, 2], "{who} (pid {pid}) has other fds than 0-2: {fds:?}");
    for (n, l) in &fds {
        assert!(l.starts_with("pipe:"), "{who} (pid {pid}) fd {n} is {l}, not a pipe of host-setup's");
    }
}

fn children(pid: i32) -> Vec<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    s.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

#[test]
fn init_the_main_process_and_an_exec_have_only_our_fds() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostfd");
    let bb = busybox(&tmp);
    for (i, userns) in ["--userns", "--no-userns"].into_iter().enumerate() {
        let name = lab.name(&format!("f{i}"));
        lab.ok(&["up", &name, "--net", "none", userns, "--layer", &bb, "--", "sleep", "1000"]);
        let init = lab.init_pid(&name);
        assert_only_our_pipes(init, "init");
        let main = wait_for("the main process", || children(init).first().copied());
        assert_only_our_pipes(main, "the main process");

        // An exec from a caller with files on 0-2 and an extra fd (5) left open.
        let r = Redirects::new(&tmp, &format!("x{i}"));
        let script = format!("exec 5<{}; exec \"$@\"", r.dir.join("in").display());
        let hs = lab_tests::bin("host-setup");
        let hs = hs.to_str().unwrap();
        let mut c = lab.cmd_of(Path::new("/bin/sh"), &["-c", &script, "sh", hs, "exec", &name, "--", "sleep", "30"]);
        r.apply(&mut c);
        let mut child = Reap(c.spawn().unwrap());
        let exec = wait_for("the exec'd sleep", || {
            children(child.0.id() as i32)
                .into_iter()
                .find(|p| fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep"))
        });
        assert_only_our_pipes(exec, "the exec'd process");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::SIGTERM);
        let st = child.0.wait().unwrap();
        assert_eq!(st.code(), Some(143), "exec sleep, SIGTERM to host-setup: {}", r.read("err"));
    }
}

/// `host-setup exec NAME CMD` with `input` on a pipe; (exit code, stdout).
fn exec_with_input(lab: &Lab, name: &str, cmd: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>) {
    let mut a = vec!["exec", name, "--"];
    a.extend_from_slice(cmd);
    let mut c = lab.cmd(&a);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (o.status.code(), o.stdout)
}

#[test]
fn relayed_stdio_keeps_data_exit_codes_and_never_waits_for_unread_stdin() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostfd");
    let bb = busybox(&tmp);
    let name = lab.name("io");
    lab.ok(&["up", &name, "--net", "none", "--layer", &bb]);

    assert_eq!(exec_with_input(&lab, &name, &["cat"], b"data\n"), (Some(0), b"data\n".to_vec()));
    for (script, code) in [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", 143)] {
        assert_eq!(exec_with_input(&lab, &name, &["sh", "-c", script], b"").0, Some(code), "exec sh -c {script:?}");
    }
    // 1 MB in and back, and ~10 MB out: intact.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| b"abcdefghij\n"[(i % 11) as usize]).collect();
    assert!(exec_with_input(&lab, &name, &["cat"], &big).1 == big, "1 MB through exec cat came back changed");
    let (code, out) = exec_with_input(&lab, &name, &["seq", "1", "1400000"], b"");
    let want: String = (1..=1_400_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(code, Some(0));
    assert!(out == want.as_bytes(), "seq's {} bytes came out as {} bytes", want.len(), out.len());

    // What a process the command left behind writes before the pipe's EOF comes too.
    let (code, out) = exec_with_input(&lab, &name, &["sh", "-c", "(sleep 0.3; echo late) & echo early"], b"");
    assert_eq!((code, String::from_utf8_lossy(&out).into_owned()), (Some(0), "early\nlate\n".to_string()));

    // stdin that never ends, and a command that does not read it: exec returns.
    let mut c = lab.cmd(&["exec", &name, "--", "true"]);
    c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let mut child = Reap(c.spawn().unwrap());
    let _open = child.0.stdin.take();
    let st = wait_for("exec true with an open stdin to exit", || child.0.try_wait().unwrap());
    assert!(st.success() && t.elapsed() < Duration::from_secs(10), "{st} after {:?}", t.elapsed());

    // The same for run: data, codes.
    for (i, (script, code)) in [("cat", 0), ("cat; exit 7", 7), ("kill -TERM $$", 143)].into_iter().enumerate() {
        let run = lab.name(&format!("r{i}"));
        let mut c = lab.cmd(&["run", &run, "--net", "none", "--layer", &bb, "--", "sh", "-c", script]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"data\n").unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "run sh -c {script:?}");
        if script.starts_with("cat") {
            assert_eq!(stdout(&o), "data\n", "run sh -c {script:?}");
        }
    }
}

/// The log's files in the container dir: (name, size).
fn log_files(lab: &Lab, name: &str) -> Vec<(String, u64)> {
    let dir = lab.state_dir.join("containers").join(name);
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("console.log"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

#[test]
fn a_flood_stays_within_the_log_limit_and_logs_shows_the_right_lines() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostfd");
    let bb = busybox(&tmp);
    let name = lab.name("fl");
    let flood = "yes flood-flood-flood | head -n 1500000; seq 1 3; exec sleep 1000";
    let limits = ["--log-max-size", "64K", "--log-max-files", "3"];
    lab.ok(&[&["up", &name, "--net", "none", "--layer", &bb][..], &limits, &["--", "sh", "-c", flood]].concat());
    wait_for("the flood's last lines in the log", || {
        (stdout(&lab.ok(&["logs", &name, "--tail", "1"])) == "3\n").then_some(())
    });
    assert_eq!(stdout(&lab.ok(&["logs", &name, "--tail", "3"])), "1\n2\n3\n");
    let files = log_files(&lab, &name);
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(files.len() <= 3 && total <= 3 * 65536, "the flood left {files:?} ({total} bytes)");
    assert!(total > 2 * 65536, "the log kept less than it should: {files:?}");
    assert!(stdout(&lab.ok(&["status", &name])).contains("console.log ("), "status shows no log");

    // root's, 0600, and not anywhere in the container.
    let log = lab.state_dir.join("containers").join(&name).join("console.log");
    let m = fs::metadata(&log).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600), "{}", log.display());
    let inside = lab.exec(&name, &["sh", "-c", "find / -xdev -name 'console.log*'; ls -d /tmp/hs-test-* 2>&1; true"]);
    let s = stdout(&inside);
    assert!(
        !s.contains("console.log") && s.contains("No such file"),
        "the log is reachable inside:\n{}",
        text(&inside)
    );
}

#[test]
fn logs_follow_reads_across_rotation_and_ends_with_the_container() {
    let lab = Lab::new();
    let tmp = TempDir::new("hostfd");
    let bb = busybox(&tmp);
    let name = lab.name("fo");
    // 400 lines of 40 bytes (16 KB) in bursts of 50 every 0.2 s, in 4 KB files.
    let script = "for i in $(seq 1000 1399); do echo line-$i-abcdefghijklmnopqrstuvwxyzabc; \
                  [ $((i % 50)) = 0 ] && sleep 0.2; done; exit 0";
    let limits = ["--log-max-size", "4K", "--log-max-files", "3"];
    lab.ok(&[&["up", &name, "--net", "none", "--layer", &bb][..], &limits, &["--", "sh", "-c", script]].concat());
    let mut c = lab.cmd(&["logs", "-f", &name]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Reap(c.spawn().unwrap());
    // 16 KB fit in the pipe: read it once logs -f has ended by itself.
    let st = wait_for("logs -f to end with the container", || child.0.try_wait().unwrap());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(st.success(), "logs -f: {st}");
    let lines: Vec<String> = out.lines().filter(|l| l.starts_with("line-")).map(String::from).collect();
    let want: Vec<String> = (1000..1400).map(|i| format!("line-{i}-abcdefghijklmnopqrstuvwxyzabc")).collect();
    assert_eq!(lines, want, "logs -f lost or repeated lines across rotation");
    assert!(log_files(&lab, &name).len() == 3, "no rotation happened: {:?}", log_files(&lab, &name));
}
