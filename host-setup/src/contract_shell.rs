//! The launch step as shell (`--explain`): what host-setup and init do for
//! the tutorial's 4-1 3) to 4-2 5), written so that bash runs it as it is.
//!
//! host-setup clones init into new namespaces (spawn.rs) and init does the rest
//! from inside (init/src/). The script does the same with util-linux: `unshare`
//! makes the namespaces, a shell fed by a here-document joins the cgroups and
//! makes every mount, then execs the same init binary with the flags for what
//! no shell tool does (init --restrict: Docker's capabilities, no_new_privs,
//! non-dumpable), and init waits as PID 1. The /dev nodes and /proc masks come
//! from init's own lists (init::dev, init::maskproc), so they cannot drift.
//! tests/explain_runs.rs runs the script and compares the container it makes
//! with host-setup's, field by field.

use std::path::Path;

use init::flag;

use crate::contract::InitArgs;
use crate::spec::Pid1;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn c(t: &std::ffi::CStr) -> String {
    t.to_string_lossy().into_owned()
}

impl InitArgs {
    /// The tutorial's shell commands for what init does (4-1 3) to 4-2 5)).
    pub fn shell(&self) -> Vec<String> {
        match self.userns.is_none() && self.run.is_none() && self.explicit.is_none() {
            true => self.script(),
            false => self.sketch(),
        }
    }

    /// A script bash runs: the namespaces, the mounts, then init as PID 1.
    fn script(&self) -> Vec<String> {
        let merge = s(&self.rootfs);
        let mut out = vec![
            "# host-setup clones init into new mount, UTS, IPC and PID namespaces and init does the rest from".into(),
            "# inside; here a shell does the same, then becomes the same init binary for what no shell does.".into(),
            "ready=$(mktemp -d)   # init says ok on $ready/fifo (its --ready-fd 3) once it waits as PID 1".into(),
            "mkfifo $ready/fifo".into(),
            format!("unshare -m -u -i -p -f nsenter --net={} sh -e 3>$ready/fifo <<'EOF' &", self.netns.display()),
        ];
        for d in &self.cgroup_dirs {
            // v1: `tasks` moves this thread alone (init/src/join.rs); on v2
            // host-setup clones init straight into its cgroup, a shell joins it.
            out.push(match self.born_in_cgroup {
                true => format!("  echo 0 > {}/cgroup.procs   # host-setup: clone3 CLONE_INTO_CGROUP", d.display()),
                false => format!("  echo 0 > {}/tasks", d.display()),
            });
        }
        let lower: Vec<String> = self.lower.iter().map(|p| s(p)).collect();
        out.extend([
            "  mount --make-rprivate /".to_string(),
            format!(
                "  mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {merge}",
                lower.join(":"),
                self.upper.display(),
                self.work.display()
            ),
            format!("  cd {merge}"),
        ]);
        if self.contain {
            out.extend(dev_lines());
        }
        out.push("  mkdir -p -m 555 proc; mount -t proc -o nosuid,nodev,noexec proc proc".into());
        if self.contain {
            out.extend(mask_lines());
        }
        out.extend([
            format!("  hostname {}", self.hostname),
            format!(
                "  exec 9< {}   # init's binary, opened while the host's files are in reach (host-setup opens it in a read-only overlay attached nowhere: no shell tool makes one)",
                s(&self.init_bin)
            ),
            // umount here is the container's own (the tools layer has it).
            "  pivot_root . .; umount -l .; cd /   # the old root, stacked on the new one, detached".into(),
        ]);
        if self.filtered() {
            out.push(format!(
                "  # not here: seccomp, {} (host-setup compiles it to BPF for init's --seccomp-fd; no shell tool does)",
                self.seccomp.describe()
            ));
        }
        out.push(format!("  exec /proc/self/fd/9 {}", self.script_init_flags().join(" ")));
        out.extend([
            "EOF".into(),
            "read -r answer < $ready/fifo; rm -r $ready; [ \"$answer\" = ok ]   # an error line otherwise".into(),
        ]);
        out.push(match self.command.is_empty() {
            true => "# init stays PID 1 and waits (--pause); enter with nsenter -t PID -a, or host-setup exec".into(),
            false => "# init stays PID 1: forwards signals, reaps, passes on the status".into(),
        });
        out
    }

    /// init's flags in the script: what is left once the shell did the rest.
    fn script_init_flags(&self) -> Vec<String> {
        let mut a = vec![];
        if self.contain {
            a.extend([flag::CGROUPNS, flag::RESTRICT].map(String::from));
        }
        a.extend([flag::READY_FD.to_string(), "3".into()]);
        self.command_tail(&mut a, true);
        a
    }

