//! config.json's mounts as mount(2) calls: each option word is a flag to set,
//! a flag to clear, a propagation, or filesystem data (runc's table,
//! libcontainer/specconv). `bind` and `rbind` make a bind mount; a read-only
//! bind takes a second, remounting call, which init does (the kernel ignores
//! MS_RDONLY on the first MS_BIND call).

use crate::error::Result;
use crate::spec::Mount;

const MS_RDONLY: u64 = libc::MS_RDONLY;
const MS_REC: u64 = libc::MS_REC;

/// (word, flag, clears): `ro` sets MS_RDONLY, `rw` clears it.
const FLAGS: [(&str, u64, bool); 28] = [
    ("ro", MS_RDONLY, false),
    ("rw", MS_RDONLY, true),
    ("nosuid", libc::MS_NOSUID, false),
    ("suid", libc::MS_NOSUID, true),
    ("nodev", libc::MS_NODEV, false),
    ("dev", libc::MS_NODEV, true),
    ("noexec", libc::MS_NOEXEC, false),
    ("exec", libc::MS_NOEXEC, true),
    ("sync", libc::MS_SYNCHRONOUS, false),
    ("async", libc::MS_SYNCHRONOUS, true),
    ("dirsync", libc::MS_DIRSYNC, false),
    ("remount", libc::MS_REMOUNT, false),
    ("mand", libc::MS_MANDLOCK, false),
    ("nomand", libc::MS_MANDLOCK, true),
    ("atime", libc::MS_NOATIME, true),
    ("noatime", libc::MS_NOATIME, false),
    ("diratime", libc::MS_NODIRATIME, true),
    ("nodiratime", libc::MS_NODIRATIME, false),
    ("relatime", libc::MS_RELATIME, false),
    ("norelatime", libc::MS_RELATIME, true),
    ("strictatime", libc::MS_STRICTATIME, false),
    ("nostrictatime", libc::MS_STRICTATIME, true),
    ("bind", libc::MS_BIND, false),
    ("rbind", libc::MS_BIND | MS_REC, false),
    ("lazytime", 1 << 25, false),
    ("nolazytime", 1 << 25, true),
    ("silent", libc::MS_SILENT, false),
    ("loud", libc::MS_SILENT, true),
];

const PROPAGATION: [(&str, u64); 8] = [
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | MS_REC),
];

/// A propagation word (`rootfsPropagation`, or a mount option) as MS_* flags.
pub fn propagation(word: &str) -> Option<u64> {
    PROPAGATION.iter().find(|(w, _)| *w == word).map(|(_, f)| *f)
}

/// One config.json mount: options split into flags, propagation and data.
pub fn mount(dest: &str, typ: Option<&str>, source: Option<&str>, options: &[String]) -> Result<Mount> {
    if !dest.starts_with('/') {
        return Err(crate::failed!("config.json: mounts: destination {dest:?} is not an absolute path"));
    }
    let (mut flags, mut prop, mut data) = (0u64, 0u64, vec![]);
    for o in options {
        if let Some((_, f, clear)) = FLAGS.iter().find(|(w, _, _)| w == o) {
            if *clear {
                flags &= !f;
            } else {
                flags |= f;
            }
        } else if let Some(p) = propagation(o) {
            prop |= p;
        } else if matches!(o.as_str(), "idmap" | "ridmap") || o.starts_with("X-mount.") {
            return Err(crate::failed!(
                "config.json: mounts: {dest}: option {o:?} is not supported by this runtime (idmapped mounts need the mount's user namespace, which the bundle's mounts do not get)"
            ));
        } else if matches!(o.as_str(), "tmpcopyup" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" | "copy-symlink")
        {
            return Err(crate::failed!("config.json: mounts: {dest}: option {o:?} is not supported by this runtime"));
        } else {
            data.push(o.as_str());
        }
    }
    let fstype = typ.unwrap_or("");
    if fstype == "bind" {
        flags |= libc::MS_BIND;
    }
    if flags & libc::MS_BIND == 0 && fstype.is_empty() {
        return Err(crate::failed!("config.json: mounts: {dest}: no type and not a bind mount"));
    }
    Ok(Mount {
        source: source.unwrap_or(if fstype.is_empty() { "none" } else { fstype }).to_string(),
        target: dest.to_string(),
        fstype: fstype.to_string(),
        flags,
        data: data.join(","),
        propagation: prop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_become_flags_propagation_and_data() {
        let m =
            mount("/dev", Some("tmpfs"), Some("tmpfs"), &opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]))
                .unwrap();
        assert_eq!(m.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
        let b = mount("/data", Some("none"), Some("/srv"), &opts(&["rbind", "ro", "rslave"])).unwrap();
        assert_eq!(b.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(b.propagation, libc::MS_SLAVE | libc::MS_REC);
        let rw = mount("/x", Some("bind"), Some("/y"), &opts(&["ro", "rw"])).unwrap();
        assert_eq!(rw.flags, libc::MS_BIND);
        assert!(mount("x", Some("tmpfs"), None, &[]).is_err());
        assert!(mount("/x", None, None, &[]).is_err());
        let e = mount("/x", Some("bind"), Some("/y"), &opts(&["idmap"])).unwrap_err();
        assert!(e.to_string().contains("\"idmap\" is not supported"), "{e}");
    }
}
