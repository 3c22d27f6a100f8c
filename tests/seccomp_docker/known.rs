//! The differences tests/seccomp_docker.rs expects, each with its reason: a call
//! (ABI, name, argument 0, and the verdicts on both sides) that differs and is
//! not one of these fails the test, and so does an entry here that no longer
//! differs. "moby X" names a commit of moby's profile (github.com/moby/moby's
//! profiles/seccomp, now github.com/moby/profiles) and its date.

/// Calls of `abi` ("*": any) named in `names` (empty: any name), with argument 0
/// `arg0` if given, whose verdict is `ours` on our side and `theirs` on the other.
pub struct Known {
    pub abi: &'static str,
    pub names: &'static [&'static str],
    pub arg0: Option<u64>,
    pub ours: &'static str,
    pub theirs: &'static str,
    pub why: &'static str,
}

impl Known {
    pub fn matches(&self, abi: &str, name: &str, arg0: u64, ours: &str, theirs: &str) -> bool {
        (self.abi == "*" || self.abi == abi)
            && (self.names.is_empty() || self.names.contains(&name))
            && self.arg0.is_none_or(|a| a == arg0)
            && self.ours == ours
            && self.theirs == theirs
    }
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let names = if self.names.is_empty() { "any call".to_string() } else { self.names.join(" ") };
        let arg0 = self.arg0.map(|a| format!(" arg0 {a}")).unwrap_or_default();
        write!(f, "{} {names}{arg0}: ours {}, theirs {} ({})", self.abi, self.ours, self.theirs, self.why)
    }
}

fn k(
    abi: &'static str,
    names: &'static [&'static str],
    ours: &'static str,
    theirs: &'static str,
    why: &'static str,
) -> Known {
    Known { abi, names, arg0: None, ours, theirs, why }
}

const I386: &str = "we close the i386 entry (int 0x80) and x32 on purpose: a 64-bit container has no use for \
    them and they are a second table of every call (Docker's profile lists x86 and x32 as sub-architectures)";
const STUB_NEWER: &str = "newer than Docker 20.10's profile (its last x86_64 call is futex_waitv, 449): runc answers \
    ENOSYS above the last call a profile names (its ENOSYS stub)";
const OLD_LIBSECCOMP: &str = "Debian 12's libseccomp 2.5.4 does not know these names: runc skips them, so they fall \
    above the last call it knows and get its ENOSYS stub; with a libseccomp that knows them, moby's profile gives \
    what ours gives (host-setup's unit test default_equals_mobys_default_json checks that on the profile)";

fn socket(family: u64, why: &'static str) -> Known {
    Known { arg0: Some(family), ..k("x86_64", &["socket"], "EPERM", "allowed", why) }
}

/// The 32-bit ABIs, the same on every comparison.
fn abis32() -> Vec<Known> {
    vec![
        k("i386", &[], "EPERM", "allowed", I386),
        k("i386", &[], "EPERM", "ENOSYS", I386),
        k("x32", &[], "EPERM", "allowed", I386),
        k("x32", &["clone3"], "EPERM", "ENOSYS", I386),
    ]
}

/// Ours against Docker 20.10's own default profile under runc.
pub fn ours_vs_docker() -> Vec<Known> {
    let mut v = abis32();
    v.extend([
        k("x86_64", &["io_uring_setup", "io_uring_enter", "io_uring_register"], "EPERM", "allowed",
            "moby 0e2acd4 (2023-11-02): \"block io_uring_* syscalls in default profile\""),
        socket(40, "AF_VSOCK: moby 0597e05 (2022-12-01): \"block socket calls to AF_VSOCK in default profile\""),
        socket(38, "AF_ALG: moby dec315c (2026-04-30): \"Block AF_ALG in default socket policy\""),
        k("x86_64", &["name_to_handle_at"], "allowed", "EPERM", "moby ea2916d (2023-06-28): \"add name_to_handle_at to allowlist\""),
        k("x86_64", &["pkey_alloc", "pkey_free", "pkey_mprotect"], "allowed", "EPERM",
            "moby a3edcb8 (2022-04-15): \"add syscalls related to PKU in default policy\""),
        k("x86_64", &["process_vm_readv", "process_vm_writev"], "allowed", "EPERM",
            "moby dca1578 (2021-03-04, kernel 4.8 and later; not in the 20.10 branch): \"Enable process_vm_readv and process_vm_writev\""),
        k("x86_64", &["cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue",
            "statmount", "listmount", "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat"],
            "allowed", "ENOSYS", STUB_NEWER),
        k("x86_64", &["set_mempolicy_home_node", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"],
            "EPERM", "ENOSYS", "moby's current profile allows these only with CAP_SYS_NICE / CAP_SYS_ADMIN, which \
            the container has not (EPERM, as ours); Docker 20.10 does not name them and they are newer than its \
            last call: runc's ENOSYS stub"),
    ]);
    v
}

/// Ours against moby's current default.json (the pinned copy), as Docker 20.10's
/// runc and libseccomp compile it.
pub fn ours_vs_moby() -> Vec<Known> {
    let mut v = abis32();
    v.extend([
        k(
            "x86_64",
            &["statmount", "listmount", "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat"],
            "allowed",
            "ENOSYS",
            OLD_LIBSECCOMP,
        ),
        k("x86_64", &["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"], "EPERM", "ENOSYS", OLD_LIBSECCOMP),
    ]);
    v
}

/// hsrun against runc, both given Docker 20.10's default profile by dockerd.
pub fn hsrun_vs_runc() -> Vec<Known> {
    abis32()
}
