//! init's binary: the order of the steps (each one lives in the library, see
//! src/lib.rs). No libc: src/rt.rs has `_start`, and everything is a raw syscall.
//!
//! 0. the command line and tini's environment; block signals; tini's -p
//! 1. join cgroups (+ --cgroupns)  2. join the netns
//! 3. rootfs (+ --dev) + pivot_root + /proc (+ --mask-proc)  4. hostname
//! 5. --restrict: non-dumpable, capabilities, no_new_privs (youki/runc order:
//!    after every mount, right before CMD)
//!    then --seccomp-fd's filter, read early, installed last (src/seccomp.rs);
//!    without no_new_privs, before the capabilities are dropped (runc's order)
//!
//! --spec-fd's records (src/specrun.rs) are read before step 1 and run within
//! steps 3-5: mounts and createContainer hooks before the pivot, the terminal
//! (CONSOLE) right after it,
//! masks and sysctls after the hostname,
//! rlimits, user and capabilities in 5, then the wait for `start` and hooks.
//! 6. rewrite init's argv, then start CMD (supervised, or --exec, or --pause)
#![no_std]
#![no_main]

mod rt;

use core::ffi::{c_char, CStr};

use init::args::{self, Opts, Parsed};
use init::exec::{self, Cmd};
use init::help::{HELP, LICENSE, VERSION};
use init::msg::{self, fmt_i64, Error};
use init::pid1::{self, Duties, EXIT_SETUP};
use init::rootfs::{self, Rootfs};
use init::specrun::Spec;
use init::{caps, join, ready, seccomp, signals, start, sys, title, user};

const EXIT_USAGE: i32 = 2;

