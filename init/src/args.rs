//! Command line: `init [OPTIONS] [--] [CMD [ARG...]]`, and tini's environment.
//!
//! Options come first; the first non-option argument, or everything after `--`,
//! is CMD (tini's behaviour under POSIXLY_CORRECT, so `--` is optional). Long
//! options (the host-setup contract, named once in src/flag.rs) take values as
//! `--opt VALUE` or `--opt=VALUE`; short ones (tini's and catatonit's) combine
//! as getopt's do: `-vvv`, `-sg`, `-e 143`, `-e143`, `-pSIGKILL`. Nothing is
//! copied: every value borrows the NUL-terminated argv string, and CMD is an
//! index into argv, whose tail is already the NULL-terminated argv execve wants.

use core::ffi::CStr;

pub use crate::flag;
use crate::signals;

/// How many `--cgroup` may be given (a cgroup v1 host has about ten hierarchies).
pub const MAX_CGROUPS: usize = 16;

/// A set of exit codes (0-255): those `-e` turns into 0.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitCodes([u64; 4]);

impl ExitCodes {
    pub fn add(&mut self, code: u8) {
        self.0[code as usize / 64] |= 1 << (code % 64);
    }

    pub fn contains(&self, code: i32) -> bool {
        (0..=255).contains(&code) && self.0[code as usize / 64] & (1 << (code % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
}

/// What the command line (and tini's environment) asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Opts<'a> {
    pub cgroups: [Option<&'a CStr>; MAX_CGROUPS],
    pub netns: Option<&'a CStr>,
    pub rootfs: Option<&'a CStr>,
    pub lower: Option<&'a CStr>,
    pub upper: Option<&'a CStr>,
    pub work: Option<&'a CStr>,
    pub hostname: Option<&'a CStr>,
    pub ready_fd: Option<i32>,
    /// --seccomp-fd: where the seccomp filter is read from.
    pub seccomp_fd: Option<i32>,
    /// --spec-fd: where the spec's records are read from (src/specrun.rs).
    pub spec_fd: Option<i32>,
    /// --preserve-fds N: fds 3..3+N stay open for CMD.
    pub preserve_fds: i32,
    pub pause: bool,
    pub pgroup: bool,
    pub exec: bool,
    pub cgroupns: bool,
    pub dev: bool,
    pub mask_proc: bool,
    pub restrict: bool,
    /// --userns: layers from fds, userxattr, bound device nodes (src/userns.rs).
    pub userns: bool,
    /// -s or TINI_SUBREAPER: a failure to become a child subreaper is an error.
    pub subreaper: bool,
    /// -p: the parent-death signal.
    pub pdeathsig: Option<i32>,
    /// How many -v.
    pub verbose: u8,
    /// TINI_VERBOSITY, which replaces the -v count (as in tini).
    pub verbosity_env: Option<u8>,
    /// -w: a warning line per reaped zombie.
    pub warn_reap: bool,
    /// -e: CMD's exit codes reported as 0.
    pub remap: ExitCodes,
    /// Index in argv of CMD; `None`: the default `/bin/sh` (or nothing with --pause).
    pub cmd: Option<usize>,
}

impl<'a> Opts<'a> {
    pub fn cgroups(&self) -> impl Iterator<Item = &'a CStr> + '_ {
        self.cgroups.iter().map_while(|c| *c)
    }

    /// The verbosity level (src/msg.rs): tini's default 1, one more per -v,
    /// or TINI_VERBOSITY.
    pub fn verbosity(&self) -> u8 {
        self.verbosity_env.unwrap_or(self.verbose.saturating_add(1))
    }
}

// Run is large (16 cgroup slots), but there is one, on the stack, and no allocator to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    Run(Opts<'a>),
    Help,
    Version,
    License,
}

/// A usage error: `msg` followed by the offending argument (may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage<'a> {
    pub msg: &'static str,
    pub arg: &'a [u8],
}

fn usage<'a, T>(msg: &'static str, arg: &'a [u8]) -> Result<T, Usage<'a>> {
    Err(Usage { msg, arg })
}

/// Decimal digits only, at most `max_len` of them.
fn decimal(s: &[u8], max_len: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_len || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, d| n * 10 + (d - b'0') as u32))
}

