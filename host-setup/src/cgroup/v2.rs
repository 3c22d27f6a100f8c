//! cgroup v2: one unified tree. A controller works in a cgroup only if every
//! ancestor enabled it in `cgroup.subtree_control`; and a cgroup that has
//! controllers enabled for its children may hold no processes itself ("no internal
//! processes" rule). So: enable in the root (if not yet) and in our parent, never in
//! the container's leaf, and put processes only into leaves.

use std::fs;
use std::path::{Path, PathBuf};

use super::{keyed_u64, mkdir, read_u64, write, Limits, Usage};
use crate::error::{Result, SysContext};

pub const CONTROLLERS: [&str; 2] = ["cpu", "memory"];

fn words(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).sys(|| format!("read {}", path.display()))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Every controller we need must be available at the root of the hierarchy.
pub fn check(root: &Path) -> Result<()> {
    let available = words(&root.join("cgroup.controllers"))?;
    let missing: Vec<&str> = CONTROLLERS.iter().copied().filter(|c| !available.iter().any(|a| a == c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::precondition!(
        "cgroup v2 controller{} {} not available in {}/cgroup.controllers (it lists: {}); \
         the kernel lacks it or it is bound to a v1 hierarchy (boot with systemd.unified_cgroup_hierarchy=1 \
         and without cgroup_no_v1/cgroup_disable for it)",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        root.display(),
        if available.is_empty() { "nothing".to_string() } else { available.join(" ") }
    ))
}

/// Enable our controllers for the children of `dir`, if they are not yet.
fn enable_for_children(dir: &Path) -> Result<()> {
    let enabled = words(&dir.join("cgroup.subtree_control"))?;
    let todo: Vec<String> =
        CONTROLLERS.iter().filter(|c| !enabled.iter().any(|e| e == *c)).map(|c| format!("+{c}")).collect();
    if todo.is_empty() {
        return Ok(());
    }
    write(dir, "cgroup.subtree_control", &todo.join(" ")).map_err(|e| {
        e.hint(format!(
            "enable the controllers for {} (its parent must have them delegated; with systemd: Delegate=yes)",
            dir.display()
        ))
    })
}

pub fn create(
    root: &Path,
    parent: &str,
    name: &str,
    limits: &Limits,
    record: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<Vec<PathBuf>> {
    check(root)?;
    let parent_dir = root.join(parent);
    let dir = parent_dir.join(name);
    let mut tries = 0;
    loop {
        // The root cgroup is exempt from the no-internal-processes rule; systemd
        // hosts have cpu and memory enabled there already.
        enable_for_children(root)?;
        mkdir(&parent_dir)?;
        enable_for_children(&parent_dir)?;
        record(&dir)?;
        // A concurrent `down` may remove the empty parent between the steps above.
        match mkdir(&dir) {
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) && tries < 3 => tries += 1,
            other => break other?,
        }
    }
    write(&dir, "cpu.max", &format!("{} {}", limits.cpu_quota_us, limits.cpu_period_us))?;
    write(&dir, "memory.max", &limits.memory_bytes.to_string())?;
    // Without swap accounting (no CONFIG_MEMCG_SWAP, or swapaccount=0) the file is
    // absent and the container cannot swap through this cgroup anyway.
    if dir.join("memory.swap.max").exists() {
        write(&dir, "memory.swap.max", "0")?;
    }
    Ok(vec![dir])
}

pub fn explain(root: &Path, parent: &str, name: &str, limits: &Limits) -> Vec<String> {
    let p = root.join(parent);
    let d = p.join(name);
    vec![
        format!("echo '+cpu +memory' > {}/cgroup.subtree_control", root.display()),
        format!("mkdir -p {}", p.display()),
        format!("echo '+cpu +memory' > {}/cgroup.subtree_control", p.display()),
        format!("mkdir {}", d.display()),
        format!("echo '{} {}' > {}/cpu.max", limits.cpu_quota_us, limits.cpu_period_us, d.display()),
        format!("echo {} > {}/memory.max", limits.memory_bytes, d.display()),
        format!("echo 0 > {}/memory.swap.max", d.display()),
    ]
}

pub fn usage(dir: &Path) -> Usage {
    Usage {
        cpu_ns: keyed_u64(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        memory_bytes: read_u64(&dir.join("memory.current")).unwrap_or(0),
        oom_kills: keyed_u64(&dir.join("memory.events"), "oom_kill").unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_enables_in_parents_never_in_the_leaf() {
        let l = Limits { cpu_quota_us: 40000, cpu_period_us: 100000, memory_bytes: 209715200 };
        let lines = explain(Path::new("/sys/fs/cgroup"), "host-setup", "red", &l);
        assert!(lines.iter().all(|l| !l.contains("red/cgroup.subtree_control")));
        assert!(lines.contains(&"echo '40000 100000' > /sys/fs/cgroup/host-setup/red/cpu.max".to_string()));
    }

    #[test]
    fn missing_controllers_are_named() {
        let dir = std::env::temp_dir().join(format!("cg2-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), "pids io\n").unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(e.starts_with("cgroup v2 controllers cpu, memory not available"), "{e}");
        assert!(e.contains("it lists: pids io"), "{e}");
        fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        check(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
