//! `hsrun features`: the runtime-spec features document (features.md): what this
//! runtime does with a config.json, so that an engine can ask before it asks for
//! it. Every entry is what hsrun does, not what the spec allows: the seccomp
//! lists are what host-setup's compiler (seccomp/docker.rs) reads, the
//! capabilities those this kernel knows, cgroup v1 and v2, the systemd driver (v2).

use serde_json::{json, Value};

use super::cli::Global;
use super::names;

/// The versions of config.json we read (oci-spec's runtime types).
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = super::config::OCI_VERSION;

/// Every hook kind is run (prestart, createRuntime and createContainer on the
/// host, startContainer by init in the container, poststart, poststop).
pub const HOOKS: [&str; 6] =
    ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

/// The mount options config.json's mounts may carry: mounts.rs's flag and
/// propagation words (anything else goes to the filesystem as data), sorted.
pub fn mount_options() -> Vec<&'static str> {
    let mut o: Vec<&str> =
        super::mounts::FLAGS.iter().map(|f| f.0).chain(super::mounts::PROPAGATION.iter().map(|p| p.0)).collect();
    o.sort_unstable();
    o
}

/// Every type to_spec.rs takes, new or by path (the user namespace's maps from
/// linux.uidMappings/gidMappings: oci/userns.rs); there is no time namespace.
/// Idmapped mounts stay refused (mountExtensions, mounts.rs).
const NAMESPACES: [&str; 7] = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];

/// The actions, operators and architectures seccomp/docker.rs compiles.
const SECCOMP_ACTIONS: [&str; 8] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
const SECCOMP_OPERATORS: [&str; 7] =
    ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"];
const SECCOMP_ARCHS: [&str; 2] = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"];
/// seccomp(2) filter flags: known, none applied (the filter is installed with none).
const SECCOMP_KNOWN_FLAGS: [&str; 3] =
    ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"];

/// The document, as `hsrun features` prints it.
pub fn document() -> Value {
    let caps: Vec<String> =
        names::CAPS.iter().take(names::last_cap() as usize + 1).map(|c| format!("CAP_{c}")).collect();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": SECCOMP_KNOWN_FLAGS,
                "supportedFlags": [],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
        "annotations": {
            "io.github.host-setup.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// `hsrun features` (no arguments).
pub fn main(_: &Global, args: &[String]) -> crate::error::Result<i32> {
    if let Some(a) = args.first() {
        return Err(crate::usage!("features: takes no arguments (got {a:?})"));
    }
    let text = serde_json::to_string_pretty(&document()).map_err(|e| crate::failed!("features: {e}"))?;
    println!("{text}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_the_spec_type() {
        let f: oci_spec::runtime::Features = serde_json::from_value(document()).unwrap();
        assert_eq!(f.oci_version_max(), OCI_VERSION_MAX);
        let linux = f.linux().as_ref().unwrap();
        assert!(linux.capabilities().as_ref().unwrap().contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 7);
        assert!(linux.namespaces().as_ref().unwrap().contains(&oci_spec::runtime::LinuxNamespaceType::User));
        assert_eq!(f.hooks().as_ref().unwrap().len(), 6);
        let o = mount_options();
        assert!(o.contains(&"rbind") && o.contains(&"rslave") && o.contains(&"nosuid"), "{o:?}");
        assert!(!o.contains(&"idmap"), "refused by mounts.rs");
    }
}
