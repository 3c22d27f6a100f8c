//! Containment: from inside a running container, the ways out that the tutorial's
//! full-root container leaves open must fail — and, as a control where it is cheap
//! and harmless, work with --privileged. The probes use busybox-static as an extra
//! layer (mknod, dd, insmod, cat, kill), next to the tutorial's own tools.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lab_tests::{stdout, text, wait_for, Lab};

/// A layer dir with busybox-static and the applets the probes use, under /probe.
struct BusyboxLayer(PathBuf);

impl BusyboxLayer {
    fn new(lab: &Lab) -> BusyboxLayer {
        let dir = lab.state_dir.with_extension("busybox");
        let bin = dir.join("probe");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("busybox-static is installed (apt-get install busybox-static)");
        for applet in ["mknod", "dd", "insmod", "cat", "kill", "grep", "sleep", "mkdir", "echo"] {
            symlink("busybox", bin.join(applet)).unwrap();
        }
        // Not a module: insmod gets as far as the init_module system call with it.
        std::fs::write(dir.join("bogus.ko"), b"\x7fELF not really a kernel module").unwrap();
        BusyboxLayer(dir)
    }
    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for BusyboxLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run a shell line in the container; (success, stdout+stderr).
fn sh(lab: &Lab, name: &str, line: &str) -> (bool, String) {
    let o = lab.exec(name, &["/bin/sh", "-c", line]);
    (o.status.success(), format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)))
}

struct Probe<'a> {
    what: &'a str,
    line: String,
    /// Also run it in the privileged container, where it must succeed.
    control: bool,
}

fn probes() -> Vec<Probe<'static>> {
    // The host's disk if the host itself may open it, else loop0 (see harness).
    let (maj, min) = lab_tests::openable_block_device();
    let me = std::process::id();
    // The host's kind: on cgroup v2 the memory controller cannot be mounted as v1.
    let cgroup_fs = match host_setup::cgroup::Cgroups::detect().unwrap().version() {
        2 => "-t cgroup2 none",
        _ => "-t cgroup -o memory none",
    };
    vec![
        Probe { what: "mount a filesystem", line: "mkdir -p /mnt && mount -t tmpfs none /mnt".into(), control: true },
        Probe {
            what: "mknod a block device and read it",
            line: format!("/probe/mknod /disk b {maj} {min}; /probe/dd if=/disk of=/copy bs=512 count=1"),
            control: true,
        },
        Probe {
            what: "write /proc/sys/kernel/core_pattern",
            line: "echo '|/evil' > /proc/sys/kernel/core_pattern".into(),
            control: false, // never on the host, not even as a control
        },
        Probe { what: "write /proc/sysrq-trigger", line: "echo h > /proc/sysrq-trigger".into(), control: false },
        // Fails either way on a kernel without module support (this project's
        // machine: ENOSYS); what matters is CAP_SYS_MODULE, checked below.
        Probe { what: "load a kernel module", line: "/probe/insmod /bogus.ko".into(), control: false },
        Probe {
            what: "mount the cgroup hierarchy",
            line: format!("mkdir -p /cg && mount {cgroup_fs} /cg && umount /cg"),
            control: true,
        },
        Probe {
            // init's fds are pipes of host-setup's now, no host file (tests/hostfd.rs):
            // what is left to deny is reaching them; fdinfo has the same check as fd/.
            what: "reach init's fds through /proc/1/fd",
            line: "/probe/cat /proc/1/fdinfo/1 >/copy".into(),
            control: true,
        },
        Probe { what: "change the hostname", line: "hostname evil".into(), control: true },
        Probe { what: "see a host process", line: format!("/probe/kill -0 {me}"), control: false },
    ]
}

