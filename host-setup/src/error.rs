//! One error type for host-setup. Every failed system call names the step, the
//! path and the errno, e.g.
//! `mount overlay on /var/lib/host-setup/containers/red/merge: EINVAL: invalid argument`.
//! Messages are lower-case and carry no trailing period.

use std::fmt;

use nix::errno::Errno;

/// What went wrong, and therefore which exit code host-setup ends with.
#[derive(Debug)]
pub enum Error {
    /// The command line or a value in it is wrong. Nothing was changed. Exit 2.
    Usage(String),
    /// The host cannot do this (not root, a missing controller, binary or kernel
    /// feature, a name already in use). Nothing was changed. Exit 3.
    Precondition(String),
    /// A system call failed: `what` names the step and the path.  Exit 1.
    Sys { what: String, errno: Errno, hint: Option<String> },
    /// Anything else that stopped the work. Exit 1.
    Failed(String),
    /// The container's command could not be started (not found: 127, cannot be
    /// executed: 126), as a shell reports it. `shown`: init already printed it on
    /// the user's terminal.
    Command { code: i32, msg: String, shown: bool },
    /// SIGINT, SIGTERM or SIGHUP arrived during setup; what was made is undone.
    /// Exit 128+N.
    Interrupted(nix::sys::signal::Signal),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error::Sys { what: what.into(), errno, hint: None }
    }

    /// Adds advice after the errno (after any advice already there), e.g.
    /// `"/" is shared; make it private first`; for other errors, after the message.
    pub fn hint(self, text: impl Into<String>) -> Self {
        let text = text.into();
        let join = |m: String| format!("{m}; {text}");
        match self {
            Error::Sys { what, errno, hint } => Error::Sys {
                what,
                errno,
                hint: Some(match hint {
                    Some(h) => join(h),
                    None => text.clone(),
                }),
            },
            Error::Usage(m) => Error::Usage(join(m)),
            Error::Precondition(m) => Error::Precondition(join(m)),
            Error::Failed(m) => Error::Failed(join(m)),
            Error::Command { code, msg, shown } => Error::Command { code, msg: join(msg), shown },
            Error::Interrupted(sig) => Error::Interrupted(sig),
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The process exit code that stands for this error (see docs/usage.md, "Global options and exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Precondition(_) => 3,
            Error::Sys { .. } | Error::Failed(_) => 1,
            Error::Command { code, .. } => *code,
            Error::Interrupted(sig) => 128 + *sig as i32,
        }
    }

    /// Whether main should still print it (init may have done so already).
    pub fn needs_printing(&self) -> bool {
        !matches!(self, Error::Command { shown: true, .. })
    }
}

/// `usage!("...")`, `precondition!(...)`, `failed!(...)`: format an error in place.
#[macro_export]
macro_rules! usage { ($($t:tt)*) => { $crate::error::Error::Usage(format!($($t)*)) } }
#[macro_export]
macro_rules! precondition { ($($t:tt)*) => { $crate::error::Error::Precondition(format!($($t)*)) } }
#[macro_export]
macro_rules! failed { ($($t:tt)*) => { $crate::error::Error::Failed(format!($($t)*)) } }

/// "Permission denied" -> "permission denied": errno texts in our lower-case style.
pub fn errno_text(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An io::Error in our style: `ENOENT: no such file or directory`.
pub fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let errno = Errno::from_raw(n);
            format!("{errno:?}: {}", errno_text(errno))
        }
        None => e.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Precondition(m) | Error::Failed(m) => f.write_str(m),
            Error::Command { msg, .. } => f.write_str(msg),
            Error::Interrupted(sig) => write!(f, "interrupted by {sig}; what the setup had made is removed"),
            Error::Sys { what, errno, hint } => {
                write!(f, "{what}: {errno:?}: {}", errno_text(*errno))?;
                if let Some(h) = hint {
                    write!(f, "; {h}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Attach "what was being done" to a failed call:
/// `fs::create_dir(&p).sys(|| format!("mkdir {}", p.display()))?`
pub trait SysContext<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| match e.raw_os_error() {
            Some(n) => Error::sys(what(), Errno::from_raw(n)),
            None => Error::Failed(format!("{}: {e}", what())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_names_step_path_and_errno() {
        let e = Error::sys("pivot_root(/x/merge, put_old)", Errno::EINVAL).hint("\"/\" is shared");
        assert_eq!(e.to_string(), "pivot_root(/x/merge, put_old): EINVAL: invalid argument; \"/\" is shared");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let r: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        let e = r.sys(|| "open /nope".into()).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.to_string(), "open /nope: ENOENT: no such file or directory");
    }

    #[test]
    fn exit_codes_by_kind() {
        assert_eq!(usage!("bad name {}", "x").exit_code(), 2);
        assert_eq!(precondition!("not root").exit_code(), 3);
        assert_eq!(failed!("boom").exit_code(), 1);
    }
}
