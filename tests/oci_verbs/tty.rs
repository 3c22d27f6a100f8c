//! `hsrun exec --tty --console-socket`: the pty master sent over the socket the
//! test listens on; a pty of the container's devpts, or, in a container without
//! one, of the host's (exec_tty.rs), which `tty` inside cannot name.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use lab_tests::{seq, wait_for};

use super::Oci;

/// Receive one fd sent with SCM_RIGHTS on `sock`.
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

/// A shell started by `hsrun --debug exec --detach -t --console-socket` in `id`.
struct Shell {
    master: std::fs::File,
    /// What the shell has written on the pty so far (a thread reads it).
    out: Arc<Mutex<String>>,
    pid: i32,
    /// hsrun's stderr (its debug lines).
    stderr: String,
}

impl Shell {
    fn start(oci: &Oci, id: &str) -> Shell {
        let sock = oci.dir.path(&format!("console-{}.sock", seq()));
        let listener = UnixListener::bind(&sock).unwrap();
        let pid_file = oci.dir.path(&format!("tty-{}.pid", seq()));
        let err = oci.dir.path(&format!("exec-{}.stderr", seq()));
        let (s, p) = (sock.to_str().unwrap(), pid_file.to_str().unwrap());
        let status = oci
            .cmd(&["--debug", "exec", "--detach", "-t", "--console-socket", s, "--pid-file", p, id, "sh"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(status.success(), "{status:?}: {stderr}");
        let (conn, _) = listener.accept().unwrap();
        let master = std::fs::File::from(recv_fd(&conn));
        let out = Arc::new(Mutex::new(String::new()));
        let (mut r, o2) = (master.try_clone().unwrap(), out.clone());
        std::thread::spawn(move || {
            let mut b = [0u8; 1024];
            while let Ok(n) = r.read(&mut b) {
                if n == 0 {
                    break;
                }
                o2.lock().unwrap().push_str(&String::from_utf8_lossy(&b[..n]));
            }
        });
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        Shell { master, out, pid, stderr }
    }

    /// Types `line` and waits until the output has `want`; returns all of it.
    fn answer(&mut self, line: &str, want: &str) -> String {
        self.master.write_all(format!("{line}\n").as_bytes()).unwrap();
        wait_for("the shell's answer on the pty", || self.out.lock().unwrap().contains(want).then_some(()));
        self.out.lock().unwrap().clone()
    }

    fn exit(mut self) {
        self.master.write_all(b"exit\n").unwrap();
        let pid = self.pid;
        wait_for("the shell to exit", || {
            let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            (st.is_empty() || st.contains(") Z ")).then_some(())
        });
    }
}

#[test]
fn exec_tty_through_the_console_socket() {
    let oci = Oci::new();
    let id = oci.container("tty", &["sleep", "1000"]);
    let mut sh = Shell::start(&oci, &id);
    // The container's own devpts: ttyname inside finds /dev/pts/N.
    let out = sh.answer("tty && echo on-a-tty-$((6*7))", "on-a-tty-42");
    assert!(out.contains("/dev/pts/"), "{out}");
    sh.exit();
}

/// No devpts on /dev/pts: exec's pty is one of the host's devpts, and hsrun says
/// why, naming the path it could not open.
#[test]
fn exec_tty_without_devpts_uses_a_pty_of_the_host() {
    let oci = Oci::new();
    let id = oci.container_with("nopts", &["sleep", "1000"], false);
    let pid = oci.pid(&id);
    let mut sh = Shell::start(&oci, &id);
    let ptmx = format!("/proc/{pid}/root/dev/ptmx");
    assert!(sh.stderr.contains(&ptmx) && sh.stderr.contains("no devpts"), "{}", sh.stderr);
    // A terminal all the same, but not one of the container's /dev/pts.
    let out = sh.answer("tty; echo answer-$((6*7))", "answer-42");
    assert!(out.contains("not a tty"), "{out}");
    sh.exit();
}