#[test]
fn escape_attempts_fail_by_default_and_work_with_privileged() {
    let lab = Lab::new();
    let bb = BusyboxLayer::new(&lab);
    let (jail, free) = (lab.name("j"), lab.name("p"));
    lab.ok(&["up", &jail, "--layer", &bb.arg()]);
    lab.ok(&["up", &free, "--privileged", "--layer", &bb.arg()]);
    let host_name = nix::sys::utsname::uname().unwrap().nodename().to_string_lossy().into_owned();
    for p in probes() {
        let (ok, out) = sh(&lab, &jail, &p.line);
        assert!(!ok, "contained: {} must fail, but: {out}", p.what);
        if p.control {
            let (ok, out) = sh(&lab, &free, &p.line);
            assert!(ok, "--privileged: {} works as in the tutorial, but: {out}", p.what);
        }
    }
    assert_eq!(nix::sys::utsname::uname().unwrap().nodename().to_string_lossy(), host_name, "the host's hostname");
    // The capabilities behind the probes: no CAP_SYS_MODULE (16), CAP_SYS_RAWIO (17),
    // CAP_SYS_ADMIN (21) contained; all of them with --privileged.
    let cap_eff = |name: &str| -> u64 {
        let (_, out) = sh(&lab, name, "/probe/grep CapEff /proc/self/status");
        u64::from_str_radix(out.split_whitespace().nth(1).expect("CapEff"), 16).unwrap()
    };
    let dangerous = (1 << 16) | (1 << 17) | (1 << 21);
    assert_eq!(cap_eff(&jail) & dangerous, 0, "contained");
    assert_eq!(cap_eff(&free) & dangerous, dangerous, "privileged");
    // Still a working container: the tutorial's tools do their job.
    for line in ["ping -c 1 -W 2 127.0.0.1", "hostname", "ps", "ls /", "stress -c 1 -t 1 -q"] {
        let (ok, out) = sh(&lab, &jail, line);
        assert!(ok, "{line}: {out}");
    }
}

/// `Cap*`, `NoNewPrivs` and `Seccomp*` lines of a /proc/PID/status text.
fn privs(status: &str) -> Vec<String> {
    let wanted = |l: &&str| ["Cap", "NoNewPrivs", "Seccomp"].iter().any(|p| l.starts_with(p));
    status.lines().filter(wanted).map(str::to_string).collect()
}

#[test]
fn exec_enters_with_exactly_the_main_process_restrictions() {
    let lab = Lab::new();
    let a = lab.name("x");
    lab.ok(&["up", &a, "--", "stress", "--vm", "1", "--vm-bytes", "4096", "--vm-hang", "0", "-q"]);
    let init = lab.init_pid(&a);
    let main = wait_for("the main process", || {
        let kids = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        kids.split_whitespace().next()?.parse::<i32>().ok()
    });
    let main_privs = privs(&std::fs::read_to_string(format!("/proc/{main}/status")).unwrap());
    let o = lab.exec(&a, &["/bin/sh", "-c", "while read l; do echo \"$l\"; done < /proc/self/status"]);
    let exec_privs = privs(&stdout(&o));
    assert_eq!(exec_privs, main_privs, "{}", text(&o));
    assert!(main_privs.iter().any(|l| l.starts_with("NoNewPrivs") && l.ends_with('1')), "{main_privs:?}");
    assert!(main_privs.iter().any(|l| l.starts_with("CapBnd") && !l.ends_with("1ffffffffff")), "{main_privs:?}");
    assert!(main_privs.iter().any(|l| l.starts_with("Seccomp:") && l.ends_with('2')), "{main_privs:?}");
}

