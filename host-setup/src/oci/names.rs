//! The names config.json uses for capabilities and rlimits, as the kernel's numbers.

/// CAP_* in the kernel's order (include/uapi/linux/capability.h).
pub const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `CAP_SYS_ADMIN` (or `SYS_ADMIN`) -> 21.
pub fn cap(name: &str) -> Option<u32> {
    number(&CAPS, "CAP_", name)
}

/// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPS.len() as u32 - 1)
}

/// RLIMIT_* in the kernel's order (include/uapi/asm-generic/resource.h).
const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// `RLIMIT_NOFILE` -> 7.
pub fn rlimit(name: &str) -> Option<u32> {
    number(&RLIMITS, "RLIMIT_", name)
}

/// `name`'s index in `table` (the kernel's number), with or without `prefix`, in any case.
fn number(table: &[&str], prefix: &str, name: &str) -> Option<u32> {
    let n = name.strip_prefix(prefix).unwrap_or(name);
    table.iter().position(|t| t.eq_ignore_ascii_case(n)).map(|i| i as u32)
}

/// Signal names and numbers as `kill` takes them: `KILL`, `SIGKILL`, `9`.
pub fn signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig: nix::sys::signal::Signal = format!("SIG{name}").parse().ok()?;
    Some(sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(cap("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap("CAP_NOPE"), None);
        assert_eq!(rlimit("RLIMIT_NOFILE"), Some(7));
        assert_eq!(rlimit("RLIMIT_RTTIME"), Some(15));
        for s in ["KILL", "SIGKILL", "9", "kill"] {
            assert_eq!(signal(s), Some(9), "{s}");
        }
        assert_eq!(signal("TERM"), Some(15));
        assert_eq!(signal("NOPE"), None);
        assert_eq!(signal("0"), None);
    }
}