/// Called by rt's `_start` with the initial stack's NULL-terminated argv and envp.
fn main(argc: usize, argv: *const *const c_char, envp: *const *const c_char) -> ! {
    // 0. What to do: argv, then tini's environment variables.
    // SAFETY: the kernel put argc valid C strings there.
    let args = unsafe { core::slice::from_raw_parts(argv, argc) }.iter().map(|&p| unsafe { CStr::from_ptr(p) });
    // host-setup's supervisor, once the container runs (src/waiter.rs).
    let mut first = args.clone().skip(1);
    if first.next().is_some_and(|w| w.to_bytes() == init::flag::WAIT_CHILD.as_bytes()) {
        init::waiter::run(first)
    }
    let mut o = match args::parse(args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => print_and_exit(HELP),
        Ok(Parsed::Version) => print_and_exit(VERSION),
        Ok(Parsed::License) => print_and_exit(LICENSE),
        Err(u) => {
            msg::eprint(&[u.msg.as_bytes(), u.arg, b"; see init --help"]);
            sys::exit(EXIT_USAGE)
        }
    };
    // SAFETY: envp is the initial stack's NULL-terminated environment, never changed.
    let getenv = |name: &[u8]| unsafe { sys::getenv(envp, name) };
    args::apply_env(&mut o, getenv);
    let debug = if msg::debug_wanted(getenv(b"RUST_LOG")) { msg::DEBUG } else { 0 };
    msg::set_level(o.verbosity().max(debug));

    // The ready fd must never reach CMD (it would keep host-setup's reader waiting).
    if let Some(fd) = o.ready_fd {
        if let Err(e) = sys::set_cloexec(fd) {
            let mut n = [0; 20];
            let what: [&[u8]; 3] = [b"fcntl(--ready-fd ", fmt_i64(fd as i64, &mut n), b", FD_CLOEXEC)"];
            ready::fail(None, &Error::new(e, &what), EXIT_SETUP)
        }
    }

    // From here on, signals wait in init's queue: one that arrives during setup
    // is forwarded to CMD as soon as it runs. CMD gets back what init had.
    let inherited = signals::take_over();
    if let Some(sig) = o.pdeathsig {
        if let Err(e) = pid1::parent_death_signal(sig) {
            ready::fail(o.ready_fd, &e, EXIT_SETUP)
        }
    }

    // --spec-fd: mapped and checked whole before any step, so a malformed
    // stream changes nothing.
    let spec = o.spec_fd.map(|fd| Spec::load(fd).unwrap_or_else(|e| ready::fail(o.ready_fd, &e, EXIT_SETUP)));

    if let Err(e) = setup(&o, spec, inherited) {
        ready::fail(o.ready_fd, &e, EXIT_SETUP)
    }

    // 5b. read the seccomp filter now: its fd is closed with the others below.
    let filter = o.seccomp_fd.map(|fd| seccomp::read(fd).unwrap_or_else(|e| ready::fail(o.ready_fd, &e, EXIT_SETUP)));
    // 5a. without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN (the kernel's
    // rule), which the capability sets below may drop: the filter goes on now,
    // before them, as runc's standard_init does (a config with noNewPrivileges
    // unset and no CAP_SYS_ADMIN: Podman's and Docker's defaults). Everything
    // init calls from here to exec (close_range, prctl, capset, setgroups,
    // setresuid, chdir, the start fifo, the hooks' fork/execve/wait4) must then
    // pass the filter: runc has the same constraint, and Docker's and Podman's
    // default profiles allow them. With no_new_privs it goes on last (5b).
    let nnp = o.restrict || spec.is_some_and(|s| s.find(init::spec::NO_NEW_PRIVS).is_some());
    let filter = match filter {
        Some(f) if !nnp => {
            if let Err(e) = seccomp::install(&f) {
                ready::fail(o.ready_fd, &e, EXIT_SETUP)
            }
            None
        }
        f => f,
    };

    // 5. --restrict, last, once nothing needs privileges any more. init applies it
    // to itself right before it forks CMD (or execs it, with --exec), so CMD
    // starts with exactly init's limits; init keeps only what PID 1 needs (it
    // waits, and kill(2)s processes of any uid: CAP_KILL is in the set).
    if o.restrict {
        // init's own inherited fds too (CMD never gets them anyway): the host's
        // pipes and files must not stay open in the container's PID 1 (trap 8).
        msg::debug(&[b"close init's inherited fds above 2"]);
        match &spec {
            Some(s) => s.close_fds_except(3 + o.preserve_fds, o.ready_fd.unwrap_or(-1)),
            None => exec::close_fds_except(3 + o.preserve_fds, o.ready_fd.unwrap_or(-1)),
        }
        // Not with --exec: execve resets the flag for CMD anyway.
        let dumpable = if o.exec { Ok(()) } else { caps::non_dumpable() };
        // With a spec, its process phase applies the capabilities (below).
        let restricted = if spec.is_some() { Ok(()) } else { caps::restrict(caps::DEFAULT_MASK) };
        if let Err(e) = dumpable.and(restricted) {
            ready::fail(o.ready_fd, &e, EXIT_SETUP)
        }
    }
    // 5c. the spec's rlimits, user, capabilities (--restrict's if it has none),
    // no_new_privs, cwd; then the wait for `start` (which says `ok` on the
    // ready fd and closes it) and the startContainer hooks.
    if let Some(s) = &spec {
        if let Err(e) = user::process(s, o.restrict) {
            ready::fail(o.ready_fd, &e, EXIT_SETUP)
        }
        match start::run(s, o.ready_fd, inherited) {
            Ok(true) => o.ready_fd = None,
            Ok(false) => {}
            // With START_FIFO the ready fd is closed (`create` returned): the
            // error went to `start` through the fifo, and goes to stderr.
            Err(e) => ready::fail(if s.fifo >= 0 { None } else { o.ready_fd }, &e, EXIT_SETUP),
        }
    }

    // 5b. the filter, after no_new_privs, as the last step before CMD: init and
    // CMD both run under it (src/seccomp.rs says why). Without no_new_privs it
    // is already on (5a).
    if let Some(f) = &filter {
        if let Err(e) = seccomp::install(f) {
            ready::fail(o.ready_fd, &e, EXIT_SETUP)
        }
    }

    // 6. start CMD. Before that (not with --exec, which replaces init), init's own
    // argv stops showing the setup flags; CMD's argv moves, and `cmd` follows it.
    // No reference into argv (o's paths) is used past this point.
    if !o.exec {
        // SAFETY: argv is the initial stack's argv of argc strings, and o's
        // borrowed paths are not used after this.
        unsafe { title::set(argv as *mut *const c_char, argc, o.cmd) };
    }
    let duties = Duties { pgroup: o.pgroup, warn_reap: o.warn_reap, remap: o.remap, subreaper: o.subreaper };
    if o.pause {
        pid1::pause(o.ready_fd, duties)
    }
    let sh = [c"/bin/sh".as_ptr(), core::ptr::null()];
    let cmd = Cmd {
        // SAFETY: argv's tail from CMD on is itself a NULL-terminated argv.
        argv: o.cmd.map_or(sh.as_ptr(), |i| unsafe { argv.add(i) }),
        envp,
    };
    if o.exec {
        exec::exec_as_pid1(&cmd, inherited, o.ready_fd, o.preserve_fds)
    }
    pid1::supervise(&cmd, inherited, o.ready_fd, duties)
}

