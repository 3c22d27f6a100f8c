//! Capability names in number order (linux/capability.h): `NAMES[n]` is
//! capability n. The runtime-spec writes them as "CAP_CHOWN"; init's CAPS record
//! takes bit masks (bit n = capability n).

pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability name ("CAP_NET_RAW" or "NET_RAW", any case).
pub fn number(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// The mask of a list of names; the first unknown name is the error.
pub fn mask<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, String> {
    let mut m = 0u64;
    for n in names {
        m |= 1 << number(n).ok_or_else(|| format!("unknown capability {n:?}"))?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
        assert_eq!(mask(["CAP_KILL", "CAP_CHOWN"]), Ok(0b100001));
        assert!(mask(["CAP_X"]).unwrap_err().contains("CAP_X"));
    }
}
