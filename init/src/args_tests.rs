//! Unit tests of src/args.rs (a file of their own: the parser stays short).

use super::*;
use crate::help::HELP;
use std::ffi::CString;

/// Parses a whitespace-free command line given as a list (argv[0] = "init").
fn with<R>(args: &[&str], f: impl FnOnce(Result<Parsed, Usage>) -> R) -> R {
    let owned: Vec<CString> =
        std::iter::once("init").chain(args.iter().copied()).map(|a| CString::new(a).unwrap()).collect();
    let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
    f(parse(refs.iter().copied()))
}

fn opts(args: &[&str]) -> Opts<'static> {
    // Leak: the borrowed strings must outlive the returned Opts in tests.
    let owned: &'static [CString] =
        Vec::leak(std::iter::once("init").chain(args.iter().copied()).map(|a| CString::new(a).unwrap()).collect());
    match parse(owned.iter().map(|c| c.as_c_str())) {
        Ok(Parsed::Run(o)) => o,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn err(args: &[&str]) -> String {
    with(args, |r| match r {
        Err(u) => format!("{}{}", u.msg, String::from_utf8_lossy(u.arg)),
        Ok(p) => panic!("{args:?} parsed: {p:?}"),
    })
}

fn s(c: Option<&CStr>) -> Option<&str> {
    c.map(|c| c.to_str().unwrap())
}

#[test]
fn no_arguments_is_the_default_shell() {
    let o = opts(&[]);
    assert_eq!(o, Opts::default());
    assert_eq!(o.cmd, None);
}

#[test]
fn every_flag_with_separate_values() {
    let o = opts(&[
        "--cgroup",
        "/sys/fs/cgroup/cpu/red",
        "--cgroup",
        "/sys/fs/cgroup/memory/red",
        "--netns",
        "/run/netns/RED",
        "--rootfs",
        "/c/merge",
        "--lower",
        "/l/tools:/l/myroot",
        "--upper",
        "/c/upper",
        "--work",
        "/c/work",
        "--hostname",
        "RED",
        "--ready-fd",
        "7",
        "-g",
        "/bin/sh",
        "-c",
        "echo hi",
    ]);
    let cgroups: Vec<_> = o.cgroups().map(|c| c.to_str().unwrap()).collect();
    assert_eq!(cgroups, ["/sys/fs/cgroup/cpu/red", "/sys/fs/cgroup/memory/red"]);
    assert_eq!(s(o.netns), Some("/run/netns/RED"));
    assert_eq!(s(o.rootfs), Some("/c/merge"));
    assert_eq!(s(o.lower), Some("/l/tools:/l/myroot"));
    assert_eq!(s(o.upper), Some("/c/upper"));
    assert_eq!(s(o.work), Some("/c/work"));
    assert_eq!(s(o.hostname), Some("RED"));
    assert_eq!(o.ready_fd, Some(7));
    assert!(o.pgroup && !o.pause && !o.exec);
    assert_eq!(o.cmd, Some(20)); // argv[20] = "/bin/sh"
}

#[test]
fn values_after_equals_sign() {
    let o = opts(&["--rootfs=/c/m", "--hostname=a=b", "--ready-fd=3", "--cgroup=/x", "--pgroup", "true"]);
    assert_eq!(o.seccomp_fd, None);
    assert_eq!(opts(&["--seccomp-fd=5", "--ready-fd", "4"]).seccomp_fd, Some(5));
    assert_eq!(opts(&["--seccomp-fd", "6", "--ready-fd=4"]).ready_fd, Some(4));
    assert_eq!(opts(&["--spec-fd", "7", "--ready-fd=4"]).spec_fd, Some(7));
    assert_eq!(opts(&["--spec-fd=8"]).spec_fd, Some(8));
    assert_eq!(o.spec_fd, None);
    assert_eq!(s(o.rootfs), Some("/c/m"));
    assert_eq!(s(o.hostname), Some("a=b"));
    assert_eq!(o.ready_fd, Some(3));
    assert_eq!(o.cgroups().count(), 1);
    assert!(o.pgroup);
    assert_eq!(o.cmd, Some(6));
    // An empty value is a value (the kernel will judge it).
    assert_eq!(s(opts(&["--hostname="]).hostname), Some(""));
}

#[test]
fn flags_pause_exec() {
    assert!(opts(&["--pause"]).pause);
    let o = opts(&["--exec", "/bin/sh"]);
    assert!(o.exec);
    assert_eq!(o.cmd, Some(2));
    assert!(opts(&["-g"]).pgroup);
}

#[test]
fn containment_flags() {
    let o = opts(&["--rootfs", "/r", "--dev", "--mask-proc", "--cgroupns", "--restrict", "--", "sh"]);
    assert!(o.dev && o.mask_proc && o.cgroupns && o.restrict);
    assert_eq!(o.cmd, Some(8));
    let o = opts(&["--restrict", "--exec", "--", "id"]);
    assert!(o.restrict && o.exec && !o.dev && !o.cgroupns);
    assert_eq!(o.cmd, Some(4));
    assert!(opts(&["--cgroupns", "--pause"]).cgroupns);
    let d = opts(&["--rootfs", "/r", "sh"]);
    assert!(!d.dev && !d.mask_proc && !d.cgroupns && !d.restrict, "all off by default");
    assert_eq!(err(&["--dev"]), "--dev needs --rootfs (the new root to make /dev in)");
    assert_eq!(err(&["--mask-proc", "--dev"]), "--dev needs --rootfs (the new root to make /dev in)");
    assert_eq!(err(&["--mask-proc"]), "--mask-proc needs --rootfs (it masks the new /proc)");
    assert_eq!(err(&["--rootfs", "/r", "--mask-proc"]), "--mask-proc needs --dev (it binds the new /dev/null)");
    assert_eq!(err(&["--restrict=1"]), "option takes no value: --restrict=1");
    // After CMD they are CMD's.
    assert!(!opts(&["sh", "--restrict"]).restrict);
}

#[test]
fn double_dash_ends_options() {
    let o = opts(&["--", "--help"]);
    assert_eq!(o.cmd, Some(2));
    let o = opts(&["-g", "--", "-weird-cmd", "--rootfs"]);
    assert_eq!(o.cmd, Some(3));
    assert_eq!(o.rootfs, None);
    // "--" with nothing after it: the default CMD.
    assert_eq!(opts(&["--"]).cmd, None);
}

#[test]
fn first_non_option_is_cmd_and_later_flags_are_its_own() {
    let o = opts(&["sh", "--pause", "-g"]);
    assert_eq!(o.cmd, Some(1));
    assert!(!o.pause && !o.pgroup);
}

#[test]
fn help_and_version() {
    let is = |args: &[&str], want: Parsed<'static>| with(args, |r| assert_eq!(r, Ok(want), "{args:?}"));
    is(&["-h"], Parsed::Help);
    is(&["--help", "--bogus"], Parsed::Help);
    is(&["-V"], Parsed::Version);
    is(&["--version"], Parsed::Version);
    is(&["-l"], Parsed::License);
    is(&["-L"], Parsed::License);
    is(&["-vh"], Parsed::Help);
    assert!(HELP.contains("--ready-fd N") && HELP.contains("127  CMD not found"));
    for flag in [
        "--restrict",
        "--dev",
        "--mask-proc",
        "--cgroupns",
        "-s",
        "-p SIGNAL",
        "-v",
        "-w",
        "-g, --pgroup",
        "-e CODE",
        "-P, --pause",
        "-l, -L",
        "-h, --help",
        "-V, --version",
    ] {
        assert!(HELP.contains(&format!("\n  {flag} ")), "{flag} in --help");
    }
    for var in ["TINI_SUBREAPER", "TINI_KILL_PROCESS_GROUP", "TINI_VERBOSITY"] {
        assert!(HELP.contains(&format!("\n  {var}")), "{var} in --help");
    }
    // Every long option of the contract is documented.
    for flag in flag::WITH_VALUE.iter().chain(&[flag::PAUSE, flag::PGROUP, flag::EXEC, flag::CGROUPNS, flag::DEV]) {
        assert!(HELP.contains(&format!("{flag} ")), "{flag} in --help");
    }
    for (n, l) in HELP.lines().enumerate() {
        assert!(l.chars().count() <= 80, "help line {} is over 80 columns: {l:?}", n + 1);
    }
}

#[test]
fn usage_errors() {
    assert_eq!(err(&["--bogus"]), "unknown option: --bogus");
    assert_eq!(err(&["-x", "sh"]), "unknown option: -x");
    assert_eq!(err(&["-sgx"]), "unknown option: -x");
    assert_eq!(err(&["-"]), "unknown option: -");
    assert_eq!(err(&["--bogus=1"]), "unknown option: --bogus=1");
    assert_eq!(err(&["--rootfs"]), "option needs a value: --rootfs");
    assert_eq!(err(&["--pause=yes"]), "option takes no value: --pause=yes");
    assert_eq!(err(&["--ready-fd", "x"]), "--ready-fd needs a number >= 3, not: x");
    assert_eq!(err(&["--ready-fd", "2"]), "--ready-fd needs a number >= 3, not: 2");
    assert_eq!(err(&["--ready-fd", "9999999999"]), "--ready-fd needs a number >= 3, not: 9999999999");
    assert_eq!(err(&["--seccomp-fd", "x"]), "--seccomp-fd needs a number >= 3, not: x");
    assert_eq!(err(&["--seccomp-fd=1"]), "--seccomp-fd needs a number >= 3, not: 1");
    assert_eq!(err(&["--spec-fd", "2"]), "--spec-fd needs a number >= 3, not: 2");
    assert_eq!(err(&["--upper", "/u", "--rootfs", "/r", "--lower", "/l"]), "--upper and --work go together");
    assert_eq!(err(&["--work", "/w", "--upper", "/u", "--rootfs", "/r"]), "--upper and --work need --lower");
    assert_eq!(err(&["--lower", "/l"]), "--lower needs --rootfs (where to mount the overlay)");
    assert_eq!(err(&["--pause", "--exec"]), "--pause and --exec exclude each other");
    assert_eq!(err(&["--pause", "sleep", "1"]), "--pause takes no CMD");
    assert_eq!(err(&["--pause", "--", "sleep"]), "--pause takes no CMD");
    let many: Vec<&str> = std::iter::repeat(["--cgroup", "/c"]).take(MAX_CGROUPS + 1).flatten().collect();
    assert_eq!(err(&many), "too many --cgroup (at most 16)");
    let enough: Vec<&str> = std::iter::repeat(["--cgroup", "/c"]).take(MAX_CGROUPS).flatten().collect();
    assert_eq!(opts(&enough).cgroups().count(), MAX_CGROUPS);
}

#[test]
fn fd_numbers() {
    assert_eq!(parse_fd(b"3"), Some(3));
    assert_eq!(parse_fd(b"0042"), Some(42));
    assert_eq!(parse_fd(b"999999999"), Some(999_999_999));
    assert_eq!(parse_fd(b""), None);
    assert_eq!(parse_fd(b"-3"), None);
    assert_eq!(parse_fd(b"+3"), None);
    assert_eq!(parse_fd(b"0"), None);
}

// ---- tini's and catatonit's options ------------------------------------------------

#[test]
fn tini_short_options() {
    let o = opts(&["-s", "-p", "SIGKILL", "-v", "-w", "-g", "-e", "143", "--", "java"]);
    assert!(o.subreaper && o.warn_reap && o.pgroup);
    assert_eq!((o.pdeathsig, o.verbose, o.verbosity()), (Some(9), 1, 2));
    assert!(o.remap.contains(143) && !o.remap.contains(0) && !o.remap.contains(142));
    assert_eq!(o.cmd, Some(10));
    // Defaults: tini's verbosity 1, nothing else.
    let d = opts(&["sh"]);
    assert!(!d.subreaper && !d.warn_reap && !d.pgroup && d.pdeathsig.is_none() && d.remap.is_empty());
    assert_eq!(d.verbosity(), 1);
}

#[test]
fn short_options_combine_as_with_getopt() {
    let o = opts(&["-vvv", "-sgw", "-e143", "-e", "0", "-pSIGTERM", "sh"]);
    assert_eq!((o.verbose, o.verbosity()), (3, 4));
    assert!(o.subreaper && o.pgroup && o.warn_reap);
    assert!(o.remap.contains(143) && o.remap.contains(0));
    assert_eq!(o.pdeathsig, Some(15));
    assert_eq!(o.cmd, Some(7));
    // A value-taking option ends its cluster; the rest of the word is the value.
    let o = opts(&["-se1", "sh"]);
    assert!(o.subreaper && o.remap.contains(1));
    let o = opts(&["-wp", "KILL", "sh"]);
    assert!(o.warn_reap);
    assert_eq!(o.pdeathsig, Some(9));
    // catatonit's pause.
    assert!(opts(&["-P"]).pause);
    assert!(opts(&["-gP"]).pause && opts(&["-gP"]).pgroup);
}

#[test]
fn double_dash_is_optional_as_with_posixly_correct() {
    // tini's own test: 255 times -e, then CMD without "--".
    let mut args: Vec<String> = (0..=255).filter(|&c| c != 7).flat_map(|c| ["-e".to_string(), c.to_string()]).collect();
    args.extend(["sh", "-c", "exit 7", "-e", "7"].map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = opts(&argv);
    assert_eq!(o.cmd, Some(511));
    assert!((0..=255).all(|c| o.remap.contains(c) == (c != 7)), "CMD's own -e 7 is not init's");
    // Options after CMD are CMD's: here -s goes to sleep, not to init.
    let o = opts(&["sleep", "-s"]);
    assert!(!o.subreaper);
}

#[test]
fn tini_values_are_checked() {
    assert_eq!(err(&["-e"]), "option needs a value: -e");
    assert_eq!(err(&["-p"]), "option needs a value: -p");
    assert_eq!(err(&["-e", "256"]), "not a valid option for -e (an exit code from 0 to 255): 256");
    assert_eq!(err(&["-e", "-1"]), "not a valid option for -e (an exit code from 0 to 255): -1");
    assert_eq!(err(&["-e", "x"]), "not a valid option for -e (an exit code from 0 to 255): x");
    assert_eq!(err(&["-e", ""]), "not a valid option for -e (an exit code from 0 to 255): ");
    assert_eq!(err(&["-p", "SIGNOPE"]), "not a valid option for -p (a signal: SIGKILL, KILL or 9): SIGNOPE");
    assert_eq!(err(&["-p", "0"]), "not a valid option for -p (a signal: SIGKILL, KILL or 9): 0");
    assert_eq!(
        err(&["--exec", "-e", "143", "sh"]),
        "-e does nothing with --exec (no init is left to change the exit code)"
    );
    assert_eq!(parse_exit_code(b"255"), Some(255));
    assert_eq!(parse_exit_code(b"000"), Some(0));
    assert_eq!(parse_exit_code(b"0255"), None);
}

#[test]
fn exit_code_set() {
    let mut s = ExitCodes::default();
    assert!(s.is_empty());
    for c in [0, 63, 64, 127, 128, 255] {
        s.add(c);
    }
    for c in -1..=256 {
        assert_eq!(s.contains(c), [0, 63, 64, 127, 128, 255].contains(&c), "{c}");
    }
}

#[test]
fn tini_environment() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &[u8]| vars.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, v)| v.as_bytes())
    };
    let mut o = opts(&["-vv", "sh"]);
    apply_env(&mut o, env(&[]));
    assert!(!o.subreaper && !o.pgroup);
    assert_eq!(o.verbosity(), 3);
    // Set at all, even empty or "0", counts (tini tests getenv() != NULL).
    apply_env(&mut o, env(&[("TINI_SUBREAPER", ""), ("TINI_KILL_PROCESS_GROUP", "0")]));
    assert!(o.subreaper && o.pgroup);
    // TINI_VERBOSITY replaces the -v count.
    for (v, want) in [("0", 0), ("2", 2), ("3x", 3), ("x", 0), ("", 0), ("999", 255)] {
        let mut o = opts(&["-vv", "sh"]);
        let vars: &'static [(&str, &str)] = Vec::leak(vec![("TINI_VERBOSITY", v)]);
        apply_env(&mut o, env(vars));
        assert_eq!(o.verbosity(), want, "TINI_VERBOSITY={v}");
    }
}