fn print_and_exit(text: &str) -> ! {
    let _ = sys::write_all(1, text.as_bytes());
    sys::exit(0)
}

/// Steps 1-4, only those whose flags were given. Any error ends init with 125.
fn setup<'a>(o: &Opts<'a>, spec: Option<Spec>, inherited: signals::Inherited) -> Result<(), Error<'a>> {
    if spec.is_some_and(|s| s.root_records) && o.rootfs.is_none() {
        let what: &[&[u8]] = &[b"--spec-fd: MOUNT, DEVICE, SYMLINK, ROOT_* and NO_PIVOT records"];
        return Err(Error::new(sys::Errno::EINVAL, what).hint("they need --rootfs"));
    }
    // 1. cgroups before anything else: nothing init starts may run outside the limits.
    for dir in o.cgroups() {
        join::cgroup(dir)?;
    }
    // 1b. the joined cgroups become the root of the container's own cgroup namespace.
    if o.cgroupns {
        join::cgroupns()?;
    }
    // 2. the network namespace (its file lives on the host: before pivot_root).
    if let Some(file) = o.netns {
        join::netns(file)?;
    }
    // 3. the root filesystem: private "/", overlay or bind, /dev, pivot_root, /proc, masks.
    if let Some(dir) = o.rootfs {
        let (dev, mask_proc, userns) = (o.dev, o.mask_proc, o.userns);
        let (lower, upper, work) = (o.lower, o.upper, o.work);
        let ready_fd = o.ready_fd;
        rootfs::enter(Rootfs { dir, lower, upper, work, dev, mask_proc, userns, spec, inherited, ready_fd })?;
    }
    // 3b. the spec's terminal: a pty of the container's devpts, after its
    // mounts and before read-only paths and masks (runc's setupConsole).
    if let Some(s) = spec {
        init::console::setup(&s)?;
    }
    // 4. the hostname, in the UTS namespace the caller created.
    if let Some(name) = o.hostname {
        msg::debug(&[b"sethostname ", name.to_bytes()]);
        sys::sethostname(name.to_bytes()).map_err(|e| {
            let err = Error::new(e, &[b"sethostname(", name.to_bytes(), b")"]);
            if e == sys::Errno::EINVAL {
                err.hint("at most 64 bytes")
            } else {
                err
            }
        })?;
    }
    // 4b. the spec's domainname, sysctls, read-only and masked paths.
    if let Some(s) = spec {
        s.after_pivot()?;
    }
    Ok(())
}