#[test]
fn a_fork_bomb_stays_inside_its_pids_limit() {
    let lab = Lab::new();
    let (bomb, calm) = (lab.name("f"), lab.name("c"));
    lab.ok(&["up", &bomb, "--pids", "64"]);
    lab.ok(&["up", &calm]);
    let mut child = lab
        .cmd(&["exec", &bomb, "--", "/bin/sh", "-c", "b() { b | b & }; b; wait"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids_dir = lab.cgroup_dirs(&bomb).into_iter().find(|d| d.join("pids.current").exists()).expect("a pids cgroup");
    let current = || std::fs::read_to_string(pids_dir.join("pids.current")).unwrap().trim().parse::<u64>().unwrap();
    // pids.events counts the forks the limit refused ("max N"): the proof that the
    // bomb hit it. (pids.current alone can miss the peak: a bomb whose forks fail
    // dies out within milliseconds on a fast machine.)
    let refused = || {
        let text = std::fs::read_to_string(pids_dir.join("pids.events")).unwrap();
        text.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse::<u64>().ok()).unwrap()
    };
    wait_for("the bomb to reach its limit", || (refused() > 0).then_some(()));
    assert!(current() <= 64, "pids.current {} above pids.max 64", current());
    // The host and the other container carry on.
    let (ok, out) = sh(&lab, &calm, "hostname");
    assert!(ok && out.contains(&calm.to_uppercase()), "{out}");
    assert!(std::process::Command::new("true").status().unwrap().success());
    lab.ok(&["down", "--timeout", "1", &bomb]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!Path::new(&pids_dir).exists());
}

/// runc's CVE-2019-5736 from the host's side: init runs from a read-only overlay
/// of its own dir made for it and attached nowhere (init_image.rs), so
/// /proc/PID/exe of the container's PID 1 names no path of the host, is on a
/// superblock that refuses every write (EROFS, not merely the ETXTBSY of a
/// running file), and its pages are the host file's: shared, not a copy per
/// container (the sealed memfd it replaced was ~92 kB private in each).
#[test]
fn init_runs_from_a_read_only_overlay_sharing_its_pages() {
    let lab = Lab::new();
    let a = lab.name("m");
    lab.ok(&["up", &a]);
    let init = lab.init_pid(&a);
    let exe = format!("/proc/{init}/exe");
    let target = std::fs::read_link(&exe).unwrap_or_else(|e| panic!("readlink {exe}: {e}"));
    assert_eq!(target.to_string_lossy(), "/init", "{exe}: init's name in a mount attached nowhere");
    let f = std::fs::File::open(&exe).unwrap_or_else(|e| panic!("open {exe}: {e}"));
    let fs = nix::sys::statfs::fstatfs(&f).unwrap();
    assert_eq!(fs.filesystem_type(), nix::sys::statfs::OVERLAYFS_SUPER_MAGIC, "{exe} is an overlay file");
    let on_disk = lab_tests::bin("init");
    let image = std::fs::read(&exe).unwrap();
    assert_eq!(image, std::fs::read(&on_disk).unwrap(), "{exe} is init");
    for (write, append) in [(true, false), (false, true)] {
        let w = std::fs::OpenOptions::new().write(write).append(append).open(&exe);
        let errno = w.as_ref().err().and_then(|e| e.raw_os_error());
        assert_eq!(errno, Some(libc::EROFS), "open {exe} for writing (append {append}): {w:?}");
    }
    assert_eq!(std::fs::read(&on_disk).unwrap(), image, "{} is unchanged", on_disk.display());
    // Mapped from the host file's page cache: pages the waiter (init --wait-child,
    // exec'd from the host's file) maps too, so shared; a memfd copy's are not.
    // Shared_Clean on a disk's filesystem, Shared_Dirty on tmpfs (the v2 VM's root:
    // shmem pages are never clean).
    let smaps = std::fs::read_to_string(format!("/proc/{init}/smaps")).unwrap();
    let (mut mappings, mut shared) = (0, 0);
    let mut of_exe = false;
    for l in smaps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first().is_some_and(|a| a.contains('-') && !a.ends_with(':')) {
            of_exe = f.get(5) == Some(&"/init");
            mappings += of_exe as usize;
        } else if of_exe && matches!(f.first(), Some(&"Shared_Clean:" | &"Shared_Dirty:")) {
            shared += f[1].parse::<u64>().unwrap();
        }
    }
    assert!(mappings > 0, "init's mappings of /init in /proc/{init}/smaps:\n{smaps}");
    assert!(shared >= 4, "init's pages shared with the host file's: Shared_Clean + Shared_Dirty {shared} kB\n{smaps}");
}

/// Where the overlay cannot be made (here: init's dir has a path longer than
/// fsconfig's 255 bytes), init runs from a sealed memfd copy instead: no file of
/// the host's disk behind /proc/PID/exe, its seals forbid any change.
#[test]
fn init_runs_from_a_sealed_memfd_where_no_overlay_can_be_made() {
    use std::os::fd::AsRawFd;
    let tmp = lab_tests::TempDir::new("longinit"); // dropped after the lab
    let lab = Lab::new();
    let dir = tmp.0.join("d".repeat(250)).join("e".repeat(20));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("init");
    std::fs::copy(lab_tests::bin("init"), &copy).unwrap();
    let a = lab.name("m");
    lab.ok(&["up", &a, "--init", copy.to_str().unwrap()]);
    let init = lab.init_pid(&a);
    let exe = format!("/proc/{init}/exe");
    let target = std::fs::read_link(&exe).unwrap_or_else(|e| panic!("readlink {exe}: {e}"));
    assert_eq!(target.to_string_lossy(), "/memfd:host-setup-init (deleted)", "{exe}");
    let f = std::fs::File::open(&exe).unwrap_or_else(|e| panic!("open {exe}: {e}"));
    // SAFETY: F_GET_SEALS on an fd we own; it takes no argument.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    assert!(seals >= 0, "fcntl({exe}, F_GET_SEALS): {}", std::io::Error::last_os_error());
    let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals, want, "the seals of {exe}: SEAL|SHRINK|GROW|WRITE is {want:#x}");
    let image = std::fs::read(&exe).unwrap();
    assert_eq!(image, std::fs::read(&copy).unwrap(), "{exe} is init");
    for (write, append) in [(true, false), (false, true)] {
        // ETXTBSY: a file being executed cannot be opened for writing.
        let w = std::fs::OpenOptions::new().write(write).append(append).open(&exe);
        assert!(w.is_err(), "open {exe} for writing (append {append}) must fail");
    }
    assert_eq!(std::fs::read(&exe).unwrap(), image, "{exe} is unchanged");
}