    /// The sketch for what the script does not cover yet (--userns, the run
    /// options, an OCI bundle): the commands, some as prose.
    fn sketch(&self) -> Vec<String> {
        let mut lower: Vec<String> = self.lower.iter().map(|p| s(p)).collect();
        let mut out = vec![];
        match &self.userns {
            None => out.push(format!(
                "unshare -m -u -i -fp nsenter --net={} /bin/sh   # new mount, UTS, IPC and PID namespaces; in there:",
                self.netns.display()
            )),
            Some(u) => {
                out.push(format!(
                    "nsenter --net={} unshare {} -m -u -i -fp /bin/sh &   # a user namespace first: the others are its",
                    self.netns.display(),
                    u.ids.unshare_options()
                ));
                for d in self.cgroup_dirs.iter().filter(|_| !self.born_in_cgroup) {
                    out.push(format!(
                        "# the child, before it becomes root inside: echo 0 > {}/tasks (a file the host opened)",
                        d.display()
                    ));
                }
                for (layer, point) in self.lower.iter().zip(&u.mount_points) {
                    out.push(format!(
                        "nsenter -t $! -m mount --bind -o ro,X-mount.idmap=/proc/$!/ns/user {} {}",
                        layer.display(),
                        point.display()
                    ));
                }
                out.push("# in there (root of its user namespace):".into());
                lower = u.mount_points.iter().map(|p| s(p)).collect();
            }
        }
        for d in self.cgroup_dirs.iter().filter(|_| self.userns.is_none()) {
            out.push(match self.born_in_cgroup {
                true => format!(
                    "  # already in {}: born there (clone3 CLONE_INTO_CGROUP), no cgroup.procs write",
                    d.display()
                ),
                // v1 (v2 is born in its one cgroup): this thread alone, see init/src/join.rs.
                false => format!("  echo 0 > {}/tasks", d.display()),
            });
        }
        let merge = self.rootfs.display();
        out.extend([
            "  mount --make-rprivate /".to_string(),
            format!(
                "  mount -t overlay overlay -o lowerdir={},upperdir={},workdir={}{} {merge}",
                lower.join(":"),
                self.upper.display(),
                self.work.display(),
                if self.userns.is_some() { ",userxattr" } else { "" }
            ),
            // The tutorial's put_old without the directory (init/src/rootfs.rs says why).
            format!("  mount -t proc proc {merge}/proc"),
            format!(
                "  cd {merge}; pivot_root . .; umount -l .; cd /   # the old root, stacked on the new one, detached"
            ),
            format!("  hostname {}", self.hostname),
        ]);
        if self.contain {
            out.extend([
                "  # containment, not in the tutorial (--privileged leaves it out):".to_string(),
                "  unshare -C                                   # init, after joining the cgroups: a cgroup namespace".to_string(),
                match self.userns {
                    None => "  mount -t tmpfs tmpfs /dev; mknod /dev/null c 1 3 ...   # null zero full random urandom tty, devpts, shm",
                    Some(_) => "  mount -t tmpfs tmpfs dev; touch dev/null; mount --bind /dev/null dev/null ...   # no mknod in a user namespace",
                }
                .to_string(),
                "  mount --bind /dev/null /proc/kcore ...; mount -o remount,bind,ro /proc/sys ...".to_string(),
                "  capsh --drop=<all but Docker's default set> --no-new-privs --   # for the command".to_string(),
            ]);
        }
        if let Some(r) = &self.run {
            // The run options' mounts go in before /proc and the pivot.
            let at = out.iter().position(|l| l.contains("mount -t proc")).unwrap_or(out.len());
            let mounts = crate::spec::runopts_show::shell_mounts(&r.run, &self.rootfs, self.userns.is_some());
            out.splice(at..at, mounts);
            out.push(crate::spec::runopts_show::shell_process(&r.run, &r.env));
        }
        if self.filtered() {
            out.push(format!("  # seccomp: {}, installed last", self.seccomp.describe()));
        }
        out.push(match (self.command.is_empty(), self.pid1) {
            (true, _) => "  # init stays PID 1 and waits (--pause); enter with host-setup exec".to_string(),
            (false, Pid1::Exec) => format!("  exec {}", self.command.join(" ")),
            (false, _) => format!(
                "  {} &   # init stays PID 1: forwards signals, reaps, passes on the status",
                self.command.join(" ")
            ),
        });
        out
    }
}

/// init --dev's /dev as commands (init/src/dev.rs), before the pivot as init does.
fn dev_lines() -> Vec<String> {
    use init::dev::{DEVPTS_OPTIONS, DEV_OPTIONS, LINKS, NODES, SHM_OPTIONS};
    let mut out = vec![
        "  # containment, not in the tutorial (--privileged leaves it out): a minimal /dev (init --dev)".into(),
        "  mkdir -p -m 755 dev".into(),
        format!("  mount -t tmpfs -o nosuid,noexec,{} tmpfs dev", c(DEV_OPTIONS)),
    ];
    let nodes: Vec<String> =
        NODES.iter().map(|(p, major, minor)| format!("mknod -m 666 {} c {major} {minor}", c(p))).collect();
    out.push(format!("  {}", nodes.join("; ")));
    out.extend([
        format!("  mkdir -m 755 dev/pts; mount -t devpts -o nosuid,noexec,{} devpts dev/pts", c(DEVPTS_OPTIONS)),
        format!("  mkdir -m 1777 dev/shm; mount -t tmpfs -o nosuid,nodev,noexec,{} shm dev/shm", c(SHM_OPTIONS)),
    ]);
    let links: Vec<String> = LINKS.iter().map(|(l, t)| format!("ln -s {} {}", c(t), c(l))).collect();
    out.push(format!("  {}", links.join("; ")));
    out
}

/// init --mask-proc's /proc paths (init/src/maskproc.rs): runc's lists, the
/// absent ones skipped; a masked dir gets an empty read-only tmpfs.
fn mask_lines() -> Vec<String> {
    use init::maskproc::{MASKED, READ_ONLY};
    let names = |l: &[&std::ffi::CStr]| l.iter().map(|p| c(p).trim_start_matches('/').to_string()).collect::<Vec<_>>();
    vec![
        "  # /proc's read-only and masked paths (init --mask-proc), made here before the pivot".into(),
        format!(
            "  for p in {}; do [ ! -e $p ] || {{ mount --rbind $p $p; mount -o remount,bind,ro,nosuid,nodev,noexec $p; }}; done",
            names(&READ_ONLY).join(" ")
        ),
        format!(
            "  for p in {}; do if [ -d $p ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec tmpfs $p; elif [ -e $p ]; then mount --bind dev/null $p; fi; done",
            names(&MASKED).join(" ")
        ),
    ]
}