/// The contract: every long option in src/flag.rs is one the parser knows, so
/// an argv host-setup builds from them parses back to what it meant.
#[test]
fn contract_flags_round_trip() {
    let o = opts(&[
        flag::CGROUP,
        "/c1",
        flag::CGROUP,
        "/c2",
        flag::NETNS,
        "/n",
        flag::LOWER,
        "/l",
        flag::UPPER,
        "/u",
        flag::WORK,
        "/w",
        flag::ROOTFS,
        "/r",
        flag::HOSTNAME,
        "h",
        flag::READY_FD,
        "3",
        flag::CGROUPNS,
        flag::DEV,
        flag::MASK_PROC,
        flag::RESTRICT,
        flag::PGROUP,
        flag::END,
        "cmd",
    ]);
    assert_eq!(o.cgroups().map(|c| c.to_str().unwrap()).collect::<Vec<_>>(), ["/c1", "/c2"]);
    let got = [o.netns, o.lower, o.upper, o.work, o.rootfs, o.hostname].map(s);
    assert_eq!(got, [Some("/n"), Some("/l"), Some("/u"), Some("/w"), Some("/r"), Some("h")]);
    assert_eq!(o.ready_fd, Some(3));
    assert!(o.cgroupns && o.dev && o.mask_proc && o.restrict && o.pgroup);
    assert_eq!(o.cmd, Some(25));
    assert!(opts(&[flag::PAUSE]).pause);
    assert!(opts(&[flag::EXEC, "x"]).exec);
    with(&[flag::HELP], |r| assert_eq!(r, Ok(Parsed::Help)));
    with(&[flag::VERSION], |r| assert_eq!(r, Ok(Parsed::Version)));
    for f in flag::WITH_VALUE {
        assert!(f.starts_with("--") && f.len() > 2, "{f}");
    }
}
