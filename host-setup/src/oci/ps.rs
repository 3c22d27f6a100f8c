//! `hsrun ps [--format table|json] ID [PS_ARGS...]`: the processes of a container.
//! json is what containerd reads (`ctr task ps`): the array of host pids in the
//! container's cgroup (its child cgroups included). table is runc's: `ps -ef`
//! (or `ps PS_ARGS`) run on the host, with only the lines of those pids kept.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::cli::{opt, parse, Global};
use super::state::State;
use crate::error::{Result, SysContext};

/// Host pids in `dir` and every cgroup below it, sorted.
pub fn pids(dirs: &[PathBuf]) -> Vec<i32> {
    // Every v1 hierarchy holds the same processes; the first is enough.
    let mut out = BTreeSet::new();
    let mut todo: Vec<PathBuf> = dirs.first().cloned().into_iter().collect();
    while let Some(d) = todo.pop() {
        out.extend(crate::cgroup::procs(&d));
        if let Ok(rd) = std::fs::read_dir(&d) {
            todo.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
    }
    out.into_iter().collect()
}

/// Keep the header and the lines of `ps` output whose PID column is in `pids`.
pub fn filter_table(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| crate::failed!("ps: no PID column in its header {header:?} (ask for one: -o pid,...)"))?;
    let mut out = format!("{header}\n");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse().ok()).is_some_and(|p: i32| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

pub fn main(g: &Global, args: &[String]) -> Result<i32> {
    // After the id, everything is ps's own arguments.
    let p = parse("ps", args, &[opt(&["format", "f"], true)], Some(1))?;
    let st = State::load(&g.paths(), p.id("ps")?)?;
    let ps_args = &p.args[1..];
    let pids = pids(&st.cgroup_dirs);
    match p.value("format").unwrap_or("table") {
        "json" => {
            if !ps_args.is_empty() {
                return Err(crate::usage!("ps: PS_ARGS go with --format table only"));
            }
            println!("{}", serde_json::to_string(&pids).map_err(|e| crate::failed!("ps: {e}"))?);
        }
        "table" => {
            let ps_args: Vec<String> = if ps_args.is_empty() { vec!["-ef".into()] } else { ps_args.to_vec() };
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .sys(|| format!("run ps {}", ps_args.join(" ")))?;
            if !out.status.success() {
                return Err(crate::failed!(
                    "ps {}: {}: {}",
                    ps_args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            print!("{}", filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?);
        }
        f => return Err(crate::usage!("ps: --format {f:?}: use table or json")),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_container_lines() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 09:00 ? 00:00:01 /sbin/init\n\
                    root 42 1 0 09:01 ? 00:00:00 sleep 100\nroot 420 1 0 09:01 ? 00:00:00 x 42\n";
        let t = filter_table(text, &[42]).unwrap();
        assert_eq!(t, "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 09:01 ? 00:00:00 sleep 100\n");
        assert!(filter_table("USER COMMAND\n", &[1]).is_err());
    }
}