/// `--ready-fd` value: a decimal fd number of at least 3 (0-2 belong to CMD).
pub fn parse_fd(s: &[u8]) -> Option<i32> {
    decimal(s, 9).map(|n| n as i32).filter(|&n| n >= 3)
}

/// `-e` value: an exit code from 0 to 255.
pub fn parse_exit_code(s: &[u8]) -> Option<u8> {
    decimal(s, 3).and_then(|n| u8::try_from(n).ok())
}

/// The option's name as text: every name in src/flag.rs is ASCII.
fn ascii(name: &[u8]) -> Option<&str> {
    // SAFETY: ASCII bytes are valid UTF-8 (and from_utf8 would cost code size).
    name.is_ascii().then(|| unsafe { core::str::from_utf8_unchecked(name) })
}

/// Parses argv (argv[0] included, and skipped).
pub fn parse<'a>(argv: impl IntoIterator<Item = &'a CStr>) -> Result<Parsed<'a>, Usage<'a>> {
    let mut o = Opts::default();
    let mut ncgroups = 0;
    let mut it = argv.into_iter().enumerate().skip(1);
    while let Some((i, arg)) = it.next() {
        let bytes = arg.to_bytes();
        if bytes == flag::END.as_bytes() {
            o.cmd = it.next().map(|(i, _)| i);
            break;
        }
        if bytes.first() != Some(&b'-') {
            o.cmd = Some(i);
            break;
        }

        if !bytes.starts_with(b"--") {
            // Short options, getopt style: a cluster, the last may take a value.
            if bytes.len() == 1 {
                return usage("unknown option: -", b"");
            }
            let mut j = 1;
            while j < bytes.len() {
                let c = bytes[j];
                j += 1;
                match c {
                    b'h' => return Ok(Parsed::Help),
                    b'V' => return Ok(Parsed::Version),
                    b'l' | b'L' => return Ok(Parsed::License),
                    b'g' => o.pgroup = true,
                    b'P' => o.pause = true,
                    b's' => o.subreaper = true,
                    b'w' => o.warn_reap = true,
                    b'v' => o.verbose = o.verbose.saturating_add(1),
                    b'p' | b'e' => {
                        // The value: the rest of this argument, or the next one.
                        let value = if j < bytes.len() {
                            let v = &bytes[j..];
                            j = bytes.len();
                            v
                        } else {
                            match it.next() {
                                Some((_, v)) => v.to_bytes(),
                                None => return usage("option needs a value: -", &bytes[j - 1..j]),
                            }
                        };
                        if c == b'p' {
                            match signals::by_name(value) {
                                Some(sig) => o.pdeathsig = Some(sig),
                                None => {
                                    return usage("not a valid option for -p (a signal: SIGKILL, KILL or 9): ", value)
                                }
                            }
                        } else {
                            match parse_exit_code(value) {
                                Some(code) => o.remap.add(code),
                                None => {
                                    return usage("not a valid option for -e (an exit code from 0 to 255): ", value)
                                }
                            }
                        }
                    }
                    _ => return usage("unknown option: -", &bytes[j - 1..j]),
                }
            }
            continue;
        }

        // "--name=value" or "--name" "value": `inline` is the NUL-terminated value.
        let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let with_nul = arg.to_bytes_with_nul();
                (&bytes[..eq], CStr::from_bytes_with_nul(&with_nul[eq + 1..]).ok())
            }
            None => (bytes, None),
        };
        let Some(name) = ascii(name) else { return usage("unknown option: ", bytes) };
        if flag::WITH_VALUE.contains(&name) {
            let value = match inline.or_else(|| it.next().map(|(_, v)| v)) {
                Some(v) => v,
                None => return usage("option needs a value: ", bytes),
            };
            let slot = match name {
                flag::CGROUP => {
                    if ncgroups == MAX_CGROUPS {
                        return usage("too many --cgroup (at most 16)", b"");
                    }
                    ncgroups += 1;
                    &mut o.cgroups[ncgroups - 1]
                }
                flag::NETNS => &mut o.netns,
                flag::ROOTFS => &mut o.rootfs,
                flag::LOWER => &mut o.lower,
                flag::UPPER => &mut o.upper,
                flag::WORK => &mut o.work,
                flag::HOSTNAME => &mut o.hostname,
                flag::PRESERVE_FDS => match decimal(value.to_bytes(), 6) {
                    Some(n) => {
                        o.preserve_fds = n as i32;
                        continue;
                    }
                    None => return usage("--preserve-fds needs a number, not: ", value.to_bytes()),
                },
                // flag::READY_FD, flag::SECCOMP_FD or flag::SPEC_FD, the fd options
                fd_flag => match parse_fd(value.to_bytes()) {
                    Some(fd) => {
                        *(match fd_flag {
                            flag::SECCOMP_FD => &mut o.seccomp_fd,
                            flag::SPEC_FD => &mut o.spec_fd,
                            _ => &mut o.ready_fd,
                        }) = Some(fd);
                        continue;
                    }
                    None if fd_flag == flag::SECCOMP_FD => {
                        return usage("--seccomp-fd needs a number >= 3, not: ", value.to_bytes())
                    }
                    None if fd_flag == flag::SPEC_FD => {
                        return usage("--spec-fd needs a number >= 3, not: ", value.to_bytes())
                    }
                    None => return usage("--ready-fd needs a number >= 3, not: ", value.to_bytes()),
                },
            };
            *slot = Some(value);
            continue;
        }
        let set = match name {
            flag::HELP => return Ok(Parsed::Help),
            flag::VERSION => return Ok(Parsed::Version),
            flag::PAUSE => &mut o.pause,
            flag::PGROUP => &mut o.pgroup,
            flag::EXEC => &mut o.exec,
            flag::CGROUPNS => &mut o.cgroupns,
            flag::DEV => &mut o.dev,
            flag::MASK_PROC => &mut o.mask_proc,
            flag::RESTRICT => &mut o.restrict,
            flag::USERNS => &mut o.userns,
            _ => return usage("unknown option: ", bytes),
        };
        if inline.is_some() {
            return usage("option takes no value: ", bytes);
        }
        *set = true;
    }
    check(&o)?;
    Ok(Parsed::Run(o))
}

