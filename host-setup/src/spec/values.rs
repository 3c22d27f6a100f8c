//! The values a user types, parsed and checked: addresses, CPU shares, memory
//! sizes, pids limits, hostnames and layer dirs. Each error says what is wrong and
//! what would be right (exit 2), before anything on the host changes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::usage;

/// Below this a container cannot start its shell.
const MIN_MEMORY: u64 = 8 << 20;
const MIN_DISK: u64 = 1 << 20;

pub fn validate_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(usage!("invalid hostname {h:?}: use letters, digits and '-', at most 64 characters (e.g. RED)"))
    }
}

/// `11.11.11.2/24` -> (11.11.11.2, 24). A host address in a usable unicast subnet.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = |why: &str| usage!("invalid address {text:?}: {why} (e.g. 11.11.11.2/24)");
    let (a, p) = text.split_once('/').ok_or_else(|| bad("give it with a prefix length"))?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix_len: u8 = p.parse().map_err(|_| bad("the prefix length is a number from 1 to 30"))?;
    if !(1..=30).contains(&prefix_len) {
        return Err(bad("the prefix length is a number from 1 to 30"));
    }
    if addr.is_loopback()
        || addr.is_multicast()
        || addr.is_unspecified()
        || addr.is_broadcast()
        || addr.octets()[0] >= 240
    {
        return Err(bad("not a unicast host address"));
    }
    let host_mask = u32::MAX >> prefix_len;
    let host = u32::from(addr) & host_mask;
    if host == 0 || host == host_mask {
        return Err(bad(&format!("that is the network or broadcast address of its /{prefix_len}")));
    }
    Ok((addr, prefix_len))
}

/// Do two addresses share a subnet (the pair only talks on-link: no routes)?
pub fn same_subnet(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let mask = |p: u8| u32::MAX << (32 - p as u32);
    a.1 == b.1 && u32::from(a.0) & mask(a.1) == u32::from(b.0) & mask(b.1)
}

/// `40` or `40%` of one CPU; more than 100 uses several CPUs.
pub fn parse_cpu_percent(text: &str) -> Result<u64> {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let max = 100 * cpus;
    let n: u64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| usage!("invalid CPU share {text:?}: give a percentage of one CPU from 1 to {max} (e.g. 40)"))?;
    if n == 0 || n > max {
        return Err(usage!(
            "invalid CPU share {text:?}: give a percentage of one CPU from 1 to {max} (this host has {cpus} CPUs)"
        ));
    }
    Ok(n)
}

/// Memory sizes as users type them: `209715200`, `200M`, `200MiB`, `1G`, `512k`.
/// Suffixes are binary (K = 1024), as in the kernel's and docker's.
pub fn parse_memory(text: &str) -> Result<u64> {
    let bytes = parse_size(text, "memory size", "200M")?;
    if bytes < MIN_MEMORY {
        return Err(usage!("memory size {text:?} is too small: a container needs at least 8M"));
    }
    Ok(bytes)
}

/// `--disk SIZE`, written as memory sizes are: the most the container may write
/// (its upper dir's filesystem).
pub fn parse_disk(text: &str) -> Result<u64> {
    let bytes = parse_size(text, "disk size", "1G")?;
    if bytes < MIN_DISK {
        return Err(usage!("disk size {text:?} is too small: give at least 1M"));
    }
    Ok(bytes)
}

pub fn parse_size(text: &str, what: &str, example: &str) -> Result<u64> {
    let bad = || usage!("invalid {what} {text:?}: give bytes or a number with K, M or G (e.g. {example})");
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// A pids limit: how many processes and threads the container may have at once.
pub fn parse_pids(text: &str) -> Result<u64> {
    match text.parse::<u64>() {
        Ok(n) if (8..=4_194_304).contains(&n) => Ok(n),
        _ => Err(usage!("invalid pids limit {text:?}: give a number of processes from 8 to 4194304 (e.g. 512)")),
    }
}

/// `200M` style, for messages and `status`.
pub fn format_bytes(b: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if b >= 1 << shift && b % (1 << shift) == 0 {
            return format!("{}{unit}", b >> shift);
        }
    }
    if b >= 1 << 20 {
        return format!("{:.1}M", b as f64 / (1u64 << 20) as f64);
    }
    format!("{b}")
}

/// A `--layer DIR`: an existing directory, absolute once resolved, and free of the
/// characters overlayfs uses to separate its options (`:` and `,`).
pub fn validate_layer_dir(dir: &str) -> Result<PathBuf> {
    let p = Path::new(dir);
    let abs = p.canonicalize().map_err(|e| usage!("--layer {dir}: {}", crate::error::io_text(&e)))?;
    if !abs.is_dir() {
        return Err(usage!("--layer {dir}: not a directory"));
    }
    let s = abs.to_string_lossy();
    if s.contains([':', ',', '\\']) || s.chars().any(char::is_whitespace) {
        return Err(usage!(
            "--layer {dir}: overlayfs cannot take a path with ':', ',', '\\' or white space; move or link it"
        ));
    }
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate_iface;

    #[test]
    fn addresses() {
        assert_eq!(parse_cidr("11.11.11.2/24").unwrap(), (Ipv4Addr::new(11, 11, 11, 2), 24));
        for bad in
            ["11.11.11.2", "11.11.11.2/33", "11.11.11.2/0", "127.0.0.2/8", "224.0.0.1/24", "x/24", "11.11.11.255/24"]
        {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        let a = parse_cidr("11.11.11.2/24").unwrap();
        assert!(same_subnet(a, parse_cidr("11.11.11.3/24").unwrap()));
        assert!(!same_subnet(a, parse_cidr("11.11.12.3/24").unwrap()));
        assert!(!same_subnet(a, parse_cidr("11.11.11.3/25").unwrap()));
    }

    #[test]
    fn disk_sizes() {
        assert_eq!(parse_disk("200M").unwrap(), 200 << 20);
        assert_eq!(parse_disk("1G").unwrap(), 1 << 30);
        assert_eq!(parse_disk("20971520").unwrap(), 20 << 20);
        assert_eq!(parse_disk("1m").unwrap(), 1 << 20);
        let e = parse_disk("512k").unwrap_err().to_string();
        assert!(e.contains("disk size \"512k\" is too small"), "{e}");
        for bad in ["", "M", "20X", "-1G", "1.5G", "99999999999G"] {
            let e = parse_disk(bad).unwrap_err().to_string();
            assert!(e.contains("invalid disk size"), "{bad}: {e}");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("209715200").unwrap(), 209715200);
        assert_eq!(parse_memory("200M").unwrap(), 209715200);
        assert_eq!(parse_memory("200MiB").unwrap(), 209715200);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("16384k").unwrap(), 16 << 20);
        for bad in ["", "M", "200X", "-5M", "99999999999999G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(209715200), "200M");
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(1_500_000), "1.4M");
    }

    #[test]
    fn iface_and_hostname() {
        assert!(validate_iface("veth0").is_ok());
        for bad in ["", "lo", "a/b", "with space", "sixteen-chars-xx"] {
            assert!(validate_iface(bad).is_err(), "{bad:?}");
        }
        assert!(validate_hostname("RED").is_ok());
        assert!(validate_hostname("-x").is_err());
    }

    #[test]
    fn layer_dirs_must_exist() {
        let e = validate_layer_dir("/nonexistent/layer").unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
        assert_eq!(validate_layer_dir("/").unwrap(), PathBuf::from("/"));
    }
}