/// tini's environment variables, read through `getenv`: TINI_SUBREAPER and
/// TINI_KILL_PROCESS_GROUP count when set at all (even empty, even "0"), as in
/// tini; TINI_VERBOSITY is a number (leading digits; none is 0).
pub fn apply_env<'e>(o: &mut Opts, getenv: impl Fn(&[u8]) -> Option<&'e [u8]>) {
    if getenv(b"TINI_SUBREAPER").is_some() {
        o.subreaper = true;
    }
    if getenv(b"TINI_KILL_PROCESS_GROUP").is_some() {
        o.pgroup = true;
    }
    if let Some(v) = getenv(b"TINI_VERBOSITY") {
        let digits = v.iter().take_while(|b| b.is_ascii_digit());
        o.verbosity_env = Some(digits.fold(0u8, |n, d| n.saturating_mul(10).saturating_add(d - b'0')));
    }
}

/// Combinations that make no sense are usage errors, caught before any setup.
fn check<'a>(o: &Opts<'a>) -> Result<(), Usage<'a>> {
    if o.upper.is_some() != o.work.is_some() {
        return usage("--upper and --work go together", b"");
    }
    if o.upper.is_some() && o.lower.is_none() {
        return usage("--upper and --work need --lower", b"");
    }
    if o.lower.is_some() && o.rootfs.is_none() {
        return usage("--lower needs --rootfs (where to mount the overlay)", b"");
    }
    if o.dev && o.rootfs.is_none() {
        return usage("--dev needs --rootfs (the new root to make /dev in)", b"");
    }
    if o.mask_proc && o.rootfs.is_none() {
        return usage("--mask-proc needs --rootfs (it masks the new /proc)", b"");
    }
    if o.mask_proc && !o.dev {
        return usage("--mask-proc needs --dev (it binds the new /dev/null)", b"");
    }
    if o.userns && o.lower.is_none() {
        return usage("--userns needs --lower (the mount points of its layer fds)", b"");
    }
    if o.pause && o.exec {
        return usage("--pause and --exec exclude each other", b"");
    }
    if o.pause && o.cmd.is_some() {
        return usage("--pause takes no CMD", b"");
    }
    if o.exec && !o.remap.is_empty() {
        return usage("-e does nothing with --exec (no init is left to change the exit code)", b"");
    }
    Ok(())
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
